"""The gate refuses input it cannot act on before any check runs (exit 2), and reads its
budgets and limits from the environment with documented defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from aris3nb.core.errors import InvalidSettings, UsageError
from aris3nb.core.settings import load_settings
from aris3nb.gate import GateOptions
from aris3nb.gate.runner import GATE_CHECKS, parse_budgets, validate_options

SECRET = "Opt-Secret-31"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (GateOptions(pytest_target="tests/smoke/nope.py"), "does not exist"),
        (GateOptions(pytest_target=""), "--pytest-target is empty"),
        (GateOptions(base_url="localhost:8000"), "malformed base URL"),
        (GateOptions(base_url=f"ftp://u:{SECRET}@h/"), "malformed base URL"),
        (GateOptions(database_url=f"mysql://root:{SECRET}@h/x"), "unsupported database 'mysql'"),
        (GateOptions(postgres_url="sqlite:///x.db"), "--postgres-url must be a postgresql:// URL"),
        (GateOptions(budgets_ms={"checkout": 100.0}), "unknown latency budget checkout"),
        (GateOptions(budgets_ms={"health": 0.0}), "must be positive"),
        (GateOptions(budgets_ms={"health": float("nan")}), "must be positive"),
        (GateOptions(workdir=Path("/nonexistent-folder")), "does not exist"),
        (GateOptions(run_id="../../etc"), "is not a run id"),
        (GateOptions(run_id="20261130T070500Z-ab12cd/x"), "is not a run id"),
    ],
)
def test_bad_options_are_usage_errors(options: GateOptions, fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate_options(options)
    assert caught.value.exit_code == 2
    assert fragment in str(caught.value) and SECRET not in str(caught.value)


def test_good_options_are_normalised(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    options = validate_options(GateOptions(pytest_target="tests", base_url="http://127.0.0.1:8000/", workdir=tmp_path))
    assert options.base_url == "http://127.0.0.1:8000" and options.workdir == tmp_path


def test_budgets_parse_by_name() -> None:
    assert parse_budgets(["stock=250", "health=99.5"]) == {"stock": 250.0, "health": 99.5}
    assert parse_budgets(None) == {}
    for bad in ("stock", "stock=fast", "=100", "checkout=100"):
        with pytest.raises(UsageError, match="NAME=MILLISECONDS"):
            parse_budgets([bad])


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPS_GATE_BUDGET_HEALTH_MS", "OPS_GATE_LATENCY_SAMPLES", "ARIS3_SMOKE_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.gate.budgets_ms() == {"health": 120.0, "stock": 300.0, "reports": 500.0, "exports": 300.0}
    assert (settings.gate.latency_samples, settings.gate.latency_warmup, settings.service.smoke_username) == (
        200,
        20,
        "smoke.admin",
    )
    assert (settings.gate.http_timeout_sec, settings.gate.smoke_timeout_sec) == (5.0, 300.0)
    monkeypatch.setenv("OPS_GATE_BUDGET_STOCK_MS", "80")
    monkeypatch.setenv("ARIS3_SMOKE_USERNAME", "smoke.ops")
    settings = load_settings()
    assert settings.gate.budget_stock_ms == 80 and settings.service.smoke_username == "smoke.ops"
    monkeypatch.setenv("OPS_GATE_LATENCY_SAMPLES", "lots")
    with pytest.raises(InvalidSettings, match="OPS_GATE_LATENCY_SAMPLES"):
        load_settings()


def test_the_default_smoke_account_is_the_seeded_one() -> None:
    from aris3nb.core.settings import DEFAULT_SMOKE_USERNAME
    from aris3nb.reference.smoke_tenant import SMOKE_USERNAME

    assert DEFAULT_SMOKE_USERNAME == SMOKE_USERNAME


def test_the_gate_checks_and_their_order() -> None:
    assert GATE_CHECKS.names() == [
        "git",
        "deploy.freeze",
        "migrations.single_head",
        "migrations.round_trip.sqlite",
        "migrations.round_trip.postgresql",
        "target.schema",
        "backup.freshness",
        "drill.freshness",
        "smoke",
        "http.health",
        "http.ready",
        "latency.health",
        "latency.stock",
        "latency.reports",
        "latency.exports",
    ]
    assert all(check.why for check in GATE_CHECKS), "every check says why it matters"


def test_only_checks_that_neither_load_nor_time_the_service_run_beside_the_smoke_suite() -> None:
    from aris3nb.gate.runner import BESIDE_SMOKE, GATE_CHECKS

    names = GATE_CHECKS.names()
    before_smoke = names[: names.index("smoke")]
    assert BESIDE_SMOKE == set(before_smoke)
    assert not [name for name in BESIDE_SMOKE if name.startswith(("http.", "latency", "smoke"))]
    assert all(names.index(name) > names.index("smoke") for name in names if name.startswith(("http.", "latency")))
