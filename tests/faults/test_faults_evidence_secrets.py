"""Secrets a run is given in the places tests/integration/test_playbook_run.py does not try:
the smoke account's password (``ARIS3_SMOKE_PASSWORD``) echoed by a failing smoke test, a
token and a password written into ``--revert-command``, and the private signing key given
with ``--signing-key``. One real ``aris3nb run rollback`` on a small embedded default, every
file it produced (the bundle, the rollback log, the freeze marker, the index) and its
terminal output searched for each secret.

(URLs with passwords, the service's signing key and the seed password, in a whole playbook
on PostgreSQL: ``tests/integration/test_playbook_run.py::test_no_secret_reaches_any_file_or_output``.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import clifork
import pytest
from faultkit import ROOT, Run, cli_env, run_cli

from aris3nb.evidence.bundle import generate_signing_key

pytestmark = pytest.mark.slow

SMOKE_PASSWORD = "Smoke-Pa55-e1c9d2"
TOKEN = "Tok3n-7a41f0c2e9"
REVERT_PASSWORD = "Revert-Pa55-6b2d"
#: A smoke test that fails saying the password it logged in with, as a careless test would.
LEAKY_SMOKE = """
import os

def test_login_as_the_smoke_account():
    password = os.environ["ARIS3_SMOKE_PASSWORD"]
    print("logging in as smoke.admin with password", password)
    assert password == "something else", f"login refused for smoke.admin with password {password}"
"""


@dataclass
class SecretRun:
    run: Run
    artifacts: Path
    key_lines: list[str]

    def produced(self) -> list[Path]:
        return [path for path in self.artifacts.rglob("*") if path.is_file()]

    def holding(self, secret: str) -> list[str]:
        """Every produced file and output stream that holds ``secret``."""
        found = [str(path) for path in self.produced() if secret.encode() in path.read_bytes()]
        return found + [
            name for name, text in (("stdout", self.run.stdout), ("stderr", self.run.stderr)) if secret in text
        ]


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory: pytest.TempPathFactory) -> SecretRun:
    base = tmp_path_factory.mktemp("secrets")
    (base / "smoke").mkdir()
    (base / "smoke" / "test_leaky_smoke.py").write_text(LEAKY_SMOKE)
    key = base / "keys" / "signing.pem"
    generate_signing_key(key)
    artifacts = base / "artifacts"
    env = cli_env(artifacts, ARIS3_SMOKE_PASSWORD=SMOKE_PASSWORD, TMPDIR=str(base))
    done = clifork.run(
        [
            "run",
            "rollback",
            "--scale",
            "60",
            "--out",
            str(artifacts),
            "--signing-key",
            str(key),
            "--pytest-target",
            str(base / "smoke" / "test_leaky_smoke.py"),
            "--revert-command",
            f"echo deploying --token={TOKEN} --password {REVERT_PASSWORD}",
        ],
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    key_lines = [line for line in key.read_text().splitlines() if "PRIVATE KEY" not in line]
    return SecretRun(Run(done.returncode, done.stdout, done.stderr), artifacts, key_lines)


def test_the_run_used_every_secret(secret_run: SecretRun) -> None:
    """The secrets were really in play: the smoke ran and failed, the revert command ran, the run is signed."""
    assert secret_run.run.returncode == 1, secret_run.run
    [run_dir] = (secret_run.artifacts / "runs").iterdir()
    document = json.loads((run_dir / "evidence.json").read_text())
    checks = {check["name"]: check for check in document["phases"][0]["checks"]}
    assert checks["smoke"]["status"] == "FAIL" and checks["rollback.revert"]["status"] == "PASS"
    assert document["signature"]["algorithm"] == "ed25519" and len(secret_run.produced()) > 10
    public = secret_run.artifacts.parent / "keys" / "signing.pem.pub"
    assert (
        run_cli(["evidence", "verify", str(run_dir), "--public-key", str(public)], secret_run.artifacts).returncode == 0
    )


def test_a_failing_smoke_never_shows_the_smoke_password(secret_run: SecretRun) -> None:
    assert secret_run.holding(SMOKE_PASSWORD) == []
    logs = [path.read_text() for path in secret_run.produced() if path.suffix in (".log", ".xml")]
    assert any("login refused for smoke.admin with password ***" in log for log in logs), (
        "the failure is kept, its password masked"
    )


def test_no_line_of_the_signing_key_reaches_a_file_or_output(secret_run: SecretRun) -> None:
    assert secret_run.key_lines
    for line in secret_run.key_lines:
        assert secret_run.holding(line) == []


@pytest.mark.parametrize("secret", [TOKEN, REVERT_PASSWORD])
def test_a_token_or_password_in_the_revert_command_reaches_no_file(secret: str, secret_run: SecretRun) -> None:
    assert secret_run.holding(secret) == []
