"""Typed settings, read from the environment in one place, as one object with nested groups.

``load_settings()`` reads every variable once into a ``Settings``: ``settings.target`` (the
ARIS3 being worked on), ``settings.artifacts`` (where evidence and backups go),
``settings.backup`` (timeouts and the recovery budgets), ``settings.run``, ``settings.gate``,
``settings.integrity`` and ``settings.service`` (the reference service and its accounts).
The playbook's own variables keep their names (``OPS_*``, ``DATABASE_URL``); the service's are
prefixed ``ARIS3_``. Commands take a ``Settings`` and pass it on explicitly; a library default
that a setting also gives is read from the setting's field (``default_of``), never written twice.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from aris3nb.core.errors import InvalidSettings, UsageError
from aris3nb.core.scratch import MEMORY_FOLDER

#: Where the embedded default keeps its SQLite database and export files.
EMBEDDED_DIRNAME = "embedded"
#: Stock rows the embedded default is seeded with (everything else grows with it).
EMBEDDED_SCALE = 3000
#: The random seed of the reference's generated data (the same seed, the same rows).
EMBEDDED_SEED = 42
#: Written by a rollback (NO-GO) in the artifacts folder; the gate FAILs while it exists.
FREEZE_MARKER_NAME = "DEPLOY_FREEZE.json"
#: The longest timeout (or age) any ``*_SEC`` setting or ``--timeout`` accepts: 7 days. Far
#: below what the clocks, threads and PostgreSQL's ``statement_timeout`` (about 24.8 days)
#: can hold, and far above any operation of the playbook.
MAX_TIMEOUT_SEC = 7 * 24 * 3600


def _timeout_problem(value: float) -> str | None:
    if math.isnan(value) or math.isinf(value):
        return f"must be a finite number of seconds, not {value}"
    if value <= 0:
        return f"must be more than 0 seconds, not {value:g}"
    if value > MAX_TIMEOUT_SEC:
        return f"must be at most {MAX_TIMEOUT_SEC} seconds (7 days), not {value:g}"
    return None


def check_timeout_sec(value: float, name: str) -> float:
    """``value`` when it is a usable number of seconds (finite, above 0, at most
    ``MAX_TIMEOUT_SEC``); otherwise ``UsageError`` (exit 2) naming ``name`` (e.g. ``--timeout``)."""
    problem = _timeout_problem(float(value))
    if problem is not None:
        raise UsageError(f"{name} {problem}")
    return float(value)


def _valid_seconds(value: float) -> float:
    problem = _timeout_problem(float(value))
    if problem is not None:
        raise ValueError(problem)
    return value


#: A ``*_SEC`` setting: seconds, checked by the same rule as ``check_timeout_sec``.
Seconds = Annotated[float, AfterValidator(_valid_seconds)]


#: How ``OPS_ARTIFACTS_DIR`` names a repository on S3-compatible object storage.
REPOSITORY_SCHEME = "s3://"


def is_repository_url(value: object) -> bool:
    """Whether ``value`` names a repository on object storage (``s3://...``), not a folder."""
    return isinstance(value, str) and value[: len(REPOSITORY_SCHEME)].lower() == REPOSITORY_SCHEME


def _local_artifacts_dir(value: object) -> object:
    # An s3:// value is the repository (``artifacts.repository_url``); as a Path it would be mangled
    # into "s3:/bucket". The local folder then keeps its default; the backup commands point it
    # at a staging folder of their own while they run (``aris3nb.storage.artifacts``).
    return Path("artifacts") if is_repository_url(value) else value


def _none_if_empty(value: object) -> object:
    return None if value == "" else value


def _repository_url(value: object) -> object:
    return value if is_repository_url(value) else None


#: The largest RPO budget accepted: a year. Beyond, a freshness check could never fail.
MAX_RPO_DAYS = 366
#: The largest drill age accepted: a year, as the RPO budget's.
MAX_FRESHNESS_DAYS = MAX_RPO_DAYS
#: The seeded smoke account (``aris3nb.reference.smoke_tenant.SMOKE_USERNAME``; a test keeps them equal).
#: Spelled out here because the playbook tooling does not import the reference service.
DEFAULT_SMOKE_USERNAME = "smoke.admin"
#: Below this many samples a percentile is not evidence: the latency check says "inconclusive".
MIN_LATENCY_SAMPLES = 200


class _Group(BaseSettings):
    """One group of settings: each field reads its own variable (``validation_alias``)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)


def default_of(group: type[BaseModel], name: str) -> Any:
    """The documented default of one setting, for a library default that must agree with it."""
    return group.model_fields[name].get_default(call_default_factory=True)


class TargetSettings(_Group):
    """The ARIS3 being worked on: its database, its address, its export files."""

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    base_url: str | None = Field(default=None, validation_alias="ARIS3_BASE_URL")
    exports_dir: Path | None = Field(default=None, validation_alias="ARIS3_EXPORTS_DIR")
    #: How long any PostgreSQL session of aris3nb (or pg_dump/pg_restore it runs) waits for a lock.
    lock_timeout_sec: Seconds = Field(default=15.0, validation_alias="OPS_LOCK_TIMEOUT_SEC")


class ArtifactsSettings(_Group):
    """Where evidence, backups and the embedded default's database go, and how long they are kept."""

    dir: Annotated[Path, BeforeValidator(_local_artifacts_dir)] = Field(
        default=Path("artifacts"),
        validation_alias="OPS_ARTIFACTS_DIR",
        description="The local artifacts folder (default ./artifacts). When OPS_ARTIFACTS_DIR is an "
        "s3://BUCKET[/PREFIX] URL, this keeps its default and the URL is repository_url.",
    )
    #: ``OPS_ARTIFACTS_DIR`` when it is ``s3://BUCKET[/PREFIX]``: the backups live in that
    #: repository (credentials, region and endpoint only from the AWS variables and config).
    repository_url: Annotated[str | None, BeforeValidator(_repository_url)] = Field(
        default=None,
        validation_alias="OPS_ARTIFACTS_DIR",
        description="OPS_ARTIFACTS_DIR when it is an s3://BUCKET[/PREFIX] URL (None otherwise): the "
        "repository on S3-compatible object storage that the backup commands use; endpoint, region "
        "and credentials come from AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY or AWS_PROFILE.",
    )
    shown_as: str | None = Field(
        default=None,
        validation_alias="OPS_ARTIFACTS_SHOWN_AS",
        description="Set by aris3nb itself, for what runs in a staging copy of an s3:// repository "
        "(a run's phases on a bucket): the repository the local folder stands for, so that what a "
        "message tells a person to look at or remove is named where it stays, on the bucket.",
    )
    memory_dir: Annotated[Path | None, BeforeValidator(_none_if_empty)] = Field(
        default=MEMORY_FOLDER,
        validation_alias="OPS_MEMORY_DIR",
        description="A folder kept in memory (tmpfs) for throwaway databases, whose durability buys "
        "nothing: the embedded default's and the migrations round trip's. Used only when it exists, is "
        "writable and has twice their room free; else they go to the temporary folder. Empty: never.",
    )
    embedded_keep_last: int = Field(
        default=10,
        ge=0,
        le=100_000,
        validation_alias="OPS_EMBEDDED_KEEP_LAST",
        description="After each run of the embedded default, keep the newest N backups of its "
        "disposable databases (and the one the last GO run drilled) and remove the older ones; 0 "
        "keeps them all. Backups of real targets are never touched (that is aris3nb backup forget).",
    )
    retain_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        validation_alias="OPS_RETAIN_DAYS",
        description="Object Lock retention, in days, of every object a backup command writes to an "
        "s3:// repository (backup create --retain-days overrides it); the bucket must have Object "
        "Lock (exit 2 otherwise, before anything is written). Unset: no retention.",
    )
    retention_mode: Literal["GOVERNANCE", "COMPLIANCE"] = Field(
        default="GOVERNANCE",
        validation_alias="OPS_RETENTION_MODE",
        description="The Object Lock mode of OPS_RETAIN_DAYS: GOVERNANCE (a principal with "
        "s3:BypassGovernanceRetention may still delete) or COMPLIANCE (nobody can, not even the "
        "account root, until the date).",
    )

    @property
    def freeze_marker(self) -> Path:
        return self.dir / FREEZE_MARKER_NAME

    def shown_text(self, text: str) -> str:
        """``text`` with the staging folder's paths named as ``show`` names them."""
        if self.shown_as is None:
            return text
        return text.replace(f"{self.dir}/", self.shown_as.rstrip("/") + "/").replace(
            str(self.dir), self.shown_as.rstrip("/")
        )

    def show(self, path: Path) -> str:
        """``path`` as a message names it to a person: below a staging copy of a repository
        (``shown_as``), the place it stands for on the bucket; else the path itself."""
        if self.shown_as is not None:
            with contextlib.suppress(ValueError):
                relative = Path(path).relative_to(self.dir).as_posix()
                return self.shown_as.rstrip("/") + ("" if relative == "." else f"/{relative}")
        return str(path)

    @property
    def embedded_dir(self) -> Path:
        return self.dir / EMBEDDED_DIRNAME


