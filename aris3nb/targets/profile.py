"""The target profile: what differs between ARIS3 deployments, described, not assumed.

A profile is ``aris3nb.toml`` in the target repository's root (found from the current folder
upward, like ``alembic.ini``), ``[tool.aris3nb]`` in its ``pyproject.toml``, a file named with
``--target``, or a built-in one (``reference``: the bundled double, the embedded default).
It is read into the typed model below; an unknown key or a wrong type is bad input (exit 2)
naming the key and its line. Every report, ``evidence.json`` and page banner names the profile
by its name and the SHA-256 of its file, so a reader knows which contract was checked.

Where the current folder, or one above it, holds an ``alembic.ini`` or ``migrations/`` that
are not aris3nb's own and no profile is given, the commands that judge a target refuse
(``resolve_profile``): checking the bundled reference there would be a false green.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from aris3nb.core.errors import UsageError
from aris3nb.integrity.declarative import IntegritySelection as Integrity

PROFILE_FILE = "aris3nb.toml"
PROFILE_VERSION = 1
AREAS = ("auth", "stock", "transfers", "pos", "reports", "exports")
#: aris3nb's own checkout (its reference migrations and alembic.ini are not a foreign target).
OWN_ROOT = Path(__file__).resolve().parents[2]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetCode(_Model):
    """The target's code: where it lives and the interpreter of its own environment."""

    root: Path = Path(".")
    python: str | None = None  # None: aris3nb's own interpreter (the reference double)
    alembic_ini: Path = Path("alembic.ini")
    metadata: str | None = None  # module:attribute of the models' MetaData, imported in `python`
    database_url_env: str = "DATABASE_URL"
    alembic_x_url: str | None = None
    code_revision: Literal["git", "none"] = "git"


class Migrations(_Model):
    version_num_width: int = Field(default=32, gt=0)
    widen_version_table_command: list[str] | None = None
    #: Differences between the migrated schema and the models the team knows and accepts, as
    #: patterns (fnmatch) over the gate's difference lines: each match is a WARN, not a FAIL.
    accepted_drift: list[str] = []


class Health(_Model):
    path: str = "/health"
    pointer: str = "/status"  # RFC 6901 JSON pointer into the answer
    expect: Any = "ok"


class Ready(_Model):
    path: str = "/ready"
    status: int = 200
    ready_pointer: str | None = "/status"
    ready_expect: Any = "ready"
    revision_pointer: str | None = "/revision"  # "": the service reports no revision


class AuthHeader(_Model):
    name: str = "Authorization"
    value: str = "Bearer {token}"


class Login(_Model):
    path: str
    method: Literal["POST"] = "POST"
    body: dict[str, Any]
    token_pointer: str = "/access_token"
    auth_header: AuthHeader = AuthHeader()


class SmokeAccount(_Model):
    username_env: str
    password_env: str
    base_url_env: str | None = None


class Endpoint(_Model):
    name: str
    path: str
    params: dict[str, str] = {}
    auth: bool = True
    status: int = 200
    p95_ms: float = Field(gt=0)

    @field_validator("p95_ms")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(
                "must be a finite number of milliseconds (a budget that cannot be exceeded checks nothing)"
            )
        return value


class Service(_Model):
    health: Health = Health()
    ready: Ready = Ready()
    login: Login | None = None
    smoke_account: SmokeAccount | None = None
    endpoints: list[Endpoint] = []


class AreaRule(_Model):
    area: Literal["auth", "stock", "transfers", "pos", "reports", "exports"]
    match: list[str] = []
    marker: str | None = None


class Smoke(_Model):
    path: str
    pytest_args: list[str] = []
    areas: list[AreaRule] = []
    #: The suite runs without the target's database URL (``target.database_url_env`` removed
    #: from its environment): a test suite handed the production URL may create or change
    #: databases on that server. True hands it on.
    pass_database_url: bool = False
    #: Variables set for the suite (not secrets: they are written in the profile).
    env: dict[str, str] = {}


class Backup(_Model):
    exports_dir: Path | None = None
    exports_dir_env: str | None = None
    exclude_tables: list[str] = []


class Rollback(_Model):
    revert_command: list[str] | None = None
    revert_timeout_sec: float = Field(default=300.0, gt=0, le=7 * 24 * 3600)


class RpoSource(_Model):
    table: str
    column: str


class Rpo(_Model):
    sources: list[RpoSource] = []


class Redact(_Model):
    #: ``table.column`` whose values are secrets wherever aris3nb shows a row (a drill's diff),
    #: besides the columns named like one (``aris3nb.core.redact.SECRET_COLUMN``).
    columns: list[Annotated[str, StringConstraints(pattern=r"^[^.\s]+\.[^.\s]+$")]] = []


