"""Running the reference service under uvicorn: ``serve`` in the foreground (the CLI), and
``running_server`` in a background thread on a loopback port (tests, the gate's embedded
default), which yields only once the port accepts connections and always shuts down.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from aris3nb.core.errors import Aris3nbError
from aris3nb.core.settings import Settings
from aris3nb.reference.app import create_app

START_TIMEOUT_SEC = 15.0
STOP_TIMEOUT_SEC = 10.0


class ServiceStartFailed(Aris3nbError):
    """Raised when the reference service does not come up on its port in time."""


def serve(database_url: str, settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the reference service until interrupted."""
    uvicorn.run(create_app(database_url, settings), host=host, port=port, log_level="info")


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def running_server(
    database_url: str,
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    start_timeout_sec: float = START_TIMEOUT_SEC,
    throwaway: bool = False,
) -> Iterator[str]:
    """Serve in a background thread; yields the base URL (``http://127.0.0.1:PORT``).
    ``throwaway``: as ``create_app`` has it."""
    app = create_app(database_url, settings, throwaway=throwaway)
    # Bind first, so port 0 gets a free port we know before uvicorn starts.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, a response written as headers then
    # body waits on the client's delayed ACK (Nagle), ~40 ms of latency on every request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServiceStartFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"aris3-server-{bound_port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_sec
        while not (server.started and _accepts_connections(host, bound_port)):
            if not thread.is_alive():
                raise ServiceStartFailed(f"the reference service on {host}:{bound_port} stopped while starting")
            if time.monotonic() > deadline:
                raise ServiceStartFailed(
                    f"the reference service did not accept connections on {host}:{bound_port} "
                    f"within {start_timeout_sec:.0f} s"
                )
            time.sleep(0.02)
        url_host = f"[{host}]" if ":" in host else host
        yield f"http://{url_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SEC)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT_SEC)
        sock.close()
