"""The backup's documents as models: ``manifest.json`` (docs/FORMAT.md §5.1) and the drill
report (§5.2), field by field as ``aris3nb.backup.create`` and ``aris3nb.backup.drill`` write
them. What no schema can say — the manifest's own digest, chunk digests that make the table
digest, a path that stays in its folder, files on disk — stays in
``aris3nb.backup.manifest.validate_backup``.

Both name their version ``version``, as every document does; those written before 2026-11-30
spelled it ``format_version``, which the readers still take (these models describe the writers).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from aris3nb.formats.common import (
    Digest,
    Document,
    Engine,
    Hex64,
    NonNegativeInt,
    Omittable,
    ProfileRef,
    Record,
    Seconds,
    Text,
    UtcMillis,
    Version1,
)

#: A backup's name: 1-100 ASCII letters, digits, ``_`` and ``-``, starting with a letter or digit.
BACKUP_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"
#: A key column's value in ``last_key``: a SQLite value, or PostgreSQL's text form.
KeyValue = str | int | float | None
#: The first 8 bytes of a row digest, hex.
RowDigestPrefix = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


# -- manifest.json ------------------------------------------------------------------------


class ManifestSource(Document):
    """Which database the backup is of; never credentials. Identity fields are absent in older
    backups ("source unknown": never chosen automatically)."""

    engine: Engine
    database: str | None = None
    """PostgreSQL: the database's name; SQLite: the file's name."""
    schema_: str | None = Field(default=None, alias="schema")
    """Where its tables live: PostgreSQL's first schema of the ``search_path``; SQLite ``main``."""
    server: str | None = None
    """PostgreSQL: ``host:port`` as the URL named them."""
    system_identifier: str | None = None
    """PostgreSQL: the cluster's; ``null`` when the role may not read ``pg_control_system()``."""
    path: str | None = None
    """SQLite: the resolved file path."""
    server_version: str | None = None
    profile: str | None = None
    """The name of the target profile the backup was made with (``reference``: the bundled double)."""


class ManifestFile(Record):
    """One file of the backup (every file but the manifest)."""

    path: Text
    """Relative POSIX path."""
    size: NonNegativeInt
    sha256: Hex64
    """SHA-256 of the file's bytes, 64 lowercase hex digits (no ``sha256:`` prefix)."""
    role: Literal["database", "export", "index"]


class ManifestChunk(Record):
    """A key range of up to 5,000 rows: keys above the previous chunk's ``last_key`` up to its own."""

    last_key: list[KeyValue] | None
    """``null`` for the last chunk (no upper bound)."""
    rows: NonNegativeInt
    digest: Hex64
    """The chunk digest, 64 lowercase hex digits (no ``sha256:`` prefix)."""
    index: Omittable[Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2)]] = None
    """``[offset, length]`` of the chunk's record in the row index; absent in backups made before it."""


class ManifestTable(Record):
    """One table of the source (reflected, not a fixed list)."""

    name: Text
    key: list[Text]
    """Key columns: ``[]`` a PostgreSQL table without a primary key, ``["rowid"]`` a SQLite one."""
    rows: NonNegativeInt
    digest: Digest
    """``sha256:`` of the chunk digests' bytes, in key order."""
    digest_method: Omittable[Literal["rows", "row-sha256"]] = None
    """SQLite: how the chunk digests fold the row digests; absent: the engine's chunk digest as before the row index."""
    chunks: list[ManifestChunk]


class RowIndexRef(Record):
    """The row index file (``index/row_digests.bin``)."""

    path: Text
    """A listed file."""
    format: Literal["aris3nb.row_index"]
    version: Version1
    digest_bytes: Annotated[int, Field(ge=1)]
    """Bytes of each row digest a per-row record keeps (8)."""
    rows: NonNegativeInt
    """All tables' rows."""


class ManifestExports(Record):
    """The export files a backup made with a target profile copied."""

    dir: str | None
    """The exports folder copied; ``null``: none."""
    files: NonNegativeInt


class Manifest(Document):
    """``manifest.json``, format version 1 (docs/FORMAT.md §5.1): the only file that says what a backup is."""

    reads_format_version: ClassVar[bool] = True
    """Written as ``format_version`` before 2026-11-30: ``aris3nb.formats.reading.validate`` takes it."""

    format: Literal["aris3nb.backup.manifest"]
    version: Version1
    name: Annotated[str, StringConstraints(pattern=BACKUP_NAME)]
    created_at: UtcMillis
    """When the snapshot was taken."""
    purpose: Omittable[Literal["pre_deploy", "manual", "safety"]] = None
    """Absent in backups made before it was recorded (2026-11-29): such a backup's purpose is
    unknown, and it is a safety backup only when its name says so (``safety_…``)."""
    source: ManifestSource
    alembic_revision: str | None
    """The source's revision in the snapshot; ``null`` for a database never migrated."""
    schema_digest: Digest
    """SHA-256 of the reflected schema, canonical JSON."""
    tools: dict[str, str | None]
    """The versions that made the backup."""
    snapshot: dict[str, Any]
    """How the snapshot was taken (``method``, and for ``pg_dump`` its ``format`` and ``jobs``)."""
    files: list[ManifestFile]
    tables: list[ManifestTable]
    row_index: Omittable[RowIndexRef] = None
    """Absent in backups made before the row index."""
    durations_sec: dict[str, Seconds]
    profile: Omittable[ProfileRef] = None
    """Only in a backup made with a profile other than the built-in reference."""
    schema_tables: Omittable[list[str]] = None
    """Every table of the source's schema at the snapshot (same condition as ``profile``)."""
    excluded_tables: Omittable[list[str]] = None
    """The tables of ``backup.exclude_tables`` the source has (same condition)."""
    exports: Omittable[ManifestExports] = None
    """Same condition."""
    warnings: Omittable[list[str]] = None
    """What the backup could not do as configured; always present with a profile other than
    the reference, in others only when not empty."""
    manifest_digest: Digest
    """``sha256:`` of the canonical JSON of the manifest without this field."""


