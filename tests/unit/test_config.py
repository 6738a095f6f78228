import math
from pathlib import Path

import pytest

from aris3nb.core.errors import InvalidSettings, UsageError
from aris3nb.core.settings import MAX_TIMEOUT_SEC, check_timeout_sec, load_settings
from aris3nb.gate.settings import GateSettings, load_gate_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "OPS_ARTIFACTS_DIR",
        "OPS_ENABLE_BACKUP_DRILL",
        "OPS_DRILL_TIMEOUT_SEC",
        "ARIS3_EXPORTS_DIR",
    ):
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
def test_invalid_values_are_usage_errors_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettings, match=name) as caught:
        load_settings()
    assert caught.value.exit_code == 2


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARIS3_SECRET_KEY", "very-secret-key")
    monkeypatch.setenv("ARIS3_SEED_PASSWORD", "seed-pass-xyz")
    text = repr(load_settings())
    assert "very-secret-key" not in text and "seed-pass-xyz" not in text


#: Every ``*_SEC`` setting, read from the settings model itself: a new one is covered at once.
SECONDS_SETTINGS = sorted(
    alias
    for field in GateSettings.model_fields.values()
    if isinstance(alias := field.validation_alias, str) and alias.endswith("_SEC")
)
#: Settings where 0 has a documented meaning ("do not wait").
ZERO_ALLOWED = {"OPS_RUN_LOCK_WAIT_SEC"}
#: Ages rather than timeouts: their own documented maximum (a backup up to a year old).
MAXIMUM = {"OPS_RPO_BUDGET_SEC": 366 * 86400}


@pytest.mark.parametrize("name", SECONDS_SETTINGS)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-5", "0", "1e9", "over the maximum"])
def test_out_of_range_seconds_are_one_line_usage_errors(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    if value == "0" and name in ZERO_ALLOWED:
        pytest.skip(f"0 is a documented value of {name}")
    if value == "over the maximum":
        value = str(MAXIMUM.get(name, MAX_TIMEOUT_SEC) + 1)
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettings, match=name) as caught:
        load_gate_settings()
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_the_known_seconds_settings_are_all_there() -> None:
    assert {
        "OPS_DRILL_TIMEOUT_SEC",
        "OPS_BACKUP_TIMEOUT_SEC",
        "ARIS3_TOKEN_TTL_SEC",
        "OPS_GATE_LATENCY_DEADLINE_SEC",
        "OPS_GATE_HTTP_TIMEOUT_SEC",
        "OPS_GATE_SMOKE_TIMEOUT_SEC",
        "OPS_INTEGRITY_IDEMPOTENCY_MAX_AGE_SEC",
        "OPS_INTEGRITY_STATEMENT_TIMEOUT_SEC",
    } <= set(SECONDS_SETTINGS)


@pytest.mark.parametrize("name", SECONDS_SETTINGS)
def test_the_maximum_itself_is_accepted(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, str(MAX_TIMEOUT_SEC))
    load_gate_settings()


def test_check_timeout_sec_applies_the_same_rule() -> None:
    assert check_timeout_sec(30, "--timeout") == 30.0
    assert check_timeout_sec(MAX_TIMEOUT_SEC, "--timeout") == MAX_TIMEOUT_SEC
    for value in (math.inf, -math.inf, math.nan, 0.0, -1.0, 1e9, MAX_TIMEOUT_SEC + 0.5):
        with pytest.raises(UsageError, match="^--timeout must be") as caught:
            check_timeout_sec(value, "--timeout")
        assert caught.value.exit_code == 2


def test_an_invalid_setting_is_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARIS3_TOKEN_TTL_SEC", "hunter2-secret")
    with pytest.raises(InvalidSettings) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
