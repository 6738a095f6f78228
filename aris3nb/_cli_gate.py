"""The gate and the integrity check commands (``aris3nb gate``, ``aris3nb integrity``)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``aris3nb`` application."""
