"""The gate applying a target profile: the foreign ARIS3-like target of tests/targets/foreign,
migrated, seeded and served by its own code in its own venv (real HTTP on loopback), judged
with its aris3nb.toml — health, readiness and its revision, the login its profile describes,
the latency of its declared endpoints, and its smoke suite run by its own interpreter and
mapped to the playbook's areas by the profile's rules.

One served target per module; the latency checks take few samples except where a PASS is
asserted (a PASS needs the 200 the gate requires). The tests that need the target's venv are
``slow`` (25-45 s to build it once per machine, kept under VENV_CACHE; ~0.1 s afterwards).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import foreign_target as ft  # tests/targets/foreign_target.py (tests/conftest.py puts it on sys.path)
import pytest

from aris3nb.core.checks import Status
from aris3nb.core.errors import MigrationError, UsageError
from aris3nb.core.settings import load_settings
from aris3nb.gate import GateOptions, GateReport, run_gate
from aris3nb.gate.runner import GATE_CHECKS, gate_checks, latency_names, parse_budgets, validate_options
from aris3nb.gate.smoke import AREAS, OTHER_AREA
from aris3nb.targets.profile import AreaRule, Health, LoadedProfile, Login, Profile, Smoke, TargetCode, load_profile

TARGETS = Path(__file__).resolve().parents[1] / "targets"
VENV_CACHE = ft.VENV_CACHE
SCALE = 12  # the smoke suite's own in-process scale: every area has rows
needs_target = pytest.mark.slow  # the target's venv (see the module's docstring)


PROFILE_FILE = load_profile(ft.PROFILE)
BASE_CHECKS = [name for name in GATE_CHECKS.names() if not name.startswith("latency.")]


def changed(loaded: LoadedProfile, **service: Any) -> LoadedProfile:
    """``loaded`` with some of its [service] tables replaced."""
    profile = loaded.profile.model_copy(update={"service": loaded.profile.service.model_copy(update=service)})
    return LoadedProfile(profile, loaded.path, loaded.sha256)


@pytest.fixture(scope="module")
def foreign_python() -> Path:
    return ft.ensure_venv(VENV_CACHE)


@pytest.fixture(scope="module")
def served(foreign_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The target's service over its own migrated and seeded SQLite database, once per module."""
    folder = tmp_path_factory.mktemp("foreign-served")
    url = f"sqlite:///{folder / 'foreign.db'}"
    ft.migrate(foreign_python, url)
    ft.seed(foreign_python, url, SCALE, folder / "exports")
    with ft.serve(foreign_python, url, exports_dir=folder / "exports") as base_url:
        yield base_url


@pytest.fixture(scope="module")
def foreign(foreign_python: Path) -> LoadedProfile:
    """The target's profile file, with the interpreter the test built (its path varies) and the
    readiness value its /ready really answers (``{"ready": true}``: the file leaves
    ``ready_expect`` at the model's default, "ready")."""
    profile = PROFILE_FILE.profile
    profile = profile.model_copy(update={"target": profile.target.model_copy(update={"python": str(foreign_python)})})
    loaded = LoadedProfile(profile, PROFILE_FILE.path, PROFILE_FILE.sha256)
    return changed(loaded, ready=profile.service.ready.model_copy(update={"ready_expect": True}))


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> None:
    """The smoke account, in the variables the profile's [service.smoke_account] names."""
    for name, value in ft.smoke_env(None).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FOREIGN_BASE_URL", raising=False)


def gate(
    loaded: LoadedProfile,
    base_url: str | None,
    tmp_path: Path,
    *checks: str,
    samples: int = 3,
    strict: bool = False,
    **options: Any,
) -> GateReport:
    settings = load_settings(
        artifacts={"dir": tmp_path / "artifacts"}, gate={"latency_samples": samples, "latency_warmup": 0}
    )
    return run_gate(
        GateOptions(base_url=base_url, profile=loaded, checks=checks or None, strict=strict, **options), settings
    )


def by_name(report: GateReport) -> dict[str, Any]:
    return {result.name: result for result in report.results}


