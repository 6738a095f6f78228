"""The reference ARIS3 service fuzzed from its own OpenAPI description (schemathesis 4):
every operation called over real HTTP on loopback (uvicorn, a seeded SQLite database), as
the smoke tenant's admin, with valid and invalid requests (bodies, query strings, path
parameters, headers). What must hold for every response:

* never a 5xx (a 500 is a bug; a 503 would mean the database failed under the fuzzing);
* every 4xx body is the ARIS3 error envelope (docs/FORMAT.md section 4): exactly ``code``
  (upper-case), ``message`` (text), ``details``, ``trace_id`` (equal to the X-Trace-Id
  header), and never a traceback.

`pytest --hypothesis-show-statistics` prints the cases run per operation.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from faultkit import SUMMARY
from hypothesis import HealthCheck, settings
from pydantic import SecretStr

from aris3nb.core.settings import load_settings
from aris3nb.reference.app import create_app
from aris3nb.reference.server import running_server
from aris3nb.reference.smoke_tenant import SMOKE_USERNAME

EXAMPLES_PER_OPERATION = 40
SMOKE_PASSWORD = "aris3-smoke-pass"  # the seed's default, as the session template was seeded


#: (method path) -> status -> responses seen; printed as one line when the module ends.
SEEN: dict[str, Counter[int]] = defaultdict(Counter)


@pytest.fixture(scope="module")
def service(
    small_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """The service on its own copy of the seeded database; its base URL and a bearer header."""
    folder = tmp_path_factory.mktemp("fuzz-service")
    shutil.copytree(small_sqlite_template, folder / "db")
    settings_ = load_settings(
        service={"secret_key": SecretStr("fuzz-service-secret-0123456789abcdef")},
        target={"exports_dir": folder / "db" / "exports"},
    )
    with running_server(f"sqlite:///{folder / 'db' / 'aris3.db'}", settings_) as base_url:
        login = httpx.post(
            f"{base_url}/aris3/auth/login", json={"username": SMOKE_USERNAME, "password": SMOKE_PASSWORD}, timeout=30
        )
        assert login.status_code == 200, login.text
        yield base_url, {"Authorization": f"Bearer {login.json()['access_token']}"}
    statuses = sum(SEEN.values(), Counter())
    SUMMARY.append(
        f"schemathesis: {len(SEEN)} operations, {sum(statuses.values())} requests; statuses "
        + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    )


def _openapi_document() -> dict[str, Any]:
    """The service's OpenAPI description, from an app that is never started (making the
    app opens no database: the file named here is never created)."""
    app = create_app(
        f"sqlite:///{Path(tempfile.gettempdir()) / 'aris3nb-openapi-only.db'}",
        load_settings(service={"secret_key": SecretStr("openapi-only-secret-0123456789abcdef")}),
    )
    return app.openapi()


# Loaded when the module is collected (schemathesis' fixture-based loader does not run on
# this pytest); the calls go to the live service of the ``service`` fixture.
schema = schemathesis.openapi.from_dict(_openapi_document())
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_no_5xx_and_every_error_in_the_envelope(case: schemathesis.Case, service: tuple[str, dict[str, str]]) -> None:
    base_url, bearer = service
    # Most calls as the smoke admin; the login and a share of the rest as nobody (401 envelopes).
    headers = {**(case.headers or {}), **bearer} if case.operation.path != "/aris3/auth/login" else case.headers
    response = case.call(base_url=base_url, headers=headers, timeout=30)
    text = response.text or ""
    SEEN[case.operation.label][response.status_code] += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} answered {response.status_code}: {text[:500]}"
    )
    assert "Traceback" not in text
    trace_id = response.headers.get("x-trace-id") or response.headers.get("X-Trace-Id")
    assert trace_id, "every response carries X-Trace-Id"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"code", "message", "details", "trace_id"}, body
        assert isinstance(body["code"], str) and body["code"].isupper() and body["code"].replace("_", "").isalpha()
        assert isinstance(body["message"], str) and body["message"]
        assert body["trace_id"] == (trace_id[0] if isinstance(trace_id, list) else trace_id)
