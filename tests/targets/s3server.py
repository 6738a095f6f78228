"""An S3-compatible store for tests: moto's server in this process, on a free loopback port,
spoken to over real HTTP. Tests load it by path (``tests/`` is not on ``sys.path``)::

    s3server = load_helper()   # see tests/integration/test_storage_s3.py
    with s3server.MotoS3() as store: ...

moto accepts any credentials unless told otherwise: ``checking_credentials()`` turns its IAM
check on (every request then needs a key moto issued), and off again afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clifork
from moto.server import ThreadedMotoServer

ACCESS_KEY_ID = "testing"
#: Distinctive, so that a test can look for it in every message and log record.
SECRET_ACCESS_KEY = "testing-secret-3f9c1e7a5b"
REGION = "us-east-1"
#: The installed command, run as its users run it.
ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))


@dataclass
class Cli:
    """The ``aris3nb`` command with a test's environment (the store's variables); every output is
    kept for the secret scan; staging folders land in ``temp``."""

    env: dict[str, str]
    cwd: Path
    temp: Path
    outputs: list[str] = field(default_factory=list)

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = clifork.run(list(args), env={**self.env, **env}, cwd=self.cwd, timeout=600)
        self.outputs += [done.stdout, done.stderr]
        return done

    def staging_folders(self) -> list[Path]:
        return sorted(self.temp.glob("aris3nb-*"))


class MotoS3:
    """moto's server on 127.0.0.1 and a free port (``start``/``stop``, or ``with``)."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> MotoS3:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """The variables a client of this store needs (set them with monkeypatch)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, service: str = "s3", **credentials: str) -> Any:
        """A boto3 client of this store, for setting up and inspecting a test's buckets."""
        import boto3

        keys = {"aws_access_key_id": ACCESS_KEY_ID, "aws_secret_access_key": SECRET_ACCESS_KEY, **credentials}
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **keys)

    @contextlib.contextmanager
    def checking_credentials(self) -> Iterator[None]:
        """moto checks every request's signature against the keys it issued while inside."""
        self._reset_auth("0")
        try:
            yield
        finally:
            self._reset_auth("inf")

    def _reset_auth(self, count: str) -> None:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