class Profile(_Model):
    """A target profile, as ``aris3nb.toml`` (format version 1) describes it."""

    profile_version: Literal[1]
    name: str = Field(min_length=1, max_length=100)
    target: TargetCode = TargetCode()
    migrations: Migrations = Migrations()
    service: Service = Service()
    smoke: Smoke | None = None
    backup: Backup = Backup()
    integrity: Integrity = Integrity()
    rollback: Rollback = Rollback()
    rpo: Rpo = Rpo()
    redact: Redact = Redact()


@dataclass(frozen=True)
class LoadedProfile:
    """A profile and where it came from: its file (None for a built-in one) and that file's
    SHA-256, which every report names beside the profile's name; ``extends``: the built-in
    profile it builds on and that one's SHA-256, named too."""

    profile: Profile
    path: Path | None
    sha256: str | None
    extends: tuple[str, str] | None = None

    @property
    def root(self) -> Path:
        base = self.path.parent if self.path is not None else OWN_ROOT
        return (base / self.profile.target.root).resolve()

    @property
    def is_reference(self) -> bool:
        """The built-in reference profile (the bundled double, the embedded default)."""
        return self.path is None and self.profile == REFERENCE

    def exports_dir(self, environ: Mapping[str, str] | None = None) -> Path | None:
        """The deployment's export files: ``backup.exports_dir_env`` when that variable is set,
        else ``backup.exports_dir`` (relative to the target's root); None when neither is given."""
        backup = self.profile.backup
        environ = os.environ if environ is None else environ
        if backup.exports_dir_env and environ.get(backup.exports_dir_env):
            return (self.root / environ[backup.exports_dir_env]).resolve()
        return (self.root / backup.exports_dir).resolve() if backup.exports_dir is not None else None

    @property
    def label(self) -> str:
        return f"{self.profile.name} ({self.path or 'built in'}" + (
            f", sha256:{self.sha256[:12]}…)" if self.sha256 else ")"
        )

    def as_evidence(self) -> dict[str, Any]:
        evidence: dict[str, Any] = {
            "name": self.profile.name,
            "path": str(self.path) if self.path else None,
            "sha256": f"sha256:{self.sha256}" if self.sha256 else None,
        }
        if self.extends:
            evidence["extends"] = {"name": self.extends[0], "sha256": f"sha256:{self.extends[1]}"}
        return evidence


#: The built-in profile of the bundled reference double (the embedded default).
REFERENCE = Profile(profile_version=1, name="reference")


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of the key a validation error points at. TOML parsers keep no positions, so
    the key is looked for under its table's header (the n-th ``[[array]]`` header for an
    element of an array of tables), the first match after it."""
    lines = text.splitlines()
    start, prefix = 0, []
    parts = list(loc)
    for index, part in enumerate(parts[:-1]):
        if isinstance(part, int):
            continue
        prefix.append(str(part))
        nth = parts[index + 1] if isinstance(parts[index + 1], int) else None
        header = re.compile(r"^\s*\[\[?\s*" + re.escape(".".join(prefix)) + r"\s*\]\]?\s*$")
        found = [n for n in range(start, len(lines)) if header.match(lines[n])]
        if found:
            start = found[min(nth or 0, len(found) - 1)]
    key = re.compile(r"^\s*" + re.escape(str(parts[-1])) + r"\s*=") if parts else None
    return next((n + 1 for n in range(start, len(lines)) if key and key.match(lines[n])), start + 1 if start else None)


#: The built-in profiles a file may extend (``extends = "aris3"``), shipped with the package.
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
BUILTIN_PROFILES = ("aris3",)


def builtin_profile_text(name: str) -> str:
    """The TOML of a built-in profile (``UsageError`` naming the known ones otherwise)."""
    if name not in BUILTIN_PROFILES:
        raise UsageError(f"unknown built-in profile {name!r}; known: {', '.join(BUILTIN_PROFILES)}")
    return (BUILTIN_DIR / f"{name}.toml").read_text(encoding="utf-8")


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``: tables merged key by key, any other value replaced."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (
            _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return merged


def _extended(document: dict[str, Any], where: str) -> dict[str, Any]:
    name = document.pop("extends")
    if not isinstance(name, str):
        raise UsageError(f"{where}: extends: expected the name of a built-in profile ({', '.join(BUILTIN_PROFILES)})")
    try:
        base = tomllib.loads(builtin_profile_text(name))
    except UsageError as exc:
        raise UsageError(f"{where}: extends: {exc}") from exc
    return _merged(base, document)


def parse_profile(text: str, where: str, *, table: tuple[str, ...] = ()) -> Profile:
    """Read profile TOML (``table``: the keys it sits under, e.g. ``("tool", "aris3nb")``);
    ``extends = "NAME"`` lays it on the built-in profile NAME."""
    try:
        document: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where} is not valid TOML: {exc}") from exc
    for key in table:
        document = document.get(key) if isinstance(document, dict) else None
    if not isinstance(document, dict):
        raise UsageError(f"{where} has no [{'.'.join(table)}] table")
    if "extends" in document:
        document = _extended(dict(document), where)
    if document.get("profile_version") not in (None, PROFILE_VERSION):
        raise UsageError(
            f"{where}: profile_version {document.get('profile_version')!r} is not supported "
            f"(this aris3nb reads {PROFILE_VERSION})"
        )
    try:
        return Profile.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(table) + tuple(error["loc"])
        key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error["loc"]).replace(".[", "[")
        line = _line_of(text, loc)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        what = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
        raise UsageError(f"{where}{f':{line}' if line else ''}: {key}: {what}{more}") from exc


def load_profile(path: Path) -> LoadedProfile:
    """A profile file: ``aris3nb.toml``, or a ``pyproject.toml`` with ``[tool.aris3nb]``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the target profile {path}: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    table = ("tool", "aris3nb") if path.name == "pyproject.toml" else ()
    profile = parse_profile(text, str(path), table=table)
    extends = _extends_name(text, table)
    base = (extends, hashlib.sha256(builtin_profile_text(extends).encode()).hexdigest()) if extends else None
    return LoadedProfile(profile, path.resolve(), hashlib.sha256(raw).hexdigest(), base)


