"""``aris3nb db upgrade|downgrade|seed``: migrate and seed an ARIS3 database."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aris3nb.cli._common import DatabaseUrlOption, JsonOption, database_url, err, out, say, settings
from aris3nb.core.errors import MigrationError
from aris3nb.core.redact import redact_text, redact_url, url_password
from aris3nb.core.settings import EMBEDDED_SCALE, EMBEDDED_SEED

db_app = typer.Typer(help="Migrate and seed an ARIS3 database.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@contextlib.contextmanager
def alembic_refusals(url: str) -> Iterator[None]:
    """An Alembic refusal that escaped the library (a database at a revision these migrations
    do not know, more than one revision in alembic_version) as a MigrationError: one line,
    ``FAILED: <reason>``, exit 1, no traceback."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        yield
    except (CommandError, RevisionError) as exc:
        text = str(exc).strip()
        reason = redact_text(text.splitlines()[0] if text else type(exc).__name__, [url_password(url)])
        raise MigrationError(f"{redact_url(url)}: {reason}") from exc


@db_app.command("upgrade")
def db_upgrade(
    database_url_option: DatabaseUrlOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.", metavar="REVISION")] = "head",
    json_output: JsonOption = False,
) -> None:
    """Migrate the database up to REVISION (default: the code's head) with the reference's
    migrations. Environment: DATABASE_URL, OPS_ARTIFACTS_DIR. Exit 0 migrated; 1 FAILED (one
    line: e.g. a database at a revision these migrations do not know); 2 bad input."""
    from aris3nb import migrate

    url = database_url(database_url_option)
    with alembic_refusals(url):
        migrate.upgrade(url, revision)
        current = migrate.current_revision(url)
    if json_output:
        out.print_json(json.dumps({"database": redact_url(url), "revision": current}))
    else:
        say(f"{redact_url(url)} is at revision {current}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[
        str, typer.Option(help="Target revision; 'base' removes the whole schema.", metavar="REVISION")
    ],
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Migrate the database down to REVISION with the reference's migrations. Environment:
    DATABASE_URL, OPS_ARTIFACTS_DIR. Exit 0 migrated; 1 FAILED (one line); 2 bad input."""
    from aris3nb import migrate

    url = database_url(database_url_option)
    with alembic_refusals(url):
        migrate.downgrade(url, revision)
        current = migrate.current_revision(url)
    say(f"{redact_url(url)} is at revision {current or 'base'}")


@db_app.command("seed")
def db_seed(
    database_url_option: DatabaseUrlOption = None,
    scale: Annotated[
        int, typer.Option(min=0, help="Number of stock rows; every other table grows with it.", metavar="ROWS")
    ] = EMBEDDED_SCALE,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same data.", metavar="SEED")
    ] = EMBEDDED_SEED,
    exports_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder for export files. Default: ARIS3_EXPORTS_DIR, else beside the embedded database.",
            metavar="DIR",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Fill a freshly migrated, empty database with deterministic ARIS3 data (the reference's
    seed). Environment: DATABASE_URL, OPS_ARTIFACTS_DIR, ARIS3_SMOKE_PASSWORD, ARIS3_SEED_PASSWORD.
    Exit 0 seeded; 1 failed; 2 bad input (a database that is not empty)."""
    from aris3nb.reference import seed as seed_data

    current = settings()
    url = database_url(database_url_option)
    target = exports_dir or current.resolved_exports_dir()
    bar = Progress(
        TextColumn("seeding stock"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=json_output or not err.is_terminal,
    )
    task = bar.add_task("seeding stock", total=scale)
    with bar:
        summary = seed_data.seed_database(
            url,
            scale=scale,
            seed=seed,
            exports_dir=target,
            seed_password=current.service.seed_password.get_secret_value(),
            smoke_password=current.service.smoke_password.get_secret_value(),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    result = {
        "database": redact_url(url),
        "scale": summary.scale,
        "seed": summary.seed,
        "rows": summary.rows,
        "export_files": [str(p) for p in summary.export_files],
        "duration_sec": round(summary.duration_sec, 3),
    }
    if json_output:
        out.print_json(json.dumps(result))
    else:
        say(f"seeded {redact_url(url)} in {summary.duration_sec:.1f} s:")
        for table, count in summary.rows.items():
            say(f"  {table:<22} {count:>10,}")
