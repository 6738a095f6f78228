import math
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from aris3nb.core.errors import InvalidSettings, UsageError
from aris3nb.core.settings import MAX_TIMEOUT_SEC, Settings, check_timeout_sec, load_settings


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
    assert settings.artifacts.dir == Path("artifacts")
    assert settings.backup.drill_enabled is False
    assert settings.backup.drill_timeout_sec == 120
    assert settings.default_database_url() == "sqlite:///artifacts/embedded/aris3.db"
    assert settings.resolved_exports_dir() == Path("artifacts/embedded/exports")


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("OPS_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv("OPS_ENABLE_BACKUP_DRILL", "true")
    monkeypatch.setenv("OPS_DRILL_TIMEOUT_SEC", "30")
    settings = load_settings()
    assert settings.default_database_url() == "postgresql://u@h/db"
    assert settings.backup.drill_enabled is True and settings.backup.drill_timeout_sec == 30
    assert settings.artifacts.embedded_dir == tmp_path / "embedded"


@pytest.mark.parametrize(("name", "value"), [("OPS_DRILL_TIMEOUT_SEC", "-1"), ("OPS_ENABLE_BACKUP_DRILL", "maybe")])
def test_invalid_values_are_usage_errors_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettings, match=name) as caught:
        load_settings()
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("OPS_ENABLE_BACKUP_DRILL", "", "OPS_ENABLE_BACKUP_DRILL: expected true or false (or 1/0, yes/no, on/off)"),
        ("OPS_ENABLE_BACKUP_DRILL", "maybe", "OPS_ENABLE_BACKUP_DRILL: expected true or false"),
        ("OPS_GATE_LATENCY_SAMPLES", "many", "OPS_GATE_LATENCY_SAMPLES: expected a whole number"),
        ("OPS_GATE_LATENCY_SAMPLES", "250.5", "OPS_GATE_LATENCY_SAMPLES: expected a whole number"),
    ],
)
def test_a_value_of_the_wrong_kind_is_said_in_plain_words(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, said: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettings) as caught:
        load_settings()
    assert said in str(caught.value) and "Input should be" not in str(caught.value)


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARIS3_SECRET_KEY", "very-secret-key")
    monkeypatch.setenv("ARIS3_SEED_PASSWORD", "seed-pass-xyz")
    text = repr(load_settings())
    assert "very-secret-key" not in text and "seed-pass-xyz" not in text


def _every_setting() -> dict[str, tuple[str, str, object]]:
    """Every variable the settings read: its group, field and default, from the model itself."""
    found: dict[str, tuple[str, str, object]] = {}
    for group_name, group in Settings.model_fields.items():
        kind = group.annotation
        assert isinstance(kind, type) and issubclass(kind, BaseModel)
        for field_name, field in kind.model_fields.items():
            alias = field.validation_alias
            assert isinstance(alias, str), f"{group_name}.{field_name} reads no single variable"
            found.setdefault(alias, (group_name, field_name, field.get_default(call_default_factory=True)))
    return found


EVERY_SETTING = _every_setting()
#: Every ``*_SEC`` setting, read from the settings model itself: a new one is covered at once.
SECONDS_SETTINGS = sorted(alias for alias in EVERY_SETTING if alias.endswith("_SEC"))
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
        load_settings()
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
    load_settings()


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


def test_the_groups_read_each_variable_once_and_the_readme_lists_every_one_with_its_default() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| ([^|]*) \|", readme, flags=re.M))
    missing = sorted(set(EVERY_SETTING) - set(rows))
    assert not missing, f"README's settings table lacks {missing}"
    for alias, (_, _, default) in EVERY_SETTING.items():
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert rows[alias].strip() == f"`{default:g}`", f"{alias}: README says {rows[alias]}, the model {default}"