class BackupSettings(_Group):
    """Backups and drills: their deadlines and the recovery budgets they are judged by."""

    drill_enabled: bool = Field(default=False, validation_alias="OPS_ENABLE_BACKUP_DRILL")
    drill_timeout_sec: Seconds = Field(default=120.0, validation_alias="OPS_DRILL_TIMEOUT_SEC")
    timeout_sec: Seconds = Field(default=3600.0, validation_alias="OPS_BACKUP_TIMEOUT_SEC")
    #: The RPO budget: the newest valid backup of a target may be at most this old (seconds) —
    #: judged by the gate's ``backup.freshness`` and by every drill.
    rpo_budget_sec: float = Field(
        default=86400.0, gt=0, le=MAX_RPO_DAYS * 86400, allow_inf_nan=False, validation_alias="OPS_RPO_BUDGET_SEC"
    )
    #: The RTO budget: a drill (validate, restore, verify, upgrade) may take at most this long.
    rto_budget_sec: Seconds = Field(default=900.0, validation_alias="OPS_RTO_BUDGET_SEC")
    #: ``drill.freshness``: the last passing drill of a backup of the target may be at most this
    #: old (days; fractions allowed).
    drill_max_age_days: float = Field(
        default=7.0, gt=0, le=MAX_FRESHNESS_DAYS, allow_inf_nan=False, validation_alias="OPS_DRILL_MAX_AGE_DAYS"
    )