@needs_target
def test_health_ready_login_and_latency_pass_with_the_profile(
    served: str, foreign: LoadedProfile, account: None, tmp_path: Path
) -> None:
    report = gate(
        foreign, served, tmp_path, "http.health", "http.ready", "latency.health", "latency.stock", samples=200
    )
    results = by_name(report)
    assert {name: r.status for name, r in results.items()} == dict.fromkeys(results, Status.PASS), {
        name: r.detail for name, r in results.items()
    }
    assert results["http.health"].detail.startswith("200, /ok = true in ")
    assert results["http.ready"].detail.startswith(f"200, /ready = true at revision {ft.HEAD} (the target's head)")
    stock = results["latency.stock"].evidence
    assert (stock["path"], stock["params"], stock["expected_status"], stock["budget_ms"]) == (
        "/api/v2/inventory",
        {"limit": "50"},
        200,
        250,
    )
    assert stock["count"] == 200
    summary = report.summary_path.read_text()
    assert json.loads(summary)["inputs"]["profile"] == {
        "name": "foreign",
        "path": str(ft.PROFILE),
        "sha256": f"sha256:{PROFILE_FILE.sha256}",
    }
    assert ft.SMOKE_PASSWORD not in summary


@needs_target
def test_every_declared_endpoint_is_measured_logged_in_with_the_profiles_body(
    served: str, foreign: LoadedProfile, account: None, tmp_path: Path
) -> None:
    report = gate(
        foreign,
        served,
        tmp_path,
        *[f"latency.{name}" for name in latency_names(foreign)],
        samples=3,
        budgets_ms={"reports": 900.0},
    )
    names = [r.name for r in report.results]
    assert names == [
        "latency.health",
        "latency.stock",
        "latency.transfers",
        "latency.pos",
        "latency.reports",
        "latency.exports",
    ]
    for result in report.results:  # answered as declared: only too few samples keep them from a PASS
        assert result.status is Status.WARN and result.detail.startswith("inconclusive: 3 samples"), result.detail
    assert by_name(report)["latency.reports"].evidence["budget_ms"] == 900.0
    assert report.summary["inputs"]["budgets_ms"]["pos"] == 250


@needs_target
def test_a_wrong_health_expectation_fails_saying_what_came_back(
    served: str, foreign: LoadedProfile, tmp_path: Path
) -> None:
    wrong = changed(foreign, health=Health(path="/health", pointer="/status", expect="ok"))
    [health] = gate(wrong, served, tmp_path, "http.health").results
    assert health.status is Status.FAIL
    assert health.detail.startswith(
        'GET /health answered 200 without the documented JSON body /status = "ok": '
        'application/json, body starts \'{"ok":true'
    )


@needs_target
def test_a_login_body_the_server_rejects_fails_quoting_its_answer(
    served: str, foreign: LoadedProfile, account: None, tmp_path: Path
) -> None:
    login = foreign.profile.service.login
    assert login is not None
    reference_body = changed(
        foreign, login=login.model_copy(update={"body": {"username": "{username}", "password": "{password}"}})
    )
    [stock] = gate(reference_body, served, tmp_path, "latency.stock").results
    assert stock.status is Status.FAIL
    assert stock.detail.startswith("login as smoke.admin (POST /api/v2/session/token) answered 422 Unprocessable ")
    assert "username_or_email" in stock.detail and "Field required" in stock.detail
    assert "rejected the login request" in stock.detail and "credentials" not in stock.detail
    assert ft.SMOKE_PASSWORD not in stock.detail, "FastAPI echoes the body it refused: the password is masked"


