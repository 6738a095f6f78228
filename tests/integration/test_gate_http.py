"""The gate's HTTP probes and latency against real services on loopback: small ASGI apps
served by uvicorn in a thread, each misbehaving in one way (slow on every 10th request,
answering 500, hanging, not listening at all)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from aris3nb.core.checks import run_check
from aris3nb.core.settings import load_settings
from aris3nb.gate import GateOptions, Status, run_gate
from aris3nb.gate.http import LatencyPlan, measure_latency, new_client, probe_health, probe_ready

PASSWORD = "Sm0ke-Secret-77"


class FakeAris3:
    """An ASGI app with ARIS3's probe endpoints; ``mode`` picks how it misbehaves."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        if self.mode == "hang":
            await asyncio.sleep(30)
        if self.mode == "slow_tenth" and self.requests % 10 == 0:
            await asyncio.sleep(0.2)
        status, body = 200, {"status": "ok"}
        if self.mode == "error":
            status, body = 500, {"code": "INTERNAL", "message": "boom", "details": None, "trace_id": "t"}
        elif scope["path"] == "/ready":
            body = {"status": "ready", "revision": "0005_stock_sellable"}
        elif scope["path"] == "/aris3/auth/login":
            status, body = (
                401,
                {
                    "code": "INVALID_CREDENTIALS",
                    "message": "wrong username or password",
                    "details": None,
                    "trace_id": "t",
                },
            )
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@contextlib.contextmanager
def serving(app: FakeAris3) -> Iterator[str]:
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_slow_on_one_request_in_ten_fails_a_120_ms_p95_budget_while_the_median_is_fast() -> None:
    with serving(FakeAris3("slow_tenth")) as base, new_client(base, 5) as client:
        outcome = measure_latency(client, LatencyPlan("/health", budget_ms=120, warmup=0))
    assert outcome.status is Status.FAIL, outcome.detail
    assert outcome.evidence["p50_ms"] < 20, "the median is fast"
    assert outcome.evidence["p95_ms"] > 120 and outcome.evidence["over_budget"] == 20
    assert len(outcome.evidence["samples_ms"]) == 200


def test_a_fast_service_passes_its_budget() -> None:
    with serving(FakeAris3()) as base, new_client(base, 5) as client:
        outcome = measure_latency(client, LatencyPlan("/health", budget_ms=120, warmup=20))
        assert probe_health(client).status is Status.PASS
        assert probe_ready(client).status is Status.PASS
    assert outcome.status is Status.PASS, outcome.detail


def test_a_service_answering_500_fails_health_and_latency() -> None:
    with serving(FakeAris3("error")) as base, new_client(base, 5) as client:
        assert probe_health(client).detail == "GET /health answered 500 INTERNAL: boom"
        result = run_check("latency", lambda _: measure_latency(client, LatencyPlan("/health", budget_ms=120)), None)
    assert result.status is Status.FAIL and result.detail == "GET /health answered 500 INTERNAL: boom"


def test_a_hanging_service_fails_within_the_timeout() -> None:
    with serving(FakeAris3("hang")) as base, new_client(base, 0.5) as client:
        started = time.monotonic()
        result = run_check("health", lambda _: probe_health(client), None)
        elapsed = time.monotonic() - started
    assert result.status is Status.FAIL and "timed out after 0.5 s" in result.detail
    assert elapsed < 2


def test_a_service_that_is_down_fails_at_once() -> None:
    with new_client(f"http://127.0.0.1:{closed_port()}", 5) as client:
        started = time.monotonic()
        result = run_check("health", lambda _: probe_health(client), None)
    assert result.status is Status.FAIL and "cannot connect" in result.detail
    assert time.monotonic() - started < 2


def test_the_gate_against_a_hanging_base_url_fails_every_live_check_within_the_timeouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_GATE_HTTP_TIMEOUT_SEC", "0.5")
    monkeypatch.setenv("ARIS3_SMOKE_PASSWORD", PASSWORD)
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    with serving(FakeAris3("hang")) as base:
        started = time.monotonic()
        report = run_gate(
            GateOptions(base_url=f"{base.replace('http://', 'http://ops:Url-Secret-9@')}/", workdir=tmp_path), settings
        )
        elapsed = time.monotonic() - started
    statuses = {r.name: r.status for r in report.results}
    live = [name for name in statuses if name.startswith(("http.", "latency."))]
    assert all(statuses[name] is Status.FAIL for name in live), statuses
    assert report.exit_code == 1 and report.summary["verdict"] == "FAIL"
    assert elapsed < 15, "six live checks, each bounded by the 0.5 s timeout"
    text = report.summary_path.read_text()
    assert "Url-Secret-9" not in text and PASSWORD not in text and "ops:***@" in text


def test_wrong_smoke_credentials_fail_the_authenticated_latency_checks(tmp_path: Path) -> None:
    settings = load_settings(
        artifacts={"dir": tmp_path / "artifacts"}, gate={"latency_samples": 5, "latency_warmup": 0}
    )
    with serving(FakeAris3()) as base:
        report = run_gate(GateOptions(base_url=base, workdir=tmp_path), settings)
    by_name = {r.name: r for r in report.results}
    assert by_name["http.health"].status is Status.PASS
    assert by_name["latency.health"].status is Status.WARN, "5 samples: inconclusive, never PASS"
    for name in ("latency.stock", "latency.reports", "latency.exports"):
        assert by_name[name].status is Status.FAIL
        assert by_name[name].detail.startswith("login as smoke.admin refused: 401 INVALID_CREDENTIALS")


