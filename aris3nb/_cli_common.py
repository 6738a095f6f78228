"""What every ``aris3nb`` subcommand shares: the consoles, the common options, the settings.

Command groups live in their own modules (``cli.py`` for the database and the service,
``_cli_gate.py`` for the gate and the integrity check, ``_cli_backup.py`` for backups); each
only parses, calls one library function, prints, and lets ``Aris3nbError`` reach ``main``.
"""

from __future__ import annotations

import functools
from typing import Annotated

import typer
from rich.console import Console

from aris3nb.config import Settings, load_settings

out = Console()
err = Console(stderr=True)

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the ARIS3 database (sqlite:///PATH or postgresql://USER@HOST/DB). "
        "Default: DATABASE_URL, else the embedded default's SQLite file under OPS_ARTIFACTS_DIR.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result instead of text.")]


def say(text: str) -> None:
    """One line for people on standard output, printed as is (no markup, no wrapping)."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


@functools.cache
def settings() -> Settings:
    return load_settings()


def database_url(option: str | None) -> str:
    return option or settings().default_database_url()
