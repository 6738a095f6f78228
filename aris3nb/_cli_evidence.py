"""The evidence bundle commands (``aris3nb evidence ...``)."""

from __future__ import annotations

import typer

evidence_app = typer.Typer(help="Verify (and sign) the evidence bundles of playbook runs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app, name="evidence")
