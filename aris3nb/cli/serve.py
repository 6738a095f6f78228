"""``aris3nb serve``: the reference ARIS3 service over a database, or over a fresh embedded one."""

from __future__ import annotations

from typing import Annotated

import typer

from aris3nb.cli._common import DatabaseUrlOption, database_url, out, settings
from aris3nb.core.errors import UsageError
from aris3nb.core.settings import EMBEDDED_SCALE, EMBEDDED_SEED


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    database_url_option: DatabaseUrlOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.", metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.", metavar="PORT")] = 8000,
    embedded_default: Annotated[
        bool,
        typer.Option(
            "--embedded",
            help="Serve a fresh embedded database instead: OPS_ARTIFACTS_DIR/embedded wiped (only a folder "
            "aris3nb made), migrated and seeded.",
        ),
    ] = False,
    scale: Annotated[
        int, typer.Option(min=0, help="With --embedded: stock rows to seed.", metavar="ROWS")
    ] = EMBEDDED_SCALE,
    seed: Annotated[
        int, typer.Option(help="With --embedded: random seed of the data.", metavar="SEED")
    ] = EMBEDDED_SEED,
) -> None:
    """Serve the reference ARIS3 service over a database until interrupted. Environment:
    DATABASE_URL, OPS_ARTIFACTS_DIR, ARIS3_SECRET_KEY, ARIS3_EXPORTS_DIR. Exit 0 stopped;
    2 bad input (a busy port, a missing SQLite database)."""
    from aris3nb.targets import embedded

    if embedded_default:
        if database_url_option:
            raise UsageError("--embedded serves its own database: leave out --database-url")
        embedded.run(settings(), host=host, port=port, scale=scale, seed=seed, announce=out)
        return
    embedded.serve(database_url(database_url_option), settings(), host=host, port=port, announce=out)
