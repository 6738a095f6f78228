"""Typed settings, read from the environment in one place.

The playbook's own variables keep their names (``OPS_*``, ``DATABASE_URL``); the reference
service's are prefixed ``ARIS3_``. Commands take a ``Settings`` and pass it on explicitly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from aris3nb.core.errors import InvalidSettings, UsageError

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
    # An s3:// value is the repository (``ops_repository_url``); as a Path it would be mangled
    # into "s3:/bucket". The local folder then keeps its default; the backup commands point it
    # at a staging folder of their own while they run (``aris3nb.storage.artifacts``).
    return Path("artifacts") if is_repository_url(value) else value


def _repository_url(value: object) -> object:
    return value if is_repository_url(value) else None


#: The largest RPO budget accepted: a year. Beyond, a freshness check could never fail.
MAX_RPO_DAYS = 366


class Settings(BaseSettings):
    """Every setting aris3nb reads from the environment."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    ops_artifacts_dir: Annotated[Path, BeforeValidator(_local_artifacts_dir)] = Field(
        default=Path("artifacts"),
        validation_alias="OPS_ARTIFACTS_DIR",
        description="The local artifacts folder (default ./artifacts). When OPS_ARTIFACTS_DIR is an "
        "s3://BUCKET[/PREFIX] URL, this keeps its default and the URL is ops_repository_url.",
    )
    #: ``OPS_ARTIFACTS_DIR`` when it is ``s3://BUCKET[/PREFIX]``: the backups live in that
    #: repository (credentials, region and endpoint only from the AWS variables and config).
    ops_repository_url: Annotated[str | None, BeforeValidator(_repository_url)] = Field(
        default=None,
        validation_alias="OPS_ARTIFACTS_DIR",
        description="OPS_ARTIFACTS_DIR when it is an s3://BUCKET[/PREFIX] URL (None otherwise): the "
        "repository on S3-compatible object storage that the backup commands use; endpoint, region "
        "and credentials come from AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY or AWS_PROFILE.",
    )
    ops_embedded_keep_last: int = Field(
        default=10,
        ge=0,
        le=100_000,
        validation_alias="OPS_EMBEDDED_KEEP_LAST",
        description="After each run of the embedded default, keep the newest N backups of its "
        "disposable databases (and the one the last GO run drilled) and remove the older ones; 0 "
        "keeps them all. Backups of real targets are never touched (that is aris3nb backup forget).",
    )
    ops_retain_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        validation_alias="OPS_RETAIN_DAYS",
        description="Object Lock retention, in days, of every object a backup command writes to an "
        "s3:// repository (backup create --retain-days overrides it); the bucket must have Object "
        "Lock (exit 2 otherwise, before anything is written). Unset: no retention.",
    )
    ops_retention_mode: Literal["GOVERNANCE", "COMPLIANCE"] = Field(
        default="GOVERNANCE",
        validation_alias="OPS_RETENTION_MODE",
        description="The Object Lock mode of OPS_RETAIN_DAYS: GOVERNANCE (a principal with "
        "s3:BypassGovernanceRetention may still delete) or COMPLIANCE (nobody can, not even the "
        "account root, until the date).",
    )
    ops_enable_backup_drill: bool = Field(default=False, validation_alias="OPS_ENABLE_BACKUP_DRILL")
    ops_drill_timeout_sec: Seconds = Field(default=120.0, validation_alias="OPS_DRILL_TIMEOUT_SEC")
    ops_backup_timeout_sec: Seconds = Field(default=3600.0, validation_alias="OPS_BACKUP_TIMEOUT_SEC")
    #: The RPO budget: the newest valid backup of a target may be at most this old (seconds) —
    #: judged by the gate's ``backup.freshness`` and by every drill.
    rpo_budget_sec: float = Field(
        default=86400.0, gt=0, le=MAX_RPO_DAYS * 86400, allow_inf_nan=False, validation_alias="OPS_RPO_BUDGET_SEC"
    )
    #: The RTO budget: a drill (validate, restore, verify, upgrade) may take at most this long.
    rto_budget_sec: Seconds = Field(default=900.0, validation_alias="OPS_RTO_BUDGET_SEC")
    #: How long any PostgreSQL session of aris3nb (or pg_dump/pg_restore it runs) waits for a lock.
    ops_lock_timeout_sec: Seconds = Field(default=15.0, validation_alias="OPS_LOCK_TIMEOUT_SEC")
    #: How long ``aris3nb run`` waits for another run against the same target to finish (0: refuse at once).
    ops_run_lock_wait_sec: float = Field(
        default=30.0, ge=0, le=MAX_TIMEOUT_SEC, validation_alias="OPS_RUN_LOCK_WAIT_SEC"
    )
    ops_revert_command: str | None = Field(default=None, validation_alias="OPS_REVERT_COMMAND")
    base_url: str | None = Field(default=None, validation_alias="ARIS3_BASE_URL")

    secret_key: SecretStr | None = Field(default=None, validation_alias="ARIS3_SECRET_KEY")
    token_ttl_sec: Annotated[int, AfterValidator(_valid_seconds)] = Field(
        default=3600, validation_alias="ARIS3_TOKEN_TTL_SEC"
    )
    exports_dir: Path | None = Field(default=None, validation_alias="ARIS3_EXPORTS_DIR")
    seed_password: SecretStr = Field(
        default=SecretStr("aris3-demo-pass"),
        validation_alias=AliasChoices("ARIS3_SEED_PASSWORD"),
    )
    smoke_password: SecretStr = Field(
        default=SecretStr("aris3-smoke-pass"),
        validation_alias=AliasChoices("ARIS3_SMOKE_PASSWORD"),
    )

    @property
    def freeze_marker(self) -> Path:
        return self.ops_artifacts_dir / FREEZE_MARKER_NAME

    @property
    def embedded_dir(self) -> Path:
        return self.ops_artifacts_dir / EMBEDDED_DIRNAME

    def default_database_url(self) -> str:
        """DATABASE_URL, or the embedded default's SQLite file under the artifacts folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.embedded_dir / 'aris3.db'}"

    def resolved_exports_dir(self) -> Path:
        return self.exports_dir if self.exports_dir is not None else self.embedded_dir / "exports"


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(kind: type[SettingsT] = Settings, **overrides: Any) -> SettingsT:  # type: ignore[assignment]
    """Read the environment into ``kind``; a value that does not validate is a one-line usage error."""
    try:
        return kind(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        # The input is never quoted: a setting may hold a secret. Our own checks' messages
        # (``ValueError``) are shown without pydantic's "Value error, " prefix.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: "
            f"{err.get('ctx', {}).get('error', err['msg']) if err['type'] == 'value_error' else err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise InvalidSettings(f"invalid settings: {problems}") from exc