# -- drill_report_<timestamp>.json --------------------------------------------------------


class DrillCheck(Record):
    """One verified property of a drill: only ever ``PASS`` or ``FAIL``."""

    name: Text
    status: Literal["PASS", "FAIL"]
    detail: str
    duration_sec: Seconds
    evidence: dict[str, Any]


class DiffRange(Document):
    """A key range (``after_key`` < key ≤ ``up_to_key``, ``null`` unbounded) whose rows or digest
    differ from the manifest's chunk."""

    chunk: NonNegativeInt
    after_key: list[KeyValue] | None
    up_to_key: list[KeyValue] | None
    rows_recorded: NonNegativeInt | None
    rows_found: NonNegativeInt
    restored_sample: Omittable[list[dict[str, Any]]] = None
    """Without a row index: up to 5 restored rows of the range."""


class DiffCounts(Record):
    """All the rows named, per kind."""

    changed: NonNegativeInt
    missing: NonNegativeInt
    extra: NonNegativeInt


class NamedRow(Record):
    """One row the row index names."""

    key: list[Any] | None
    """``null`` for a PostgreSQL table without a key: its rows are named by digest."""
    restored: dict[str, Any] | None
    """Its values in the restored copy; ``null`` when missing."""
    recorded_digest: RowDigestPrefix | None
    """The first 8 bytes of the row digest recorded when the backup was made; ``null`` when extra."""
    restored_digest: RowDigestPrefix | None
    recorded: dict[str, Any] | None
    """The row as the backup's own data holds it, only when it still matches ``recorded_digest``."""
    backup_data: str
    """What the backup's own data holds for that key, and so where the difference came from."""


class UnnamedChunk(Record):
    """A chunk recorded as a sketch that differs in more rows than it could name."""

    chunk: NonNegativeInt
    after_key: list[KeyValue] | None
    up_to_key: list[KeyValue] | None
    rows_recorded: NonNegativeInt | None
    rows_found: NonNegativeInt
    capacity: NonNegativeInt
    rows_named: NonNegativeInt
    rows_unnamed_at_least: NonNegativeInt


class TableDiff(Document):
    """How one table differs from the manifest."""

    table: Text
    key: list[str]
    rows_recorded: NonNegativeInt
    rows_found: NonNegativeInt
    ranges: Annotated[list[DiffRange], Field(max_length=5)]
    """The first 5 differing key ranges."""
    ranges_differing: NonNegativeInt
    counts: Omittable[DiffCounts] = None
    shown_per_kind: Omittable[NonNegativeInt] = None
    changed: Omittable[list[NamedRow]] = None
    missing: Omittable[list[NamedRow]] = None
    extra: Omittable[list[NamedRow]] = None
    unexplained_chunks: Omittable[list[NonNegativeInt]] = None
    """Chunks whose digest differs although every row matches the index."""
    unnamed_chunks: Omittable[list[UnnamedChunk]] = None
    rows_unavailable: Omittable[str] = None
    """Why rows could not be named."""


class DrillRpo(Document):
    """What a restore now would lose."""

    backup_created_at: UtcMillis | None
    backup_age_sec: float | None
    newest_business_timestamp: str | None
    """As the restored database holds it (not normalised)."""
    budget_sec: float
    status: Literal["PASS", "FAIL"] | None
    """``null`` when the backup failed validation."""
    sources: Omittable[list[str]] = None
    """With a profile other than the reference: its ``rpo.sources`` as ``table.column``."""
    newest_business_timestamp_note: Omittable[str] = None


class DrillRto(Document):
    """How long the drill took against its budget."""

    total_sec: Seconds
    budget_sec: float
    status: Literal["PASS", "FAIL"] | None
    """``null`` when the drill stopped before its last stage."""


class DrillWarning(Record):
    """What could not be checked as it should (the drill passing or not)."""

    name: Text
    detail: str


class DrillReport(Document):
    """``drill_report_<timestamp>.json``, format version 1 (docs/FORMAT.md §5.2): written by every
    drill, passed or failed."""

    reads_format_version: ClassVar[bool] = True
    """Written as ``format_version`` before 2026-11-30: ``aris3nb.formats.reading.validate`` takes it."""

    format: Literal["aris3nb.drill.report"]
    version: Version1
    backup: Text
    """The backup's name (its folder's)."""
    manifest: Text
    """Where the manifest drilled is."""
    engine: Engine | None
    """The backup's engine; ``null`` when the drill stopped before it had a valid manifest."""
    started_at: UtcMillis
    status: Literal["PASS", "FAIL"]
    reason: str | None
    """A FAIL's first cause (``timeout: …`` when the deadline passed); ``null`` for a PASS."""
    checks: list[DrillCheck]
    diff: list[TableDiff]
    rto_sec: dict[str, Seconds]
    """Time per stage: validate, restore, verify, upgrade, integrity, and total."""
    rpo: DrillRpo
    rto: DrillRto
    finished_at: UtcMillis
    profile: Omittable[ProfileRef] = None
    """Absent in reports written before target profiles (2026-11-29): the reference's."""
    warnings: Omittable[list[DrillWarning]] = None
    """Absent in reports written before target profiles (2026-11-29): none."""
