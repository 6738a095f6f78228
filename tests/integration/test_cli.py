"""The `aris3nb` command as a user runs it: a real process, real databases, real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import clifork
import httpx
import pytest
from typer.testing import CliRunner

from aris3nb import migrate
from aris3nb.cli import app

ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))
SECRET = "S3cret-Pw-9f4a"


def aris3nb(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return clifork.run(list(args), timeout=timeout, env={**os.environ, **(env or {})})


def assert_one_line_failure(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("FAILED: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert SECRET not in done.stderr + done.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_lists_the_commands() -> None:
    done = aris3nb("--help")
    assert done.returncode == 0
    for command in ("run", "serve", "db"):
        assert command in done.stdout
    done = aris3nb("db", "--help")
    assert all(c in done.stdout for c in ("upgrade", "downgrade", "seed"))
    assert "--database-url" in aris3nb("db", "seed", "--help").stdout


def test_upgrade_then_seed_then_seed_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aris3.db'}"
    done = aris3nb("db", "upgrade", "--database-url", url, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"database": url, "revision": migrate.head_revision()}

    done = aris3nb(
        "db", "seed", "--database-url", url, "--scale", "500", "--exports-dir", str(tmp_path / "ex"), "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rows"]["stock_items"] == 500 and result["seed"] == 42
    assert len(result["export_files"]) >= 6 and all(Path(p).is_file() for p in result["export_files"])

    again = aris3nb("db", "seed", "--database-url", url, "--scale", "500", "--exports-dir", str(tmp_path / "ex"))
    assert_one_line_failure(again, 1, "already holds tenants")


def test_seed_before_upgrade_says_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aris3.db'}"
    assert aris3nb("db", "upgrade", "--database-url", url, "--revision", "0002_transfer_movements").returncode == 0
    assert_one_line_failure(aris3nb("db", "seed", "--database-url", url), 1, "aris3nb db upgrade")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a database url", "cannot parse database URL"),
        (f"mysql://root:{SECRET}@127.0.0.1/x", "unsupported database 'mysql'"),
        (f"postgresql://postgres:{SECRET}@127.0.0.1:1/aris3", "unavailable"),
        (f"postgresql://postgres:{SECRET}@127.0.0.1:5432/aris3nb_no_such_database", "unavailable"),
        ("sqlite:////nonexistent-folder/for/aris3.db", "does not exist"),
        ("sqlite://", "in-memory"),
    ],
)
def test_bad_or_unreachable_database_url_exits_2_without_the_password(url: str, fragment: str) -> None:
    assert_one_line_failure(aris3nb("db", "seed", "--database-url", url, "--scale", "1"), 2, fragment)


def test_password_in_a_bad_url_is_not_echoed_by_upgrade() -> None:
    done = aris3nb("db", "upgrade", "--database-url", f"postgresql://postgres:{SECRET}@127.0.0.1:1/aris3")
    assert_one_line_failure(done, 2, "postgresql://postgres:***@127.0.0.1:1/aris3")


def test_bad_options_are_usage_errors() -> None:
    assert aris3nb("db", "seed", "--scale", "-1").returncode == 2
    assert aris3nb("db", "seed", "--scale", "many").returncode == 2
    assert aris3nb("no-such-command").returncode == 2


def test_bad_environment_setting_is_a_usage_error(tmp_path: Path) -> None:
    done = aris3nb(
        "db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'a.db'}", env={"OPS_DRILL_TIMEOUT_SEC": "soon"}
    )
    assert_one_line_failure(done, 2, "OPS_DRILL_TIMEOUT_SEC")


def test_serve_refuses_a_missing_sqlite_database(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    done = aris3nb("serve", "--database-url", f"sqlite:///{missing}", "--port", str(free_port()))
    assert_one_line_failure(done, 2, "aris3nb db upgrade")
    assert not missing.exists(), "serving must not create an empty database"


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_run_refuses_a_busy_port(tmp_path: Path, occupied_port: int) -> None:
    done = aris3nb("serve", "--embedded", "--port", str(occupied_port), env={"OPS_ARTIFACTS_DIR": str(tmp_path)})
    assert_one_line_failure(done, 2, f"127.0.0.1:{occupied_port}")
    assert not (tmp_path / "embedded").exists(), "nothing created before the refusal"


def test_run_never_wipes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "embedded" / "notes.txt"
    precious.parent.mkdir()
    precious.write_text("keep me")
    done = aris3nb("serve", "--embedded", "--port", str(free_port()), env={"OPS_ARTIFACTS_DIR": str(tmp_path)})
    assert_one_line_failure(done, 2, "was not made by aris3nb")
    assert precious.read_text() == "keep me"


def wait_ready(base_url: str, process: subprocess.Popen[str], timeout: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"exited early with {process.returncode}: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            response = httpx.get(f"{base_url}/ready", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base_url} not ready within {timeout} s")


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.mark.slow
def test_run_is_the_main_job_and_can_be_run_again(tmp_path: Path) -> None:
    """The README's first line: a fresh embedded ARIS3, migrated, seeded and served; the
    second run starts afresh in the same folder."""
    env = {**os.environ, "OPS_ARTIFACTS_DIR": str(tmp_path), "ARIS3_SEED_PASSWORD": SECRET}
    for _ in range(2):
        port = free_port()
        process = subprocess.Popen(
            [ARIS3NB, "serve", "--embedded", "--port", str(port), "--scale", "800"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            assert wait_ready(base, process).json()["revision"] == migrate.head_revision()
            token = httpx.post(
                f"{base}/aris3/auth/login", json={"username": "northwind.admin", "password": SECRET}, timeout=10
            ).json()["access_token"]
            stock = httpx.get(f"{base}/aris3/stock", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
            assert 0 < stock["totals"]["total_rows"] < 800
            assert stock["totals"]["total_units"] == stock["totals"]["total_rfid"] + stock["totals"]["total_pending"]
        finally:
            code = stop(process)
        output = process.stdout.read() + process.stderr.read()  # type: ignore[union-attr]
        assert code == 0 or code == 130, output
        assert SECRET not in output
    assert (tmp_path / "embedded" / "aris3.db").is_file()


@pytest.mark.slow
def test_serve_over_postgresql(postgres_url: str, tmp_path: Path) -> None:
    assert aris3nb("db", "upgrade", "--database-url", postgres_url).returncode == 0
    seeded = aris3nb("db", "seed", "--database-url", postgres_url, "--scale", "300", "--exports-dir", str(tmp_path))
    assert seeded.returncode == 0, seeded.stderr
    port = free_port()
    process = subprocess.Popen(
        [ARIS3NB, "serve", "--database-url", postgres_url, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ARIS3_EXPORTS_DIR": str(tmp_path)},
    )
    try:
        assert wait_ready(f"http://127.0.0.1:{port}", process).json()["status"] == "ready"
    finally:
        stop(process)


def test_run_refuses_an_exports_dir_that_is_not_a_folder_and_a_foreign_profile_without_its_service(
    tmp_path: Path,
) -> None:
    env = {"OPS_ARTIFACTS_DIR": str(tmp_path / "art")}
    done = aris3nb("run", "--embedded", "--exports-dir", str(tmp_path / "missing"), env=env)
    assert_one_line_failure(done, 2, "--exports-dir")
    profile = tmp_path / "shop" / "aris3nb.toml"
    profile.parent.mkdir()
    profile.write_text('profile_version = 1\nextends = "aris3"\nname = "shop"\n')
    done = aris3nb("run", "--target", str(profile), "--database-url", f"sqlite:///{tmp_path / 'shop.db'}", env=env)
    assert_one_line_failure(done, 2, "give its --base-url")
    assert not (tmp_path / "art").exists(), "nothing ran"


def test_run_refuses_a_sqlite_database_that_does_not_exist_and_creates_none(tmp_path: Path) -> None:
    """A mistyped path is a usage error, at once: connecting would create an empty file, judged
    NO-GO with a deploy freeze written. Given as --database-url or as DATABASE_URL."""
    missing = tmp_path / "typo.db"
    env = {"OPS_ARTIFACTS_DIR": str(tmp_path / "art"), "OPS_ENABLE_BACKUP_DRILL": "true"}
    done = aris3nb("run", "--database-url", f"sqlite:///{missing}", env=env)
    assert_one_line_failure(done, 2, f"no SQLite database at {missing}")
    done = aris3nb("run", "--base-url", "http://127.0.0.1:9", env={**env, "DATABASE_URL": f"sqlite:///{missing}"})
    assert_one_line_failure(done, 2, f"no SQLite database at {missing}")
    assert not missing.exists() and not (tmp_path / "art").exists(), "nothing created, nothing ran"


def test_every_commands_help_names_what_it_reads_without_type_noise() -> None:
    """Each command's help says its exit codes; options show what to give (URL, SECONDS, PATH),
    never a Python type such as <str> or <list[str]>."""
    commands = [
        ["run"],
        ["gate"],
        ["integrity"],
        ["init"],
        ["serve"],
        ["backup", "create"],
        ["backup", "validate"],
        ["backup", "restore-verify"],
        ["backup", "restore"],
        ["evidence", "verify"],
        ["evidence", "seal"],
        ["evidence", "keygen"],
        ["db", "upgrade"],
        ["db", "downgrade"],
        ["db", "seed"],
    ]
    # In this process (as typer's own tests do): one interpreter start instead of one per command.
    runner = CliRunner()
    for command in commands:
        done = runner.invoke(app, [*command, "--help"], prog_name="aris3nb", env={"COLUMNS": "80"})
        assert done.exit_code == 0, (command, done.output)
        text = " ".join(done.stdout.split())
        assert "Exit" in text, (command, "names no exit codes")
        noise = re.findall(r"--[a-z-]+ <[a-z\[\]| ]+>", text)
        assert not noise, (command, noise)
        usage = next(line for line in done.stdout.splitlines() if line.startswith("Usage:"))
        assert not re.search(r"[{}<>]", usage), (command, usage)  # MANIFEST, not {MANIFEST} or <path>
        arguments = done.stdout.partition("Arguments:")[2].partition("Options:")[0]
        assert not re.search(r"<[a-z\[\]]+>", arguments), (command, arguments)  # MANIFEST, not MANIFEST <path>
    restore_verify = runner.invoke(app, ["backup", "restore-verify", "--help"], prog_name="aris3nb")
    assert "OPS_ENABLE_BACKUP_DRILL" in " ".join(restore_verify.stdout.split())


def test_phase_without_rerun_says_how_to_run_it_and_an_unknown_phase_lists_the_phases() -> None:
    done = aris3nb("run", "--phase", "drill")
    assert_one_line_failure(done, 2, "--phase is for --rerun RUN_ID", "aris3nb run drill")
    done = aris3nb("run", "--phase", "bogus")
    assert_one_line_failure(done, 2, "'bogus' is not a phase of the playbook", "pre_deploy, deploy")
    assert "aris3nb run bogus" not in done.stderr


def test_a_command_that_cannot_use_an_s3_repository_refuses_it_instead_of_writing_elsewhere() -> None:
    for command in (["gate"], ["integrity"], ["serve"]):  # backup, run and evidence take an s3:// place
        done = aris3nb(*command, env={"OPS_ARTIFACTS_DIR": "s3://evidence-bucket/aris3"})
        assert_one_line_failure(done, 2, "OPS_ARTIFACTS_DIR is an S3 repository", f"`aris3nb {command[0]}`")


def test_version_is_the_installed_distributions_and_needs_no_valid_environment() -> None:
    import importlib.metadata

    runner = CliRunner()
    for env in ({}, {"OPS_RPO_BUDGET_SEC": "not a number"}):
        done = runner.invoke(app, ["--version"], prog_name="aris3nb", env=env)
        assert done.exit_code == 0, done.output
        assert done.stdout == f"aris3nb {importlib.metadata.version('aris3nb')}\n"
