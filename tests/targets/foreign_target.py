"""Drive the foreign target (tests/targets/foreign) from aris3nb's tests, in its own interpreter.

The target is a different codebase with its own environment, as upstream ARIS3 is: nothing here
imports it. A test gets an interpreter with ``ensure_venv`` and then runs the target's own
commands in it::

    python = ensure_venv(cache_dir)                        # .../bin/python of the target's venv
    migrate(python, url)                                   # alembic upgrade head (in the target)
    seed(python, url, scale=40, exports_dir=tmp / "exports")
    with serve(python, url, exports_dir=tmp / "exports") as base_url:
        ...                                                # http://127.0.0.1:<free port>

``ensure_venv`` costs 25-45 s on this machine (2 shared cores: 25 s idle, 45 s under load;
``python -m venv`` takes ~3 s, the rest is ``pip install`` of requirements.txt from the local
wheel mirror) the first time for a given requirements.txt, and ~0.1 s afterwards: the venv is
kept under ``cache_dir`` by the SHA-256 of requirements.txt and the base interpreter's version,
so give it a session- or machine-wide folder (a ``tmp_path_factory`` folder of scope
``session``, or a persistent cache). ``base_python`` picks another base interpreter (e.g.
``/usr/bin/python3``, Debian's 3.11.2, rather than the one aris3nb's venv was made from).

On a fresh PostgreSQL database ``migrate`` fails at the second revision (the target keeps
upstream ARIS3's defect: revision ids longer than ``alembic_version.version_num`` VARCHAR(32));
``migrate(..., widen_version_table=True)`` applies the documented workaround first.

The smoke account every seed creates is ``SMOKE_USER`` / ``SMOKE_PASSWORD`` (passed to the
target as ``FOREIGN_SMOKE_USER`` / ``FOREIGN_SMOKE_PASSWORD``; ``smoke_env`` gives them with a
base URL, as the target's smoke test reads them).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "foreign"
REQUIREMENTS = ROOT / "requirements.txt"
PROFILE = ROOT / "aris3nb.toml"
ALEMBIC_INI = ROOT / "alembic.ini"
SMOKE_TEST = ROOT / "smoke" / "test_smoke.py"
SMOKE_USER = "smoke.admin"
SMOKE_PASSWORD = "foreign-smoke-password"
#: Revision ids of the target's history, oldest first (the six after the first exceed 32 characters).
REVISIONS = (
    "fr0001_baseline",
    "fr0002_inventory_units_rfid_tagged_stock",
    "fr0003_consignments_items_and_event_journal",
    "fr0004_tills_till_shifts_and_till_entries",
    "fr0005_receipts_items_tenders_and_till_links",
    "fr0006_report_exports_request_keys_and_journal",
    "fr0007_account_outlet_grants_and_unit_shelves",
)
HEAD = REVISIONS[-1]
VENV_TIMEOUT_SEC = 600
COMMAND_TIMEOUT_SEC = 300
START_TIMEOUT_SEC = 30
#: Where tests keep the target's venv (``ensure_venv``): once per machine, by default.
VENV_CACHE = Path(os.environ.get("ARIS3NB_TARGET_VENV_CACHE", Path(tempfile.gettempdir()) / "aris3nb-target-venvs"))


class TargetCommandFailed(RuntimeError):
    """A command of the target exited non-zero; ``output`` holds its stdout and stderr."""

    def __init__(self, args: list[str], returncode: int, output: str) -> None:
        super().__init__(f"{' '.join(args)} exited {returncode}:\n{output[-4000:]}")
        self.returncode = returncode
        self.output = output


def _venv_key(base_python: str) -> str:
    version = subprocess.run(
        [base_python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return hashlib.sha256(REQUIREMENTS.read_bytes() + version.encode()).hexdigest()[:16]


def ensure_venv(cache_dir: Path, base_python: str | None = None) -> Path:
    """The target's interpreter: a venv of its own, built once per requirements.txt and kept.

    Built in place under a lock (a venv cannot be moved), marked complete last: a venv whose
    build was interrupted is removed and built again.
    """
    base = base_python or getattr(sys, "_base_executable", None) or sys.executable
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    venv = cache_dir / f"foreign-venv-{_venv_key(base)}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    with open(cache_dir / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():
            return python
        if venv.exists():
            subprocess.run(["rm", "-rf", str(venv)], check=True)
        for args in (
            [base, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        ):
            done = subprocess.run(args, capture_output=True, text=True, timeout=VENV_TIMEOUT_SEC, check=False)
            if done.returncode != 0:
                raise TargetCommandFailed(args, done.returncode, done.stdout + done.stderr)
        marker.write_text(json.dumps({"requirements_sha256": hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()}))
    return python


def _env(database_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREIGN_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(FOREIGN_SMOKE_USER=SMOKE_USER, FOREIGN_SMOKE_PASSWORD=SMOKE_PASSWORD)
    if database_url:
        env["FOREIGN_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def run(
    python: Path,
    args: list[str],
    database_url: str,
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = COMMAND_TIMEOUT_SEC,
) -> subprocess.CompletedProcess[str]:
    """``python <args>`` in the target's root and environment; raises TargetCommandFailed if ``check``."""
    argv = [str(python), *args]
    done = subprocess.run(
        argv, cwd=ROOT, env=_env(database_url, env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise TargetCommandFailed(argv, done.returncode, done.stdout + done.stderr)
    return done


def migrate(
    python: Path, database_url: str, revision: str = "head", *, widen_version_table: bool = False, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``alembic upgrade <revision>`` with the target's alembic.ini (``downgrade`` for ``base``/``-N``)."""
    verb = "downgrade" if revision == "base" or revision.startswith("-") else "upgrade"
    extra = {"FOREIGN_WIDE_VERSION_TABLE": "1"} if widen_version_table else None
    return run(python, ["-m", "alembic", "-c", str(ALEMBIC_INI), verb, revision], database_url, env=extra, check=check)


def seed(
    python: Path, database_url: str, scale: int, exports_dir: Path, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The target's deterministic seed: same scale, same rows and export files."""
    args = [
        "-m",
        "foreign_retail",
        "seed",
        "--database-url",
        database_url,
        "--scale",
        str(scale),
        "--exports-dir",
        str(Path(exports_dir).resolve()),
    ]
    return run(python, args, database_url, check=check)


def smoke_env(base_url: str | None) -> dict[str, str]:
    """What the target's smoke test reads: the base URL (live mode) and the smoke account."""
    env = {"FOREIGN_SMOKE_USER": SMOKE_USER, "FOREIGN_SMOKE_PASSWORD": SMOKE_PASSWORD}
    return {**env, "FOREIGN_BASE_URL": base_url} if base_url else env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
            return response.status == 200 and json.load(response).get("ok") is True
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def serve(
    python: Path,
    database_url: str,
    port: int | None = None,
    *,
    exports_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """Run the target's service with uvicorn in its venv on loopback; yield its base URL.

    Waits for ``/health`` (30 s at most); on exit stops the whole process group (TERM, then
    KILL after 10 s). The server's output goes to ``log_path`` (default: a temporary file,
    removed afterwards); a start that fails raises TargetCommandFailed with its tail.
    """
    port = port or _free_port()
    base_url = f"http://127.0.0.1:{port}"
    extra = {"FOREIGN_TOKEN_SECRET": "foreign-target-test-secret", **(env or {})}
    if exports_dir is not None:
        extra["FOREIGN_EXPORTS_DIR"] = str(Path(exports_dir).resolve())
    argv = [
        str(python),
        "-m",
        "uvicorn",
        "foreign_retail.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_path, "w+b") if log_path else tempfile.TemporaryFile())  # noqa: SIM115
        process = subprocess.Popen(
            argv, cwd=ROOT, env=_env(database_url, extra), stdout=log, stderr=log, start_new_session=True
        )
        stack.callback(_stop, process)

        def failed(reason: str) -> TargetCommandFailed:
            log.flush()
            log.seek(0)
            return TargetCommandFailed(argv, process.poll() or -1, f"{reason}\n{log.read().decode(errors='replace')}")

        deadline = time.monotonic() + START_TIMEOUT_SEC
        while not _healthy(base_url):
            if process.poll() is not None:
                raise failed("the service exited before /health answered")
            if time.monotonic() > deadline:
                raise failed(f"/health did not answer within {START_TIMEOUT_SEC} s")
            time.sleep(0.1)
        yield base_url


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def run_smoke(
    python: Path, base_url: str | None, junit_xml: Path | None = None, timeout: float = COMMAND_TIMEOUT_SEC
) -> subprocess.CompletedProcess[str]:
    """The target's smoke test with the target's pytest: live against ``base_url``, else in-process."""
    args = ["-m", "pytest", "-q", str(SMOKE_TEST), "-p", "no:cacheprovider"]
    if junit_xml is not None:
        args += [f"--junitxml={junit_xml}"]
    return run(python, args, "", env=smoke_env(base_url), check=False, timeout=timeout)
