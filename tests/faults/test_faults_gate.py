"""The ARIS3 service misbehaving under the release readiness gate, end to end: the gate runs
as a real process (``aris3nb gate --base-url``) against a service in another process on
loopback that is down, answers 500, or hangs.

The probes themselves are tested against the same misbehaviours, and against a service
slow on one request in ten (p95 over budget while the median is fast), in
tests/integration/test_gate_http.py; here the whole command is judged: its exit code, its
one-line message, the summary it leaves, and its duration against the timeouts.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import run_cli

URL_SECRET = "Url-Secret-9"

SERVICE = r"""
import asyncio, json, socket, sys
import uvicorn

mode, ready = sys.argv[1], sys.argv[2]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if mode == "hang":
        await asyncio.sleep(60)
    status, body = 200, {"status": "ok"}
    if mode == "error":
        status, body = 500, {"code": "INTERNAL_ERROR", "message": "boom", "details": None, "trace_id": "t"}
    elif scope["path"] == "/ready":
        body = {"status": "ready", "revision": "0005_stock_sellable"}
    elif scope["path"] == "/aris3/auth/login":
        status, body = 401, {"code": "INVALID_CREDENTIALS", "message": "wrong username or password",
                             "details": None, "trace_id": "t"}
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
open(ready, "w").write(str(sock.getsockname()[1]))
uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
"""


@contextlib.contextmanager
def misbehaving_service(mode: str, folder: Path) -> Iterator[str]:
    """A service in its own process on a loopback port; yields its base URL with credentials."""
    if mode == "down":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        yield f"http://ops:{URL_SECRET}@127.0.0.1:{port}"
        return
    ready = folder / f"{mode}.port"
    process = subprocess.Popen([sys.executable, "-c", SERVICE, mode, str(ready)])
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.02)
        port = int(ready.read_text())
        while True:  # listening once it accepts a connection
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.02)
        yield f"http://ops:{URL_SECRET}@127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


LIVE_CHECKS = ("http.health", "http.ready", "latency.health", "latency.stock", "latency.reports", "latency.exports")


@pytest.mark.parametrize(
    ("mode", "health_detail", "within_sec"),
    [
        ("down", "cannot connect", 15),
        ("error", "answered 500 INTERNAL_ERROR: boom", 15),
        pytest.param(
            "hang", "timed out after 0.5 s", 25, marks=pytest.mark.slow
        ),  # six live checks, each bounded by the 0.5 s timeout
    ],
)
def test_the_gate_fails_with_the_cause_within_its_timeouts(
    mode: str, health_detail: str, within_sec: float, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    with misbehaving_service(mode, tmp_path) as base_url:
        started = time.monotonic()
        done = run_cli(["gate", "--base-url", base_url], artifacts, OPS_GATE_HTTP_TIMEOUT_SEC="0.5")
        elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert elapsed < within_sec, elapsed
    failed = [line for line in done.stderr.splitlines() if line.startswith("FAILED: ")]
    assert len(failed) == 1 and failed[0].startswith("FAILED: release readiness gate: FAIL (")
    assert "http.health" in failed[0] and "Traceback" not in done.stderr
    summaries = list((artifacts / "gate").glob("gate_summary_*.json"))
    assert len(summaries) == 1, "the summary is written for a failed gate too"
    summary = json.loads(summaries[0].read_text())
    checks = {c["name"]: c for c in summary["checks"]}
    assert summary["verdict"] == "FAIL" and summary["exit_code"] == 1
    assert all(checks[name]["status"] == "FAIL" for name in LIVE_CHECKS), {n: checks[n]["status"] for n in LIVE_CHECKS}
    assert health_detail in checks["http.health"]["detail"], checks["http.health"]["detail"]
    everything = done.stdout + done.stderr + "".join(p.read_text() for p in (artifacts / "gate").iterdir())
    assert URL_SECRET not in everything and "ops:***@127.0.0.1" in everything
