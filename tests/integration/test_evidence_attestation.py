"""A signed run's in-toto attestation, as an auditor checks it: with aris3nb and without it.

The attestation verifies only under a key the verifier trusts (``--public-key``, or a folder
of trusted keys, the signer named by its file), never a key from the run; an independent
script using securesystemslib (scripts/verify_attestation.py, the one docs/FORMAT.md shows)
verifies the same bundle and refuses it under another key or after a file changed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_evidence import cli, sealed_run

from aris3nb.evidence.attest import ATTESTATION_NAME
from aris3nb.evidence.bundle import generate_signing_key, verify_run

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_attestation.py"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """The team's signing key and someone else's, each with its .pub."""
    generate_signing_key(tmp_path / "keys" / "release-ci.pem")
    generate_signing_key(tmp_path / "other" / "someone.pem")
    return tmp_path / "keys" / "release-ci.pem", tmp_path / "other" / "someone.pem"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


def trusted_folder(tmp_path: Path, *public_keys: Path) -> Path:
    folder = tmp_path / "trusted"
    folder.mkdir(exist_ok=True)
    for key in public_keys:
        shutil.copy(key, folder / key.name)
    return folder


def test_a_signed_run_is_attested_and_named_by_the_trusted_key(
    runs: Path, keys: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, _other = keys
    folder = sealed_run(runs, 0, key)
    assert (folder / ATTESTATION_NAME).is_file()
    code, out, _ = cli(
        capsys, "evidence", "verify", str(folder), "--trusted-keys", str(trusted_folder(tmp_path, Path(f"{key}.pub")))
    )
    assert code == 0, out
    assert "  attestation: verified, signed by the trusted key release-ci.pem.pub" in out
    result = verify_run(folder)
    assert result.ok and result.attested_by is None and "not checked" in (result.attestation or "")


def test_another_key_does_not_verify_it(
    runs: Path, keys: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, other = keys
    folder = sealed_run(runs, 0, key)
    code, out, _ = cli(
        capsys, "evidence", "verify", str(folder), "--trusted-keys", str(trusted_folder(tmp_path, Path(f"{other}.pub")))
    )
    assert code == 1
    assert any("no signature in it verifies under a trusted key" in line for line in out), out


def test_an_attestation_added_to_an_unsigned_run_is_a_problem(runs: Path, keys: tuple[Path, Path]) -> None:
    key, _ = keys
    signed, unsigned = sealed_run(runs, 0, key), sealed_run(runs, 1)
    shutil.copy(signed / ATTESTATION_NAME, unsigned / ATTESTATION_NAME)
    assert any("present but the run is unsigned" in p for p in verify_run(unsigned).problems)


def auditor(folder: Path, public_key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), str(public_key)], capture_output=True, text=True, timeout=60
    )


def test_the_auditors_script_verifies_without_aris3nb_and_refuses_what_it_must(
    runs: Path, keys: tuple[Path, Path]
) -> None:
    key, other = keys
    folder = sealed_run(runs, 0, key)
    assert not re.search(r"^\s*(import|from)\s+aris3nb", SCRIPT.read_text(), flags=re.MULTILINE)
    done = auditor(folder, Path(f"{key}.pub"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"VERIFIED: run {folder.name}: 4 files match; verdict PASS, decision GO")
    refused = auditor(folder, Path(f"{other}.pub"))
    assert refused.returncode == 1 and refused.stdout.startswith("NOT VERIFIED: the signature does not verify")
    (folder / "03-post_deploy.html").write_text("<html>edited</html>")
    changed = auditor(folder, Path(f"{key}.pub"))
    assert changed.returncode == 1 and "03-post_deploy.html" in changed.stdout


def test_trusted_keys_never_pass_a_run_whose_sealer_they_cannot_check(
    runs: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """Re-sealed by someone else without an attestation, or unsigned: with --trusted-keys, a problem."""
    key, _ = keys
    trusted = trusted_folder(tmp_path, Path(f"{key}.pub"))
    signed, unsigned = sealed_run(runs, 0, key), sealed_run(runs, 1)
    (signed / ATTESTATION_NAME).unlink()
    for folder, why in ((signed, "has no evidence.intoto.jsonl"), (unsigned, "is unsigned")):
        problems = verify_run(folder, trusted_keys=trusted).problems
        assert any(why in p and "cannot be checked under them" in p for p in problems), problems
    assert verify_run(signed, public_key=Path(f"{key}.pub")).ok, "--public-key proves the signer by the signature"
