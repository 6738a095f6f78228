"""The embedded default target: a local SQLite ARIS3 (the reference double), migrated,
seeded and served — one provisioning for all who need one: ``aris3nb run`` and the gate
(``embedded_target``: a throwaway folder, served in the background, removed afterwards) and
``aris3nb serve --embedded`` (``run``: ``<OPS_ARTIFACTS_DIR>/embedded``, served until Ctrl-C).

The persistent folder is one this module owns: it carries a marker file, and only a folder
with that marker (and not a symbolic link) is ever wiped to start afresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aris3nb import migrate
from aris3nb.core.db import check_connection, engine_name, sqlite_path
from aris3nb.core.errors import DatabaseUnavailable, UsageError
from aris3nb.core.redact import redact_url
from aris3nb.core.scratch import memory_folder
from aris3nb.core.settings import EMBEDDED_SCALE, Settings
from aris3nb.reference import seed as seed_data

MARKER = ".aris3nb-embedded"

#: The room an embedded target at a scale is given (database, exports and journal): a fixed
#: part, and per stock row more than the seeded database takes (~650 bytes at 2,000,000).
THROWAWAY_FIXED_BYTES = 32 << 20
THROWAWAY_BYTES_PER_STOCK_ROW = 1024


def throwaway_room(scale: int) -> int:
    return THROWAWAY_FIXED_BYTES + scale * THROWAWAY_BYTES_PER_STOCK_ROW


@dataclass(frozen=True)
class EmbeddedTarget:
    """A provisioned embedded target: its database, export files and service, and the facts
    of its making (scale, seed, rows per table, how long it took)."""

    database_url: str
    exports_dir: Path
    base_url: str | None = None
    scale: int = EMBEDDED_SCALE
    seed: int = seed_data.DEFAULT_SEED
    rows: dict[str, int] = field(default_factory=dict)
    setup_sec: float = 0.0
    in_memory: bool = False
    throwaway: bool = False  # served with the seed's light password hashing (``create_app``)

    @property
    def facts(self) -> dict[str, Any]:
        return {
            "database": "temporary SQLite file" + (" in memory" if self.in_memory else ""),
            "seed_scale": self.scale,
            "seed": self.seed,
            "rows": self.rows,
            "setup_sec": round(self.setup_sec, 3),
            "base_url": self.base_url,
            "password_hashing": "the seed's light Argon2id parameters (throwaway accounts)"
            if self.throwaway
            else "Argon2id, standard parameters",
        }


def provision(
    database_url: str,
    exports_dir: Path,
    settings: Settings,
    *,
    scale: int = EMBEDDED_SCALE,
    seed: int = seed_data.DEFAULT_SEED,
) -> EmbeddedTarget:
    """Migrate ``database_url`` (an empty SQLite file) to head and seed it."""
    started = time.perf_counter()
    migrate.upgrade(database_url)
    summary = seed_data.seed_database(
        database_url,
        scale=scale,
        seed=seed,
        exports_dir=exports_dir,
        seed_password=settings.service.seed_password.get_secret_value(),
        smoke_password=settings.service.smoke_password.get_secret_value(),
    )
    return EmbeddedTarget(
        database_url, exports_dir, None, summary.scale, summary.seed, dict(summary.rows), time.perf_counter() - started
    )


@contextlib.contextmanager
def reference_service(database_url: str, settings: Settings) -> Iterator[str]:
    """The reference service served over ``database_url`` on a free loopback port in the
    background (``aris3nb run --database-url`` without ``--base-url``); stopped afterwards."""
    from aris3nb.reference.server import running_server

    with running_server(database_url, settings) as base_url:
        yield base_url


@contextlib.contextmanager
def embedded_target(
    settings: Settings, *, scale: int = EMBEDDED_SCALE, purpose: str = "run"
) -> Iterator[EmbeddedTarget]:
    """A fresh embedded target in a throwaway folder (``aris3nb-<purpose>-embedded-pid<pid>-*``,
    swept by a later run if this process is killed), served on a free loopback port in the
    background; stopped and removed when the block ends.

    The folder is in memory when the system has a memory folder with room for the scale
    (``aris3nb.core.scratch``), else in the temporary folder: the database is thrown away, so
    durability buys nothing, and on disk each of the smoke suite's commits waits for an fsync."""
    from aris3nb.reference.server import running_server

    root = memory_folder(settings.artifacts.memory_dir, throwaway_room(scale))
    with tempfile.TemporaryDirectory(prefix=f"aris3nb-{purpose}-embedded-pid{os.getpid()}-", dir=root) as folder:
        target = provision(f"sqlite:///{Path(folder) / 'aris3.db'}", Path(folder) / "exports", settings, scale=scale)
        if root is not None:
            target = dataclasses.replace(target, in_memory=True)
        started = time.perf_counter()
        served = settings.updated(target={"exports_dir": target.exports_dir})
        with running_server(target.database_url, served, throwaway=True) as url:
            setup_sec = target.setup_sec + time.perf_counter() - started
            yield dataclasses.replace(target, base_url=url, setup_sec=setup_sec, throwaway=True)


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
    folder = settings.artifacts.embedded_dir
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
            f"no SQLite database at {sqlite_path(database_url)}: "
            "create it with `aris3nb db upgrade` (and `aris3nb db seed`)"
        )
    check_connection(database_url)
    ensure_port_free(host, port)
    _say(announce, f"ARIS3 reference service on http://{host}:{port} over {redact_url(database_url)} (Ctrl-C stops it)")
    serve_forever(database_url, settings, host=host, port=port)


def run(settings: Settings, *, host: str, port: int, scale: int, seed: int, announce: Announcer | None = None) -> None:
    """Migrate and seed a fresh embedded database, then serve it."""
    ensure_port_free(host, port)
    url = reset_embedded_database(settings)
    target = provision(url, settings.resolved_exports_dir(), settings, scale=scale, seed=seed)
    _say(announce, f"migrated {redact_url(url)} to {migrate.head_revision()}")
    _say(
        announce,
        f"seeded {target.rows.get('stock_items', 0):,} stock rows, "
        f"{target.rows.get('sales', 0):,} sales, {target.rows.get('transfers', 0):,} transfers "
        f"in {target.setup_sec:.1f} s (seed {seed})",
    )
    _say(announce, "sign in as e.g. northwind.admin (password: ARIS3_SEED_PASSWORD, see README)")
    serve(url, settings, host=host, port=port, announce=announce)
