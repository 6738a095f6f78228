"""The background server adds no latency of its own: its /health answers about as fast as a
bare ASGI app served by uvicorn beside it (measured side by side, compared as a ratio).

Without TCP_NODELAY on the listening socket every response waited for the client's delayed
ACK (~40 ms against ~0.5 ms), which would make every latency budget of the gate meaningless.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from aris3nb import migrate
from aris3nb.core.settings import load_settings
from aris3nb.reference.server import running_server


async def bare_app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


def median_ms(url: str, samples: int = 40) -> float:
    with httpx.Client(timeout=5) as client:
        for _ in range(5):
            client.get(url)
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def test_health_is_as_quick_as_a_bare_uvicorn_app(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aris3.db'}"
    migrate.upgrade(url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        bare_port = probe.getsockname()[1]
    bare = uvicorn.Server(uvicorn.Config(bare_app, host="127.0.0.1", port=bare_port, log_level="warning"))
    thread = threading.Thread(target=bare.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not bare.started and time.monotonic() < deadline:
            time.sleep(0.02)
        with running_server(url, load_settings(target={"exports_dir": tmp_path / "exports"})) as base:
            ours = median_ms(f"{base}/health")
            reference = median_ms(f"http://127.0.0.1:{bare_port}/")
    finally:
        bare.should_exit = True
        thread.join(10)
    assert ours < reference * 10, (ours, reference)