class UpstreamLike:
    """An ASGI app answering as upstream ARIS3 does (docs/targets/aris3-upstream.md §3): health
    ``{"ok": true, ...}``, ready without a revision, login at /aris3/auth/login with
    ``username_or_email``, the error envelope, and a bearer token on the critical GETs."""

    TOKEN = "tok-Upstream-81"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, answer = self.answer(scope["method"], scope["path"], dict(scope["headers"]), body)
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

    def answer(self, method: str, path: str, headers: dict[bytes, bytes], body: bytes) -> tuple[int, Any]:
        envelope = {"details": None, "trace_id": "t"}
        if path == "/health":
            return 200, {"ok": True, "service": "aris3", "version": "0.1.0", "readiness": "live"}
        if path == "/ready":
            return 200, {"ok": True, "service": "aris3", "readiness": "ready"}
        if path == "/aris3/auth/login" and method == "POST":
            sent = json.loads(body or b"{}")
            if "username_or_email" not in sent:
                return 422, {
                    "code": "VALIDATION_ERROR",
                    "message": "username_or_email or email is required",
                    **envelope,
                }
            if (sent["username_or_email"], sent.get("password")) != ("smoke.admin", PASSWORD):
                return 401, {"code": "INVALID_CREDENTIALS", "message": "Invalid credentials", **envelope}
            return 200, {"access_token": self.TOKEN, "token_type": "bearer"}
        if headers.get(b"authorization") != f"Bearer {self.TOKEN}".encode():
            return 401, {"code": "INVALID_TOKEN", "message": "Invalid token", **envelope}
        return 200, {"meta": {}, "rows": [], "totals": {}}


def upstream_profile() -> Any:
    from aris3nb.targets.profile import LoadedProfile, Profile

    profile = Profile.model_validate(
        {
            "profile_version": 1,
            "name": "upstream-like",
            "service": {
                "health": {"path": "/health", "pointer": "/ok", "expect": True},
                "ready": {
                    "path": "/ready",
                    "status": 200,
                    "ready_pointer": "/readiness",
                    "ready_expect": "ready",
                    "revision_pointer": "",
                },
                "login": {
                    "path": "/aris3/auth/login",
                    "body": {"username_or_email": "{username}", "password": "{password}"},
                },
                "smoke_account": {"username_env": "UPSTREAM_SMOKE_USER", "password_env": "UPSTREAM_SMOKE_PASSWORD"},
                "endpoints": [
                    {"name": "health", "path": "/health", "auth": False, "p95_ms": 120},
                    {"name": "stock", "path": "/aris3/stock", "params": {"page_size": "50"}, "p95_ms": 300},
                ],
            },
        }
    )
    return LoadedProfile(profile, Path("/nonexistent/aris3nb.toml"), None)


def test_an_upstream_like_service_passes_with_its_profile_and_a_bad_password_quotes_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSTREAM_SMOKE_USER", "smoke.admin")
    monkeypatch.setenv("UPSTREAM_SMOKE_PASSWORD", PASSWORD)
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"}, gate={"latency_warmup": 0})
    checks = ("http.health", "http.ready", "latency.health", "latency.stock")
    loaded = upstream_profile()
    with serving(UpstreamLike()) as base:
        report = run_gate(GateOptions(base_url=base, profile=loaded, checks=checks, workdir=tmp_path), settings)
        monkeypatch.setenv("UPSTREAM_SMOKE_PASSWORD", "Wrong-Secret-5")
        refused = run_gate(
            GateOptions(base_url=base, profile=loaded, checks=("latency.stock",), workdir=tmp_path), settings
        )
    results = {r.name: r for r in report.results}
    assert {r.status for r in results.values()} == {Status.PASS}, {r.name: r.detail for r in report.results}
    assert results["http.health"].detail.startswith("200, /ok = true in ")
    assert results["http.ready"].detail.startswith('200, /readiness = "ready" in ')
    assert results["http.ready"].detail.endswith(
        "the service reports no revision (the profile names no "
        "revision_pointer), so the schema's revision is not compared here"
    )
    text = report.summary_path.read_text()
    assert PASSWORD not in text and UpstreamLike.TOKEN not in text
    [stock] = refused.results
    assert stock.status is Status.FAIL
    assert stock.detail == (
        "login as smoke.admin (POST /aris3/auth/login) answered 401 Unauthorized: "
        "INVALID_CREDENTIALS: Invalid credentials; the server refused the smoke account's "
        "credentials (check UPSTREAM_SMOKE_USER / UPSTREAM_SMOKE_PASSWORD)"
    )
    assert "Wrong-Secret-5" not in refused.summary_path.read_text()


def test_json_pointers_follow_rfc_6901() -> None:
    from aris3nb.gate.http import MISSING, json_equal, resolve_pointer

    document = {"a/b": {"m~n": [10, 20]}, "": 1, "ok": True}
    assert resolve_pointer(document, "") is document
    assert resolve_pointer(document, "/a~1b/m~0n/1") == 20
    assert resolve_pointer(document, "/") == 1
    for absent in ("/a~1b/m~0n/01", "/a~1b/m~0n/2", "/a~1b/m~0n/-", "/ok/x", "/a/b"):
        assert resolve_pointer(document, absent) is MISSING, absent
    for bad in ("ok", "/a~2b"):
        with pytest.raises(ValueError, match="RFC 6901"):
            resolve_pointer(document, bad)
    assert json_equal(True, True) and not json_equal(1, True) and not json_equal("1", 1) and json_equal(1, 1.0)
