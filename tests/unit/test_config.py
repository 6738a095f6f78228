from pathlib import Path

import pytest

from aris3nb.config import load_settings
from aris3nb.errors import InvalidSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "OPS_ARTIFACTS_DIR", "OPS_ENABLE_BACKUP_DRILL", "OPS_DRILL_TIMEOUT_SEC", "ARIS3_EXPORTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.ops_artifacts_dir == Path("artifacts")
    assert settings.ops_enable_backup_drill is False
    assert settings.ops_drill_timeout_sec == 120
    assert settings.default_database_url() == "sqlite:///artifacts/embedded/aris3.db"
    assert settings.resolved_exports_dir() == Path("artifacts/embedded/exports")


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("OPS_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv("OPS_ENABLE_BACKUP_DRILL", "true")
    monkeypatch.setenv("OPS_DRILL_TIMEOUT_SEC", "30")
    settings = load_settings()
    assert settings.default_database_url() == "postgresql://u@h/db"
    assert settings.ops_enable_backup_drill is True and settings.ops_drill_timeout_sec == 30
    assert settings.embedded_dir == tmp_path / "embedded"


@pytest.mark.parametrize(("name", "value"), [("OPS_DRILL_TIMEOUT_SEC", "-1"), ("OPS_ENABLE_BACKUP_DRILL", "maybe")])
def test_invalid_values_are_usage_errors_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettings, match=name) as caught:
        load_settings()
    assert caught.value.exit_code == 2


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARIS3_SECRET_KEY", "very-secret-key")
    monkeypatch.setenv("ARIS3_SEED_PASSWORD", "seed-pass-xyz")
    text = repr(load_settings())
    assert "very-secret-key" not in text and "seed-pass-xyz" not in text
