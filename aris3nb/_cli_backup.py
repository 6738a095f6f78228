"""The backup commands (``aris3nb backup create|validate|restore-verify|restore``)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``aris3nb`` application."""
