"""The embedded default target: a local SQLite ARIS3, migrated, seeded and served.

It lives in ``<OPS_ARTIFACTS_DIR>/embedded``, a folder this module owns: it carries a
marker file, and only a folder with that marker is ever wiped to start afresh.
"""

from __future__ import annotations

import shutil
import socket
from typing import Protocol

from aris3nb import migrate
from aris3nb.core.db import check_connection, engine_name, sqlite_path
from aris3nb.core.errors import DatabaseUnavailable, UsageError
from aris3nb.core.redact import redact_url
from aris3nb.core.settings import Settings
from aris3nb.reference import seed as seed_data

MARKER = ".aris3nb-embedded"


class Announcer(Protocol):
    def print(self, *objects: object, markup: bool = ..., highlight: bool = ..., soft_wrap: bool = ...) -> None: ...


def _say(announce: Announcer | None, text: str) -> None:
    if announce is not None:
        announce.print(text, markup=False, highlight=False, soft_wrap=True)


def ensure_port_free(host: str, port: int) -> None:
    """Fail early, with a usage error, when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from exc


def reset_embedded_database(settings: Settings) -> str:
    """Recreate the embedded folder empty and return its SQLite URL.

    Refuses a folder that exists without the marker: it is not ours to delete; and a
    symbolic link, even to a folder with the marker: wiping it would wipe wherever it points.
    """
    folder = settings.embedded_dir
    if folder.is_symlink():
        raise UsageError(
            f"{folder} is a symbolic link, not a folder aris3nb made; remove the link "
            "or set OPS_ARTIFACTS_DIR to another folder"
        )
    if folder.exists():
        if not (folder / MARKER).is_file():
            raise UsageError(
                f"{folder} exists but was not made by aris3nb (no {MARKER} in it); "
                "move it away or set OPS_ARTIFACTS_DIR to another folder"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=0o700)
    (folder / MARKER).write_text("made by aris3nb; wiped by each `aris3nb run`\n")
    return f"sqlite:///{folder / 'aris3.db'}"


def serve(database_url: str, settings: Settings, *, host: str, port: int, announce: Announcer | None = None) -> None:
    """Serve the reference service over ``database_url`` until interrupted."""
    from aris3nb.reference.server import serve as serve_forever

    if engine_name(database_url) == "sqlite" and not sqlite_path(database_url).is_file():
        # Connecting would create an empty file, and the service would then only say
        # "schema not at head": say what is wrong instead.
        raise DatabaseUnavailable(
            f"no SQLite database at {sqlite_path(database_url)}: create it with `aris3nb db upgrade` (and `aris3nb db seed`)"
        )
    check_connection(database_url)
    ensure_port_free(host, port)
    _say(announce, f"ARIS3 reference service on http://{host}:{port} over {redact_url(database_url)} (Ctrl-C stops it)")
    serve_forever(database_url, settings, host=host, port=port)


def run(settings: Settings, *, host: str, port: int, scale: int, seed: int, announce: Announcer | None = None) -> None:
    """Migrate and seed a fresh embedded database, then serve it."""
    ensure_port_free(host, port)
    url = reset_embedded_database(settings)
    migrate.upgrade(url)
    _say(announce, f"migrated {redact_url(url)} to {migrate.head_revision()}")
    summary = seed_data.seed_database(
        url, scale=scale, seed=seed, exports_dir=settings.resolved_exports_dir(),
        seed_password=settings.seed_password.get_secret_value(),
        smoke_password=settings.smoke_password.get_secret_value(),
    )
    _say(announce, f"seeded {summary.rows.get('stock_items', 0):,} stock rows, "
                   f"{summary.rows.get('sales', 0):,} sales, {summary.rows.get('transfers', 0):,} transfers "
                   f"in {summary.duration_sec:.1f} s (seed {seed})")
    _say(announce, "sign in as e.g. northwind.admin (password: ARIS3_SEED_PASSWORD, see README)")
    serve(url, settings, host=host, port=port, announce=announce)
