"""The backup manifest: its format (version 1), its own digest, reading it safely, and
validating a backup folder against it.

A manifest is the last file written into a backup and the only one that says what the
backup is. Validation trusts nothing in the folder: it re-hashes every file, refuses any
file the manifest does not list, any path that could leave the folder, and a manifest whose
own digest does not match its content. It reports every problem it finds, each naming the
file, table or field, rather than stopping at the first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aris3nb.backup.digest import INDEX_MAGIC, table_digest_of
from aris3nb.core.errors import ManifestInvalid, ManifestUnreadable
from aris3nb.core.files import canonical_json, crosses_link, sha256_file, unsafe_path_reason, version_of
from aris3nb.core.words import recorded
from aris3nb.formats.backup import Manifest as ManifestModel
from aris3nb.formats.backup import ManifestTable
from aris3nb.formats.reading import DocumentInvalid, validate

MANIFEST_NAME = "manifest.json"
FORMAT = "aris3nb.backup.manifest"
#: The row index file's format (``row_index.format``), version 1.
INDEX_FORMAT = "aris3nb.row_index"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
#: A backup's name: 1-100 ASCII letters, digits, '_' and '-', starting with a letter or digit
#: (``\Z``, not ``$``, which would also match before a trailing newline).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}\Z")


def manifest_digest(document: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical manifest without its ``manifest_digest`` field."""
    body = {k: v for k, v in document.items() if k != "manifest_digest"}
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass
class Manifest:
    """A parsed manifest (the raw document is kept: it is what the digest covers)."""

    document: dict[str, Any]
    path: Path

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return str(self.document["name"])

    @property
    def engine(self) -> str:
        return str(self.document["source"]["engine"])

    @property
    def revision(self) -> str | None:
        return self.document["alembic_revision"]

    @property
    def tables(self) -> list[dict[str, Any]]:
        return list(self.document["tables"])

    @property
    def files(self) -> list[dict[str, Any]]:
        return list(self.document["files"])


