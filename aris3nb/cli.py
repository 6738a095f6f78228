"""The ``aris3nb`` command: parses arguments, calls one library function, prints, exits.

Exit codes: 0 success; 1 the operation ran and failed; 2 bad usage or input the command
could not act on (unreadable file, bad URL, unreachable database). Expected failures print
one line, ``FAILED: <message>``, on standard error; never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aris3nb import _cli_backup, _cli_evidence, _cli_gate, _cli_run, embedded, migrate
from aris3nb._cli_common import (
    DatabaseUrlOption,
    JsonOption,
    database_url,
    err,
    failure_exit_code,
    os_error_failure,
    out,
    say,
    settings,
)
from aris3nb.errors import Aris3nbError, UsageError
from aris3nb.redact import redact_url
from aris3nb.reference import seed as seed_data

app = typer.Typer(
    name="aris3nb",
    help="The ARIS3 Recovery Playbook, executable: reference service, seed data, migrations, backups, gate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Migrate and seed an ARIS3 database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
_cli_backup.register(app)
_cli_gate.register(app)
_cli_evidence.register(app)
_cli_run.register(app)


@app.callback()
def _settings_first() -> None:
    """Read the environment once, before any command: a bad setting is a usage error."""
    settings()


@db_app.command("upgrade")
def db_upgrade(
    database_url_option: DatabaseUrlOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    json_output: JsonOption = False,
) -> None:
    """Migrate the database up to REVISION (default: the code's head)."""
    url = database_url(database_url_option)
    migrate.upgrade(url, revision)
    current = migrate.current_revision(url)
    if json_output:
        out.print_json(json.dumps({"database": redact_url(url), "revision": current}))
    else:
        say(f"{redact_url(url)} is at revision {current}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Option(help="Target revision; 'base' removes the whole schema.")],
    database_url_option: DatabaseUrlOption = None,
) -> None:
    """Migrate the database down to REVISION."""
    url = database_url(database_url_option)
    migrate.downgrade(url, revision)
    say(f"{redact_url(url)} is at revision {migrate.current_revision(url) or 'base'}")


@db_app.command("seed")
def db_seed(
    database_url_option: DatabaseUrlOption = None,
    scale: Annotated[int, typer.Option(min=0, help="Number of stock rows; every other table grows with it.")] = seed_data.DEFAULT_SCALE,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = seed_data.DEFAULT_SEED,
    exports_dir: Annotated[
        Path | None, typer.Option(help="Folder for export files. Default: ARIS3_EXPORTS_DIR, else beside the embedded database.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Fill a freshly migrated, empty database with deterministic ARIS3 data."""
    current = settings()
    url = database_url(database_url_option)
    target = exports_dir or current.resolved_exports_dir()
    bar = Progress(TextColumn("seeding stock"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=json_output or not err.is_terminal)
    task = bar.add_task("seeding stock", total=scale)
    with bar:
        summary = seed_data.seed_database(
            url, scale=scale, seed=seed, exports_dir=target,
            seed_password=current.seed_password.get_secret_value(),
            smoke_password=current.smoke_password.get_secret_value(),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    result = {
        "database": redact_url(url), "scale": summary.scale, "seed": summary.seed, "rows": summary.rows,
        "export_files": [str(p) for p in summary.export_files], "duration_sec": round(summary.duration_sec, 3),
    }
    if json_output:
        out.print_json(json.dumps(result))
    else:
        say(f"seeded {redact_url(url)} in {summary.duration_sec:.1f} s:")
        for table, count in summary.rows.items():
            say(f"  {table:<22} {count:>10,}")


@app.command("serve")
def serve(
    database_url_option: DatabaseUrlOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    embedded_default: Annotated[bool, typer.Option(
        "--embedded", help="Serve a fresh embedded database instead: OPS_ARTIFACTS_DIR/embedded wiped (only a folder "
        "aris3nb made), migrated and seeded.")] = False,
    scale: Annotated[int, typer.Option(min=0, help="With --embedded: stock rows to seed.")] = seed_data.DEFAULT_SCALE,
    seed: Annotated[int, typer.Option(help="With --embedded: random seed of the data.")] = seed_data.DEFAULT_SEED,
) -> None:
    """Serve the reference ARIS3 service over a database until interrupted."""
    if embedded_default:
        if database_url_option:
            raise UsageError("--embedded serves its own database: leave out --database-url")
        embedded.run(settings(), host=host, port=port, scale=scale, seed=seed, announce=out)
        return
    embedded.serve(database_url(database_url_option), settings(), host=host, port=port, announce=out)


def main(argv: list[str] | None = None) -> None:
    """Run the command; an expected failure ends in one line, ``FAILED: <message>``.

    This is also the boundary where an ``OSError`` that escaped the library (an unwritable
    or wrong-typed place, a full disk) becomes that line: ``cannot write <path>: <reason>``.
    """
    try:
        app(args=argv, prog_name="aris3nb")
    except (Aris3nbError, OSError) as exc:
        failure = exc if isinstance(exc, Aris3nbError) else os_error_failure(exc)
        err.print(f"FAILED: {failure}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(failure_exit_code(failure))
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
