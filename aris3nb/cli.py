"""The ``aris3nb`` command: parses arguments, calls one library function, prints, exits.

Exit codes: 0 success; 1 the operation ran and failed; 2 bad usage or input the command
could not act on (unreadable file, bad URL, unreachable database). Expected failures print
one line, ``FAILED: <message>``, on standard error; never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aris3nb import embedded, migrate
from aris3nb.config import Settings, load_settings
from aris3nb.errors import Aris3nbError
from aris3nb.redact import redact_url
from aris3nb.reference import seed as seed_data

app = typer.Typer(
    name="aris3nb",
    help="The ARIS3 Recovery Playbook, executable: reference service, seed data, migrations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Migrate and seed an ARIS3 database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

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
    out.print(text, markup=False, highlight=False, soft_wrap=True)


@functools.cache
def _settings() -> Settings:
    return load_settings()


@app.callback()
def _settings_first() -> None:
    """Read the environment once, before any command: a bad setting is a usage error."""
    _settings()


def _database_url(option: str | None) -> str:
    return option or _settings().default_database_url()


@db_app.command("upgrade")
def db_upgrade(
    database_url: DatabaseUrlOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    json_output: JsonOption = False,
) -> None:
    """Migrate the database up to REVISION (default: the code's head)."""
    url = _database_url(database_url)
    migrate.upgrade(url, revision)
    current = migrate.current_revision(url)
    if json_output:
        out.print_json(json.dumps({"database": redact_url(url), "revision": current}))
    else:
        say(f"{redact_url(url)} is at revision {current}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Option(help="Target revision; 'base' removes the whole schema.")],
    database_url: DatabaseUrlOption = None,
) -> None:
    """Migrate the database down to REVISION."""
    url = _database_url(database_url)
    migrate.downgrade(url, revision)
    say(f"{redact_url(url)} is at revision {migrate.current_revision(url) or 'base'}")


@db_app.command("seed")
def db_seed(
    database_url: DatabaseUrlOption = None,
    scale: Annotated[int, typer.Option(min=0, help="Number of stock rows; every other table grows with it.")] = seed_data.DEFAULT_SCALE,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = seed_data.DEFAULT_SEED,
    exports_dir: Annotated[
        Path | None, typer.Option(help="Folder for export files. Default: ARIS3_EXPORTS_DIR, else beside the embedded database.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Fill a freshly migrated, empty database with deterministic ARIS3 data."""
    settings = _settings()
    url = _database_url(database_url)
    target = exports_dir or settings.resolved_exports_dir()
    with _progress(enabled=not json_output, total=scale, label="seeding stock") as report:
        summary = seed_data.seed_database(
            url, scale=scale, seed=seed, exports_dir=target,
            seed_password=settings.seed_password.get_secret_value(),
            smoke_password=settings.smoke_password.get_secret_value(),
            progress=report,
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


class _progress:
    """A rich progress bar on an interactive terminal; nothing otherwise."""

    def __init__(self, *, enabled: bool, total: int, label: str) -> None:
        self.enabled = enabled and err.is_terminal
        self.bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
        self.task = self.bar.add_task(label, total=total)

    def __enter__(self):  # type: ignore[no-untyped-def]
        if self.enabled:
            self.bar.start()
        return self.update

    def update(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()


@app.command("serve")
def serve(
    database_url: DatabaseUrlOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the reference ARIS3 service over a database until interrupted."""
    embedded.serve(_database_url(database_url), _settings(), host=host, port=port, announce=out)


@app.command("run")
def run(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    scale: Annotated[int, typer.Option(min=0, help="Stock rows to seed.")] = seed_data.DEFAULT_SCALE,
    seed: Annotated[int, typer.Option(help="Random seed of the data.")] = seed_data.DEFAULT_SEED,
) -> None:
    """The main job on the embedded default: a fresh SQLite database under
    OPS_ARTIFACTS_DIR/embedded, migrated and seeded, served by the reference ARIS3 service.
    """
    embedded.run(_settings(), host=host, port=port, scale=scale, seed=seed, announce=out)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="aris3nb")
    except Aris3nbError as exc:
        err.print(f"FAILED: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