def _extends_name(text: str, table: tuple[str, ...]) -> str | None:
    document: Any = tomllib.loads(text)
    for key in table:
        document = document.get(key, {})
    return document.get("extends")


def load_target_profile(path: str | Path | None) -> LoadedProfile:
    """The profile a phase notebook is given: a profile file, or None for the built-in reference."""
    return load_profile(Path(path)) if path else LoadedProfile(REFERENCE, None, None)


def _pyproject_profile(folder: Path) -> Path | None:
    pyproject = folder / "pyproject.toml"
    try:
        return (
            pyproject if "aris3nb" in (tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool") or {}) else None
        )
    except (OSError, tomllib.TOMLDecodeError):
        return None


def find_profile(start: Path) -> Path | None:
    """The profile file nearest above ``start`` (``aris3nb.toml``, else ``[tool.aris3nb]``)."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / PROFILE_FILE).is_file():
            return folder / PROFILE_FILE
        if (found := _pyproject_profile(folder)) is not None:
            return found
    return None


def foreign_repository(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding an ``alembic.ini`` or ``migrations/``
    that are not aris3nb's own reference schema, or None."""
    for folder in (start.resolve(), *start.resolve().parents):
        if folder == OWN_ROOT:
            return None
        if (folder / "alembic.ini").is_file() or (folder / "migrations").is_dir():
            return None if _holds_own_history(folder) else folder
    return None


def _holds_own_history(folder: Path) -> bool:
    """Whether ``folder``'s ``alembic.ini`` and ``migrations/`` are, file for file and byte for
    byte, the reference schema's history this aris3nb ships: a checkout of aris3nb with the
    package installed from it without ``-e`` (``OWN_ROOT`` is then site-packages). Anything
    else — another history, or an aris3nb checkout of another version — stays foreign."""
    from aris3nb.resources import ALEMBIC_INI, MIGRATIONS_DIR

    def files(root: Path) -> dict[str, bytes]:
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }

    try:
        ini_equal = (folder / "alembic.ini").read_bytes() == ALEMBIC_INI.read_bytes()
        return ini_equal and files(folder / "migrations") == files(MIGRATIONS_DIR)
    except OSError:
        return False


def resolve_profile(given: Path | None, *, cwd: Path | None = None, embedded: bool = False) -> LoadedProfile:
    """The profile a command judges its target with: ``given`` (``--target``), else the one
    found from ``cwd`` upward, else the built-in reference — refused (exit 2) where the folder
    belongs to another ARIS3 repository and ``embedded`` was not asked for on purpose."""
    cwd = cwd or Path.cwd()
    if given is not None:
        path = given / PROFILE_FILE if given.is_dir() else given
        if not path.is_file() and given.is_dir() and (found := _pyproject_profile(given)) is not None:
            path = found
        return load_profile(path)
    if (found := find_profile(cwd)) is not None:
        return load_profile(found)
    if not embedded and (foreign := foreign_repository(cwd)) is not None:
        raise UsageError(
            f"{foreign} holds an ARIS3 repository (alembic.ini or migrations/) that aris3nb has no profile for: "
            "judging it would check aris3nb's bundled reference instead. Describe it with `aris3nb init` (writes "
            "aris3nb.toml), give --target PATH, or pass --embedded to check the embedded default on purpose"
        )
    return LoadedProfile(REFERENCE, None, None)