class RunSettings(_Group):
    """``aris3nb run``: waiting for another run, a cell's time, the rollback's revert command."""

    #: How long ``aris3nb run`` waits for another run against the same target to finish (0: refuse at once).
    lock_wait_sec: float = Field(default=30.0, ge=0, le=MAX_TIMEOUT_SEC, validation_alias="OPS_RUN_LOCK_WAIT_SEC")
    #: Seconds a notebook cell may run before its phase is stopped (``--cell-timeout`` overrides).
    cell_timeout_sec: Seconds = Field(default=600.0, validation_alias="OPS_CELL_TIMEOUT_SEC")
    revert_command: str | None = Field(default=None, validation_alias="OPS_REVERT_COMMAND")
    #: Each phase's kernel forked from one process that did the imports every phase needs, instead
    #: of booted on its own (``aris3nb.evidence.forks``); false: each kernel boots on its own.
    fork_kernels: bool = Field(default=True, validation_alias="OPS_FORK_KERNELS")


class GateSettings(_Group):
    """The gate's latency budgets, sampling and timeouts."""

    budget_health_ms: float = Field(
        default=120.0, gt=0, allow_inf_nan=False, validation_alias="OPS_GATE_BUDGET_HEALTH_MS"
    )
    budget_stock_ms: float = Field(
        default=300.0, gt=0, allow_inf_nan=False, validation_alias="OPS_GATE_BUDGET_STOCK_MS"
    )
    budget_reports_ms: float = Field(
        default=500.0, gt=0, allow_inf_nan=False, validation_alias="OPS_GATE_BUDGET_REPORTS_MS"
    )
    budget_exports_ms: float = Field(
        default=300.0, gt=0, allow_inf_nan=False, validation_alias="OPS_GATE_BUDGET_EXPORTS_MS"
    )
    latency_samples: int = Field(
        default=MIN_LATENCY_SAMPLES, ge=1, le=100_000, validation_alias="OPS_GATE_LATENCY_SAMPLES"
    )
    latency_warmup: int = Field(default=20, ge=0, le=10_000, validation_alias="OPS_GATE_LATENCY_WARMUP")
    latency_deadline_sec: Seconds = Field(default=60.0, validation_alias="OPS_GATE_LATENCY_DEADLINE_SEC")
    http_timeout_sec: Seconds = Field(default=5.0, validation_alias="OPS_GATE_HTTP_TIMEOUT_SEC")
    smoke_timeout_sec: Seconds = Field(default=300.0, validation_alias="OPS_GATE_SMOKE_TIMEOUT_SEC")

    def budgets_ms(self) -> dict[str, float]:
        """The p95 budget of each measured endpoint, by budget name."""
        return {
            "health": self.budget_health_ms,
            "stock": self.budget_stock_ms,
            "reports": self.budget_reports_ms,
            "exports": self.budget_exports_ms,
        }


class IntegritySettings(_Group):
    """The integrity check's limits."""

    idempotency_max_age_sec: Seconds = Field(default=900.0, validation_alias="OPS_INTEGRITY_IDEMPOTENCY_MAX_AGE_SEC")
    statement_timeout_sec: Seconds = Field(default=120.0, validation_alias="OPS_INTEGRITY_STATEMENT_TIMEOUT_SEC")