@needs_target
def test_a_wrong_password_fails_quoting_the_servers_401(
    served: str, foreign: LoadedProfile, account: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FOREIGN_SMOKE_PASSWORD", "not-the-password")
    [stock] = gate(foreign, served, tmp_path, "latency.stock").results
    assert stock.status is Status.FAIL
    assert stock.detail == (
        "login as smoke.admin (POST /api/v2/session/token) answered 401 Unauthorized: "
        "invalid_credentials: unknown account or wrong password; the server refused the smoke "
        "account's credentials (check FOREIGN_SMOKE_USER / FOREIGN_SMOKE_PASSWORD)"
    )


@needs_target
def test_an_endpoint_needing_a_token_fails_without_a_login_in_the_profile(
    served: str, foreign: LoadedProfile, account: None, tmp_path: Path
) -> None:
    results = by_name(gate(changed(foreign, login=None), served, tmp_path, "latency.health", "latency.stock"))
    assert results["latency.health"].status is Status.WARN, "no token needed: measured (3 samples: inconclusive)"
    assert results["latency.stock"].status is Status.FAIL
    assert results["latency.stock"].detail == (
        f"GET /api/v2/inventory needs the smoke account's token, but the profile {foreign.label} has no [service.login]"
    )


@needs_target
def test_the_reported_revision_is_compared_with_the_targets_head(
    served: str, foreign: LoadedProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aris3nb.targets.code

    monkeypatch.setattr(aris3nb.targets.code, "head_revision", lambda loaded: ft.REVISIONS[-2])
    [behind] = gate(foreign, served, tmp_path, "http.ready").results
    assert behind.status is Status.FAIL
    assert behind.detail.startswith(
        f"GET /ready answered 200, /ready = true at revision {ft.HEAD}, expected "
        f"{ft.REVISIONS[-2]} (the target's code head)"
    )

    def unreadable(loaded: LoadedProfile) -> str:
        raise MigrationError("the target's interpreter exited 1")

    monkeypatch.setattr(aris3nb.targets.code, "head_revision", unreadable)
    [unknown] = gate(foreign, served, tmp_path, "http.ready").results
    assert unknown.status is Status.FAIL
    assert unknown.detail.endswith("cannot read the target's head (MigrationError: the target's interpreter exited 1)")

    no_revision = changed(foreign, ready=foreign.profile.service.ready.model_copy(update={"revision_pointer": ""}))
    [ready] = gate(no_revision, served, tmp_path, "http.ready").results
    assert ready.status is Status.PASS and "the service reports no revision" in ready.detail


@needs_target
def test_the_profiles_smoke_runs_in_the_targets_venv_and_reports_its_areas(
    served: str, foreign: LoadedProfile, foreign_python: Path, account: None, tmp_path: Path
) -> None:
    report = gate(foreign, served, tmp_path, "smoke")
    [smoke] = report.results
    assert smoke.status is Status.PASS, smoke.detail
    assert smoke.evidence["python"] == str(foreign_python) != sys.executable
    assert list(smoke.evidence["areas"]) == [*AREAS, OTHER_AREA]
    assert smoke.evidence["areas"][OTHER_AREA]["passed"] == 1, "test_service_reports_health_and_readiness: no rule"
    assert smoke.evidence["areas_missing"] == [] and smoke.evidence["target"] == "smoke/test_smoke.py"
    assert smoke.evidence["against"].startswith(served) and report.summary["files"]["smoke_junit"]
    assert ft.SMOKE_PASSWORD not in (report.summary_path.parent / report.summary["files"]["smoke_output"]).read_text()


@needs_target
def test_a_suite_not_told_the_live_url_is_a_warn_whose_evidence_does_not_name_the_service(
    served: str, foreign: LoadedProfile, account: None, tmp_path: Path
) -> None:
    """A profile whose [service.smoke_account] names no base_url_env: the suite runs on its own
    (the foreign suite in-process), so the check WARNs and its evidence never says it ran
    against the live service."""
    service = foreign.profile.service
    assert service.smoke_account is not None
    untold = service.model_copy(
        update={"smoke_account": service.smoke_account.model_copy(update={"base_url_env": None})}
    )
    loaded = LoadedProfile(foreign.profile.model_copy(update={"service": untold}), foreign.path, foreign.sha256)
    [smoke] = gate(loaded, served, tmp_path, "smoke").results
    assert smoke.status is Status.WARN and smoke.detail.endswith("so it did not test the live service"), smoke.detail
    assert smoke.evidence["against"] == f"not the live service ({served}): the suite was not told its URL"


@needs_target
def test_an_area_no_test_covers_is_named_and_fails_when_strict(
    served: str, foreign: LoadedProfile, account: None, tmp_path: Path
) -> None:
    declared = foreign.profile.smoke
    assert declared is not None
    rules = [rule for rule in declared.areas if rule.area != "exports"]
    profile = foreign.profile.model_copy(update={"smoke": declared.model_copy(update={"areas": rules})})
    loaded = LoadedProfile(profile, foreign.path, foreign.sha256)
    for strict, status in ((False, Status.WARN), (True, Status.FAIL)):
        [smoke] = gate(loaded, served, tmp_path, "smoke", strict=strict).results
        assert smoke.status is status
        assert smoke.detail.endswith(
            "area not covered: exports (no test of the profile's [[smoke.areas]] rules passed in it)"
        )
        assert smoke.evidence["areas"][OTHER_AREA]["passed"] == 4, "the export tests count in (other)"


MARKED_SUITE = """
import sys

import pytest


@pytest.mark.login
def test_the_token(): assert "foreign-venv" in sys.prefix, sys.prefix


class TestStock:
    def test_listing(self): pass


@pytest.mark.parametrize("n", [1, 2])
def test_checkout_total(n): pass


def test_unmapped(): pass
"""


@needs_target
def test_markers_and_globs_map_a_suite_run_in_the_targets_interpreter(
    served: str, foreign_python: Path, tmp_path: Path
) -> None:
    root = tmp_path / "target"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers\nmarkers =\n    login: the login\n")
    (root / "test_marked.py").write_text(MARKED_SUITE)
    rules = [
        AreaRule(area="auth", marker="login"),
        AreaRule(area="stock", match=["*::TestStock::*"]),
        AreaRule(area="pos", match=["test_checkout"]),
    ]
    profile = Profile(
        profile_version=1,
        name="marked",
        target=TargetCode(python=str(foreign_python)),
        smoke=Smoke(path="test_marked.py", areas=rules),
    )
    [smoke] = gate(LoadedProfile(profile, root / "aris3nb.toml", None), served, tmp_path, "smoke").results
    assert smoke.status is Status.WARN, smoke.detail
    assert smoke.detail.startswith("5 passed in ")
    assert smoke.detail.endswith(
        "areas not covered: transfers, reports, exports (no test of the profile's [[smoke.areas]] rules passed in it)"
    )
    areas = smoke.evidence["areas"]
    passed = {name: counts["passed"] for name, counts in areas.items()}
    assert passed == {"auth": 1, "stock": 1, "pos": 2, OTHER_AREA: 1}
    assert smoke.evidence["marked_tests"] == {"login": 1}


@needs_target
def test_a_suite_erroring_before_any_test_ran_shows_the_error(
    served: str, foreign_python: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_broken.py").write_text("import aris3nb  # not installed in the target's venv\n")
    profile = Profile(
        profile_version=1,
        name="broken",
        target=TargetCode(python=str(foreign_python)),
        smoke=Smoke(path="test_broken.py"),
    )
    [smoke] = gate(LoadedProfile(profile, tmp_path / "aris3nb.toml", None), served, tmp_path, "smoke").results
    assert smoke.status is Status.FAIL
    assert smoke.detail.startswith(
        "pytest exited 2 (interrupted) before any test ran: ModuleNotFoundError: No module named 'aris3nb'"
    )


# Without the target's venv: what the profile changes in the list of checks and the options.


def test_the_checks_of_a_profile_are_its_endpoints_and_names_are_validated_against_them() -> None:
    assert gate_checks(PROFILE_FILE).names() == [
        *BASE_CHECKS,
        "latency.health",
        "latency.stock",
        "latency.transfers",
        "latency.pos",
        "latency.reports",
        "latency.exports",
    ]
    assert all(check.why for check in gate_checks(PROFILE_FILE))
    options = validate_options(
        GateOptions(profile=PROFILE_FILE, checks=("latency.transfers",), budgets_ms={"pos": 99.0})
    )
    assert options.workdir == ft.ROOT, "the checkout judged is the target's"
    with pytest.raises(
        UsageError,
        match=r"unknown gate check latency.checkout; known for profile foreign: "
        r"git, .*latency.transfers, latency.pos",
    ):
        validate_options(GateOptions(profile=PROFILE_FILE, checks=("latency.checkout",)))
    with pytest.raises(UsageError, match=r"unknown latency budget checkout; known: health, stock, transfers"):
        validate_options(GateOptions(profile=PROFILE_FILE, budgets_ms={"checkout": 99.0}))
    assert parse_budgets(["transfers=80"], known=latency_names(PROFILE_FILE)) == {"transfers": 80.0}


def test_a_profile_without_endpoints_warns_that_no_latency_was_measured(tmp_path: Path) -> None:
    bare = LoadedProfile(Profile(profile_version=1, name="bare"), tmp_path / "aris3nb.toml", None)
    assert gate_checks(bare).names() == [*BASE_CHECKS, "latency"]
    with pytest.raises(UsageError, match="NAME one of \\(none\\)"):
        parse_budgets(["health=100"], known=latency_names(bare))
    [latency] = gate(bare, "http://127.0.0.1:9", tmp_path, "latency").results
    assert latency.status is Status.WARN
    assert latency.detail == f"the profile {bare.label} declares no [[service.endpoints]]: no latency was measured"


def test_a_foreign_target_is_never_judged_with_the_reference_migrations_or_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARIS3_BASE_URL", raising=False)
    results = by_name(gate(PROFILE_FILE, None, tmp_path, "migrations.single_head", "http.health"))
    head = results["migrations.single_head"]  # the target's own history, read in its own interpreter: absent here
    assert head.status is Status.FAIL and "the target's interpreter" in head.detail and "does not exist" in head.detail
    assert results["http.health"].status is Status.FAIL
    assert results["http.health"].detail.startswith(
        "no --base-url (nor ARIS3_BASE_URL) for the target of profile foreign"
    )


def test_a_login_template_and_its_placeholders_fill_string_values_only() -> None:
    from aris3nb.gate.http import fill_placeholders, service_auth_header

    body = {"user": {"name": "{username}", "tags": ["{password}", 7, True]}, "{username}": "{password}!"}
    assert fill_placeholders(body, {"username": "u", "password": "p"}) == {
        "user": {"name": "u", "tags": ["p", 7, True]},
        "{username}": "p!",
    }
    login = Login(path="/x", body={}, auth_header={"name": "X-Token", "value": "Token {token}"})
    assert service_auth_header(login, "abc") == {"X-Token": "Token abc"}


@needs_target
def test_the_suite_never_gets_the_targets_database_url_unless_the_profile_says_so(
    served: str, foreign_python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target's test suite handed the production URL may create databases on that server
    (upstream ARIS3's does): the variable is removed unless [smoke] pass_database_url is true."""
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql://prod.example/shop")
    (tmp_path / "test_env.py").write_text(
        "import os\ndef test_env(): assert os.environ.get('SHOP_DATABASE_URL') == os.environ.get('EXPECTED')\n"
    )
    for passed_on, expected in ((False, {}), (True, {"EXPECTED": "postgresql://prod.example/shop"})):
        profile = Profile(
            profile_version=1,
            name="env",
            target=TargetCode(python=str(foreign_python), database_url_env="SHOP_DATABASE_URL"),
            smoke=Smoke(path="test_env.py", pass_database_url=passed_on, env=expected),
        )
        [smoke] = gate(LoadedProfile(profile, tmp_path / "aris3nb.toml", None), served, tmp_path, "smoke").results
        assert smoke.evidence["totals"] == {"passed": 1, "failed": 0, "errors": 0, "skipped": 0}, smoke.detail


def test_a_profile_without_smoke_warns_that_none_ran(tmp_path: Path) -> None:
    """A smoke that did not run is never a silent pass: WARN (FAIL under --strict)."""
    bare = LoadedProfile(Profile(profile_version=1, name="bare"), tmp_path / "aris3nb.toml", None)
    [smoke] = gate(bare, "http://127.0.0.1:9", tmp_path, "smoke").results
    assert smoke.status is Status.WARN and smoke.detail.startswith("no smoke ran:"), smoke.detail