def test_one_load_reads_every_group_and_names_every_bad_value_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_DRILL_TIMEOUT_SEC", "-1")
    monkeypatch.setenv("OPS_GATE_LATENCY_SAMPLES", "many")
    monkeypatch.setenv("OPS_INTEGRITY_STATEMENT_TIMEOUT_SEC", "7")
    with pytest.raises(InvalidSettings) as caught:
        load_settings()
    message = str(caught.value)
    assert "OPS_DRILL_TIMEOUT_SEC" in message and "OPS_GATE_LATENCY_SAMPLES" in message and "\n" not in message
    monkeypatch.delenv("OPS_DRILL_TIMEOUT_SEC")
    monkeypatch.delenv("OPS_GATE_LATENCY_SAMPLES")
    settings = load_settings(backup={"drill_enabled": True, "rto_budget_sec": None})
    assert settings.integrity.statement_timeout_sec == 7  # the environment, beside an override of another group
    assert settings.backup.drill_enabled is True and settings.backup.rto_budget_sec == 900  # None: not an override


def test_an_override_is_validated_like_the_environment() -> None:
    with pytest.raises(InvalidSettings, match="OPS_BACKUP_TIMEOUT_SEC"):
        load_settings(backup={"timeout_sec": -1})
    with pytest.raises(TypeError, match="no settings group gates"):
        load_settings(gates={"latency_samples": 1})


def test_updated_replaces_fields_of_one_group_and_leaves_the_original(tmp_path: Path) -> None:
    settings = load_settings(service={"secret_key": SecretStr("k" * 40)})
    moved = settings.updated(artifacts={"dir": tmp_path})
    assert moved.artifacts.dir == tmp_path and moved.artifacts.freeze_marker.parent == tmp_path
    assert settings.artifacts.dir != tmp_path and moved.service == settings.service
    with pytest.raises(TypeError, match="no settings group"):
        settings.updated(nothing={"x": 1})
    with pytest.raises(TypeError, match="settings group artifacts has no dri"):
        settings.updated(artifacts={"dri": tmp_path})
    with pytest.raises(TypeError, match="settings group backup has no drill_enable"):
        load_settings(backup={"drill_enable": True})


def test_library_defaults_are_the_settings_defaults() -> None:
    from aris3nb.core.settings import GateSettings, IntegritySettings
    from aris3nb.gate.http import LatencyPlan
    from aris3nb.integrity import IntegrityOptions

    plan = LatencyPlan("/health", 100.0)
    options = IntegrityOptions(database_url="sqlite://", exports_dir=Path("."))
    assert (plan.warmup, plan.deadline_sec) == (
        GateSettings.model_fields["latency_warmup"].default,
        GateSettings.model_fields["latency_deadline_sec"].default,
    )
    assert (options.idempotency_max_age_sec, options.statement_timeout_sec) == (
        IntegritySettings.model_fields["idempotency_max_age_sec"].default,
        IntegritySettings.model_fields["statement_timeout_sec"].default,
    )


def test_a_staging_copy_of_a_repository_names_its_places_on_the_bucket(tmp_path: Path) -> None:
    """What a message tells a person to remove or read is named where it stays: on the bucket
    the staging folder stands for (``OPS_ARTIFACTS_SHOWN_AS``, set by a run on a bucket)."""
    staged = load_settings(artifacts={"dir": tmp_path / "aris3nb-x1", "shown_as": "s3://bucket/aris"}).artifacts
    assert staged.show(staged.freeze_marker) == "s3://bucket/aris/DEPLOY_FREEZE.json"
    assert staged.show(staged.dir) == "s3://bucket/aris"
    assert staged.show(tmp_path / "elsewhere.json") == str(tmp_path / "elsewhere.json"), "only what is below it"
    text = f"no valid backup of x under {staged.dir}/backups; remove {staged.dir}/DEPLOY_FREEZE.json"
    assert staged.shown_text(text) == (
        "no valid backup of x under s3://bucket/aris/backups; remove s3://bucket/aris/DEPLOY_FREEZE.json"
    )
    local = load_settings(artifacts={"dir": tmp_path}).artifacts
    assert local.show(local.freeze_marker) == str(tmp_path / "DEPLOY_FREEZE.json")
    assert local.shown_text(f"under {tmp_path}") == f"under {tmp_path}"
