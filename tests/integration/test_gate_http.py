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
from aris3nb.gate import GateOptions, Status, load_gate_settings, run_gate
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
            status, body = 401, {"code": "INVALID_CREDENTIALS", "message": "wrong username or password",
                                 "details": None, "trace_id": "t"}
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
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
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_GATE_HTTP_TIMEOUT_SEC", "0.5")
    monkeypatch.setenv("ARIS3_SMOKE_PASSWORD", PASSWORD)
    settings = load_gate_settings(ops_artifacts_dir=tmp_path / "artifacts")
    with serving(FakeAris3("hang")) as base:
        started = time.monotonic()
        report = run_gate(GateOptions(base_url=f"{base.replace('http://', 'http://ops:Url-Secret-9@')}/",
                                      workdir=tmp_path), settings)
        elapsed = time.monotonic() - started
    statuses = {r.name: r.status for r in report.results}
    live = [name for name in statuses if name.startswith(("http.", "latency."))]
    assert all(statuses[name] is Status.FAIL for name in live), statuses
    assert report.exit_code == 1 and report.summary["verdict"] == "FAIL"
    assert elapsed < 15, "six live checks, each bounded by the 0.5 s timeout"
    text = report.summary_path.read_text()
    assert "Url-Secret-9" not in text and PASSWORD not in text and "ops:***@" in text


def test_wrong_smoke_credentials_fail_the_authenticated_latency_checks(tmp_path: Path) -> None:
    settings = load_gate_settings(ops_artifacts_dir=tmp_path / "artifacts", latency_samples=5, latency_warmup=0)
    with serving(FakeAris3()) as base:
        report = run_gate(GateOptions(base_url=base, workdir=tmp_path), settings)
    by_name = {r.name: r for r in report.results}
    assert by_name["http.health"].status is Status.PASS
    assert by_name["latency.health"].status is Status.WARN, "5 samples: inconclusive, never PASS"
    for name in ("latency.stock", "latency.reports", "latency.exports"):
        assert by_name[name].status is Status.FAIL
        assert by_name[name].detail.startswith("login as smoke.admin refused: 401 INVALID_CREDENTIALS")
