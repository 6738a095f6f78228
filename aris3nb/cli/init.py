"""``aris3nb init``: write the target profile of the ARIS3 repository in a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aris3nb.cli._common import say


def init(
    folder: Annotated[
        Path, typer.Argument(help="The target repository's root.", show_default=False, metavar="FOLDER")
    ] = Path("."),
    python: Annotated[
        Path | None,
        typer.Option(
            "--python",
            help="The interpreter of the target's own environment (default: its .venv/ or venv/).",
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
) -> None:
    """Describe the ARIS3 repository in FOLDER as a target profile (aris3nb.toml): its Alembic
    configuration, its models' metadata, its own Python environment, and — for the upstream ARIS3
    backend — its service contract. Never overwrites a file. Exit 0 written; 2 nothing to describe
    or a profile is there already."""
    from aris3nb.targets.init import init_profile, next_steps
    from aris3nb.targets.profile import load_profile

    path, found = init_profile(folder, python=python)
    say(f"wrote {path} (profile {'aris3, the upstream ARIS3 contract' if found.upstream else found.root.name})")
    for note in found.notes:
        say(f"note: {note}")
    account = load_profile(path).profile.service.smoke_account
    for number, step in enumerate(next_steps(found, account), 1):
        say(f"next {number}: {step}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