class ServiceSettings(_Group):
    """The ARIS3 service's own settings (the reference service's) and the accounts it seeds."""

    secret_key: SecretStr | None = Field(default=None, validation_alias="ARIS3_SECRET_KEY")
    token_ttl_sec: Annotated[int, AfterValidator(_valid_seconds)] = Field(
        default=3600, validation_alias="ARIS3_TOKEN_TTL_SEC"
    )
    seed_password: SecretStr = Field(default=SecretStr("aris3-demo-pass"), validation_alias="ARIS3_SEED_PASSWORD")
    #: The account the gate logs in with, and the smoke suite in live mode.
    smoke_username: str = Field(default=DEFAULT_SMOKE_USERNAME, min_length=1, validation_alias="ARIS3_SMOKE_USERNAME")
    smoke_password: SecretStr = Field(default=SecretStr("aris3-smoke-pass"), validation_alias="ARIS3_SMOKE_PASSWORD")


class Settings(BaseModel):
    """Every setting aris3nb reads from the environment, by group (``load_settings`` reads them)."""

    model_config = ConfigDict(frozen=True)

    target: TargetSettings = Field(default_factory=TargetSettings)
    artifacts: ArtifactsSettings = Field(default_factory=ArtifactsSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    run: RunSettings = Field(default_factory=RunSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    integrity: IntegritySettings = Field(default_factory=IntegritySettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)

    def default_database_url(self) -> str:
        """DATABASE_URL, or the embedded default's SQLite file under the artifacts folder."""
        if self.target.database_url:
            return self.target.database_url
        return f"sqlite:///{self.artifacts.embedded_dir / 'aris3.db'}"

    def resolved_exports_dir(self) -> Path:
        """ARIS3_EXPORTS_DIR, or the embedded default's exports folder under the artifacts folder."""
        exports = self.target.exports_dir
        return exports if exports is not None else self.artifacts.embedded_dir / "exports"

    def updated(self, **groups: Mapping[str, Any]) -> Settings:
        """These settings with some fields of some groups replaced (values as given, not re-read):
        ``settings.updated(artifacts={"dir": folder})``."""
        _check_names(groups)
        return self.model_copy(
            update={name: getattr(self, name).model_copy(update=dict(values)) for name, values in groups.items()}
        )


def _check_names(groups: Mapping[str, Mapping[str, Any]]) -> None:
    """A group or field name that is not one (a typo in code) is a ``TypeError``, never ignored."""
    unknown = sorted(set(groups) - set(Settings.model_fields))
    if unknown:
        raise TypeError(f"no settings group {', '.join(unknown)}")
    for name, values in groups.items():
        kind = Settings.model_fields[name].annotation
        assert isinstance(kind, type) and issubclass(kind, BaseModel)
        if strangers := sorted(set(values or {}) - set(kind.model_fields)):
            raise TypeError(f"settings group {name} has no {', '.join(strangers)}")


def _problem(group: type[BaseModel], err: Any) -> str:
    # Named by the variable a user sets, even for a value given in code. The input is never
    # quoted: a setting may hold a secret. Our own checks' messages (``ValueError``) are shown
    # without pydantic's "Value error, " prefix.
    loc = [str(part) for part in err["loc"]]
    field = group.model_fields.get(loc[0]) if loc else None
    if field is not None and isinstance(field.validation_alias, str):
        loc[0] = field.validation_alias
    where = ".".join(loc) or "settings"
    message = err.get("ctx", {}).get("error", err["msg"]) if err["type"] == "value_error" else err["msg"]
    return f"{where}: {_PLAIN_WORDS.get(err['type'], message)}"


#: What a value of the common kinds must look like, said for the person setting it (instead of
#: the validation library's wording, e.g. "Input should be a valid boolean, unable to interpret input").
_PLAIN_WORDS = {
    "bool_parsing": "expected true or false (or 1/0, yes/no, on/off); an empty value is neither",
    "bool_type": "expected true or false",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number, not a fraction",
    "float_parsing": "expected a number",
}


def load_settings(**groups: Mapping[str, Any]) -> Settings:
    """Read the environment into one ``Settings``; ``groups`` override fields by group
    (``load_settings(artifacts={"dir": folder})``; a None value is not an override). Every value
    that does not validate is named in one line (``InvalidSettings``, exit 2)."""
    _check_names(groups)
    read: dict[str, BaseModel] = {}
    problems: list[str] = []
    for name, field in Settings.model_fields.items():
        kind = field.annotation
        assert isinstance(kind, type) and issubclass(kind, _Group)
        given = {key: value for key, value in (groups.get(name) or {}).items() if value is not None}
        try:
            read[name] = kind(**given)
        except ValidationError as exc:
            problems.extend(_problem(kind, err) for err in exc.errors(include_input=False))
    if problems:
        raise InvalidSettings(f"invalid settings: {'; '.join(problems)}")
    return Settings.model_validate(read)
