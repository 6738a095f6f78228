"""Typed settings, read from the environment in one place.

The playbook's own variables keep their names (``OPS_*``, ``DATABASE_URL``); the reference
service's are prefixed ``ARIS3_``. Commands take a ``Settings`` and pass it on explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from aris3nb.errors import InvalidSettings

#: Where the embedded default keeps its SQLite database and export files.
EMBEDDED_DIRNAME = "embedded"
#: Written by a rollback (NO-GO) in the artifacts folder; the gate FAILs while it exists.
FREEZE_MARKER_NAME = "DEPLOY_FREEZE.json"


class Settings(BaseSettings):
    """Every setting aris3nb reads from the environment."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    ops_artifacts_dir: Path = Field(default=Path("artifacts"), validation_alias="OPS_ARTIFACTS_DIR")
    ops_enable_backup_drill: bool = Field(default=False, validation_alias="OPS_ENABLE_BACKUP_DRILL")
    ops_drill_timeout_sec: float = Field(default=120.0, gt=0, validation_alias="OPS_DRILL_TIMEOUT_SEC")
    ops_backup_timeout_sec: float = Field(default=3600.0, gt=0, validation_alias="OPS_BACKUP_TIMEOUT_SEC")
    ops_revert_command: str | None = Field(default=None, validation_alias="OPS_REVERT_COMMAND")
    base_url: str | None = Field(default=None, validation_alias="ARIS3_BASE_URL")

    secret_key: SecretStr | None = Field(default=None, validation_alias="ARIS3_SECRET_KEY")
    token_ttl_sec: int = Field(default=3600, gt=0, validation_alias="ARIS3_TOKEN_TTL_SEC")
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


def load_settings(kind: type[SettingsT] = Settings, **overrides: object) -> SettingsT:  # type: ignore[assignment]
    """Read the environment into ``kind``; a value that does not validate is a one-line usage error."""
    try:
        return kind(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidSettings(f"invalid settings: {problems}") from exc