def read_manifest(path: Path) -> Manifest:
    """Parse a manifest file, or raise ``ManifestUnreadable`` (exit 2) in one line.

    Only the JSON is checked here; ``validate_backup`` judges the content.
    """
    try:
        if path.is_dir():
            path = path / MANIFEST_NAME
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            raise ManifestUnreadable(f"{path} is a symbolic link; a manifest must be a regular file")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise ManifestUnreadable(
                f"{path} is {info.st_size} bytes, more than a manifest can be ({MAX_MANIFEST_BYTES})"
            )
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestUnreadable(f"no manifest at {path}") from exc
    except (OSError, ValueError) as exc:  # ValueError: a path with NUL in it
        raise ManifestUnreadable(f"cannot read {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from exc
    if not raw.strip():
        raise ManifestUnreadable(f"{path} is empty")
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ManifestUnreadable(f"{path} is not valid JSON ({_short(exc)}); it may be truncated or edited") from exc
    if not isinstance(document, dict):
        raise ManifestUnreadable(f"{path} holds a JSON {type(document).__name__}, not a manifest object")
    try:  # what the manifest digest is computed over must exist for every manifest read
        canonical_json(document)
    except (UnicodeEncodeError, ValueError, RecursionError) as exc:
        raise ManifestUnreadable(
            f"{path} holds values no manifest can hold (a lone surrogate in a string, "
            f"a number out of range): {_short(exc)}"
        ) from exc
    return Manifest(document=document, path=path)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a manifest")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


@dataclass
class Validation:
    """Every problem found in a backup, each a line naming what it is about; and warnings:
    what could not be checked as it should have been, and why (the backup is still valid)."""

    manifest: Manifest
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    bytes_checked: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_invalid(self) -> None:
        if self.problems:
            raise ManifestInvalid(self.manifest.path, self.problems)


def check_structure(document: dict[str, Any]) -> list[str]:
    """Format and version; every field against the model of docs/FORMAT.md §5.1
    (``aris3nb.ManifestModel``: presence, types, digests' shape, names, enums); then what no
    model can say (``semantic_problems``)."""
    if document.get("format") != FORMAT:
        return [f"field 'format' is not {FORMAT!r}: not an aris3nb backup manifest"]
    version = version_of(document)
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        # an unknown version's fields mean nothing to this reader
        shown = version if version is None or type(version) is int else f"of type {type(version).__name__}"
        return [f"version {shown} is not supported (this aris3nb reads {list(SUPPORTED_VERSIONS)})"]
    try:
        model = validate(ManifestModel, document, MANIFEST_NAME)
    except DocumentInvalid as exc:
        return exc.problems
    return semantic_problems(document, model)


def semantic_problems(document: dict[str, Any], model: ManifestModel) -> list[str]:
    """What a well-formed manifest must also be: its own digest matching its content; safe
    paths, each file and table listed once; chunks that cut the key in order (the last one
    unbounded) and hold the table's rows, their digests making the table digest; the row
    index a listed file with every chunk's record inside it."""
    problems = []
    if manifest_digest(document) != model.manifest_digest:
        problems.append("manifest digest does not match its content: the manifest was changed after it was written")
    for entry in model.files:
        if reason := unsafe_path_reason(entry.path):
            problems.append(f"file {entry.path!r}: unsafe path ({reason})")
    problems += _duplicates("file", [entry.path for entry in model.files])
    problems += _duplicates("table", [table.name for table in model.tables])
    for table, entry in zip(model.tables, document["tables"], strict=True):
        problems += _table_problems(table, entry["chunks"])
    problems += _row_index_problems(model)
    return problems


def _duplicates(what: str, names: list[str]) -> list[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for name in names:
        (repeated if name in seen else seen).add(name)
    return [f"{what} {name!r} is listed more than once" for name in sorted(repeated)]


def _table_problems(table: ManifestTable, chunks: list[dict[str, Any]]) -> list[str]:
    where = f"table {table.name!r}"
    problems = []
    width = max(len(table.key), 1)
    for number, chunk in enumerate(table.chunks):
        if number == len(table.chunks) - 1:
            if chunk.last_key is not None:
                problems.append(f"{where}: chunk {number}: the last chunk's 'last_key' must be null (no upper bound)")
        elif chunk.last_key is None or len(chunk.last_key) != width:
            problems.append(f"{where}: chunk {number}: 'last_key' is not a list of {width} key values")
    if problems:
        return problems
    held = sum(chunk.rows for chunk in table.chunks)
    if held != table.rows:
        problems.append(f"{where}: its chunks hold {held} rows, not the {table.rows} it records")
    if chunks and table_digest_of(chunks) != table.digest:
        # A drill compares chunk by chunk: a chunk digest changed alone would go unseen.
        problems.append(f"{where}: its chunks' digests do not make its table digest {table.digest[:19]}…")
    return problems


def _row_index_problems(model: ManifestModel) -> list[str]:
    """The row index, when the manifest has one: a listed file, and every chunk's ``index``
    record inside it (so a reader never seeks outside the file)."""
    records = [
        (table.name, number, chunk.index)
        for table in model.tables
        for number, chunk in enumerate(table.chunks)
        if chunk.index is not None
    ]
    if model.row_index is None:
        if not records:
            return []
        return [
            f"table {records[0][0]!r}: chunk {records[0][1]} has an 'index' record but the manifest has no 'row_index'"
        ]
    listed = next((entry for entry in model.files if entry.path == model.row_index.path), None)
    if listed is None:
        return [f"the row index {model.row_index.path[:120]!r} is not a listed file"]
    return [
        f"table {table!r}: chunk {number}: 'index' is not an [offset, length] inside the row index"
        for table, number, (offset, length) in records
        if not (offset >= len(INDEX_MAGIC) and length > 0 and offset + length <= listed.size)
    ]


@dataclass
class Fetched:
    """What a download of a backup found on the way in: ``verified``, the files it wrote with
    the size and SHA-256 of the bytes written (checked against the manifest as they came), and
    ``problems``, why the others are absent (``{path in the backup: message naming the object}``)."""

    verified: dict[str, tuple[int, str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def check_files(
    manifest: Manifest, verified: Mapping[str, tuple[int, str]] | None = None
) -> tuple[list[str], int, int]:
    """Every listed file present with its size and SHA-256; nothing unlisted; no links. A file
    in ``verified`` with the manifest's size and SHA-256 (a download hashed it on the way in,
    moments ago, into a folder of its own) is checked by type and size, not hashed again."""
    problems: list[str] = []
    folder = manifest.folder
    listed: set[str] = set()
    checked = total_bytes = 0
    for entry in manifest.files:
        relative = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(relative, str) or unsafe_path_reason(relative):
            continue  # reported by check_structure; never opened
        listed.add(relative)
        try:
            problem, size = _check_listed_file(folder, relative, entry, (verified or {}).get(relative))
        except OSError as exc:  # a name too long, a file where a folder should be, unreadable...
            problem, size = f"file {relative!r} cannot be checked: {exc.strerror or exc}", None
        if problem:
            problems.append(problem)
        if size is not None:
            checked += 1
            total_bytes += size
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            if relative == MANIFEST_NAME:
                continue
            if path.is_symlink():
                if relative not in listed:
                    problems.append(f"unlisted symbolic link {relative!r} in the backup folder")
            elif path.is_file() and relative not in listed:
                problems.append(f"unlisted file {relative!r} in the backup folder")
    return problems, checked, total_bytes


def _check_listed_file(
    folder: Path, relative: str, entry: dict[str, Any], verified: tuple[int, str] | None = None
) -> tuple[str | None, int | None]:
    """One listed file: (the problem or None, the bytes checked or None)."""
    if crosses_link(folder, relative):
        return f"file {relative!r} lies under a symbolic link; backups hold regular folders only", None
    path = folder / relative
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return _missing(relative), None
    if stat.S_ISLNK(info.st_mode):
        return f"file {relative!r} is a symbolic link; backups hold regular files only", None
    if not stat.S_ISREG(info.st_mode):
        return f"file {relative!r} is not a regular file", None
    if info.st_size != entry.get("size"):
        return f"file {relative!r} is {info.st_size} bytes, the manifest says {recorded(entry.get('size'))}", None
    if verified is not None and verified == (entry.get("size"), entry.get("sha256")):
        return None, info.st_size
    size, digest = sha256_file(path)
    if digest != entry.get("sha256"):
        said = recorded(entry.get("sha256"))
        return f"file {relative!r} has changed: its SHA-256 is {digest}, the manifest says {said}", size
    return None, size


@dataclass(frozen=True)
class UnknownSchema:
    """What a schema lookup answers when it cannot tell the tables at a revision but the
    backup may still be judged: ``reason`` (naming the revision) becomes a warning, and the
    live schema the manifest recorded at backup time is compared instead."""

    reason: str


#: Names the tables the ARIS3 schema has at a revision; None for a revision unknown to the code
#: (a problem: the backup cannot be judged), or ``UnknownSchema`` (a warning, see there).
SchemaTables = Callable[[str | None], "set[str] | frozenset[str] | UnknownSchema | None"]


def validate_backup(
    path: Path, schema_tables: SchemaTables | None = None, fetched: Fetched | None = None
) -> Validation:
    """Check a backup folder against its manifest; every problem is collected.

    ``schema_tables(revision)`` names the tables the schema has at a revision, so that a
    manifest missing one (or listing a stranger) is caught; None skips that check.
    ``fetched``: what the download of this copy verified (not hashed again) and why files are
    absent (said in place of "missing").
    """
    manifest = read_manifest(path)
    validation = Validation(manifest=manifest)
    structure = check_structure(manifest.document)
    validation.problems += structure
    if any(p.startswith("version ") or "'format'" in p for p in structure):
        return validation
    name = manifest.document.get("name")
    if isinstance(name, str) and name != manifest.folder.name:
        validation.problems.append(
            f"the backup's folder is named {manifest.folder.name!r} but its manifest says "
            f"{name[:120]!r}: a copied or renamed backup is not the one the manifest describes"
        )
    if isinstance(manifest.document.get("files"), list):
        problems, validation.files_checked, validation.bytes_checked = check_files(
            manifest, fetched.verified if fetched else None
        )
        # check_files' own words for an absent file (_file_problem), said instead by why it is.
        instead = {_missing(relative): message for relative, message in (fetched.problems if fetched else {}).items()}
        validation.problems += [instead.pop(problem, problem) for problem in problems]
        validation.problems += sorted(instead.values())  # not listed (the manifest's own): said too
    if schema_tables is not None and isinstance(manifest.document.get("tables"), list):
        problems, warnings = _check_schema_coverage(manifest, schema_tables)
        validation.problems += problems
        validation.warnings += warnings
    return validation


def _missing(relative: str) -> str:
    return f"file {relative!r} is missing"


def _text_list(document: dict[str, Any], name: str) -> list[str] | None:
    value = document.get(name)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None


def _check_schema_coverage(manifest: Manifest, schema_tables: SchemaTables) -> tuple[list[str], list[str]]:
    revision = manifest.document.get("alembic_revision")
    if not isinstance(revision, (str, type(None))):
        return [], []  # its type is reported by check_structure
    listed = {t["name"] for t in manifest.document["tables"] if isinstance(t, dict) and isinstance(t.get("name"), str)}
    recorded = _text_list(manifest.document, "schema_tables")
    return schema_coverage(
        revision,
        listed,
        schema_tables,
        live=set(recorded) if recorded is not None else None,
        excluded=set(_text_list(manifest.document, "excluded_tables") or ()),
    )


def schema_coverage(
    revision: str | None,
    listed: set[str],
    schema_tables: SchemaTables,
    *,
    live: set[str] | None = None,
    excluded: AbstractSet[str] = frozenset(),
) -> tuple[list[str], list[str]]:
    """How the tables ``listed`` differ from the schema's at ``revision`` (problems), and what
    could not be compared as it should (warnings): the same check ``backup create`` runs
    before publishing a backup and ``validate`` runs after.

    Tables ``excluded`` from backups (a profile's ``backup.exclude_tables``) are left out on
    both sides. When the lookup answers ``UnknownSchema``, the tables are compared with the
    ``live`` schema recorded at backup time instead, and its reason is a warning."""
    expected = schema_tables(revision)
    warnings: list[str] = []
    if expected is None:
        return (
            [  # only the reference's lookup answers None: another profile's answers UnknownSchema
                f"alembic revision {str(revision)[:120]!r} is unknown to aris3nb's reference ARIS3, the profile this "
                "database was judged with: cannot tell which tables the backup must hold (for an ARIS3 of your own, "
                "give --target PATH to its aris3nb.toml, written by `aris3nb init` in its repository)"
            ],
            [],
        )
    if isinstance(expected, UnknownSchema):
        if live is None:
            warnings.append(
                f"{expected.reason}; the manifest records no live schema either: the backup's tables "
                "were not compared with any schema"
            )
            return [], warnings
        warnings.append(f"{expected.reason}; the tables were compared with the live schema recorded at backup time")
        expected, against = live, "the live schema recorded at backup time"
    else:
        against = f"the schema at {revision}"
    expected = set(expected) - excluded
    listed = listed - excluded
    problems = [f"table {name!r} of {against} is not in the backup" for name in sorted(expected - listed)]
    problems += [f"table {name!r} is in the backup but not in {against}" for name in sorted(listed - expected)]
    return problems, warnings


def schema_coverage_problems(revision: str | None, listed: set[str], schema_tables: SchemaTables) -> list[str]:
    """The problems of ``schema_coverage`` (the reference's check: no live schema, nothing excluded)."""
    return schema_coverage(revision, listed, schema_tables)[0]
