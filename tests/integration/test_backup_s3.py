"""The backup commands on a repository on object storage (``OPS_ARTIFACTS_DIR=s3://...``),
through the installed ``aris3nb`` command against moto's S3 server over real HTTP on loopback
(the real boto3 client), on SQLite and PostgreSQL: create, validate, drill and restore from
the bucket; a byte changed on the store; retention asked of a bucket without Object Lock; a
missing bucket; forget with locked backups; and the secret key nowhere it could leak."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import s3server
from s3server import Cli

from aris3nb import migrate
from aris3nb.reference.seed import seed_database

SECRET = s3server.SECRET_ACCESS_KEY


@dataclass
class Buckets:
    client: Any
    locked: str
    plain: str

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture
def buckets(store: Any) -> Buckets:
    client = store.client()
    suffix = uuid.uuid4().hex[:10]
    made = Buckets(client, locked=f"locked-{suffix}", plain=f"plain-{suffix}")
    client.create_bucket(Bucket=made.locked, ObjectLockEnabledForBucket=True)
    client.create_bucket(Bucket=made.plain)
    return made


def _seeded(url: str, exports: Path) -> str:
    migrate.upgrade(url)
    seed_database(url, scale=200, exports_dir=exports)
    return url


@pytest.fixture
def source_sqlite(tmp_path: Path) -> str:
    return _seeded(f"sqlite:///{tmp_path / 'aris3.db'}", tmp_path / "exports")


@pytest.fixture(params=["sqlite", "postgresql"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        return _seeded(request.getfixturevalue("postgres_url"), tmp_path / "exports")
    return str(request.getfixturevalue("source_sqlite"))


@pytest.fixture
def cli(store: Any, tmp_path: Path) -> Iterator[Cli]:
    """Only this store's AWS variables (no profile or config file of the machine); the
    staging folders land in this test's own TMPDIR. Afterwards: nothing left there, and the
    secret key in no output and no file of the test's folders."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(store.environment())
    env.update(
        {
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "TMPDIR": str(temp),
            "OPS_ENABLE_BACKUP_DRILL": "true",
            "ARIS3_EXPORTS_DIR": str(tmp_path / "exports"),
        }
    )
    work = tmp_path / "work"
    work.mkdir()
    running = Cli(env, work, temp, [])
    yield running
    for text in running.outputs:
        assert SECRET not in text
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), f"the secret key is in {path}"


def _no_secret_on_the_store(buckets: Buckets, bucket: str) -> None:
    for key in buckets.keys(bucket):
        assert SECRET.encode() not in buckets.client.get_object(Bucket=bucket, Key=key)["Body"].read(), key


def test_create_validate_drill_restore_from_the_bucket(cli: Cli, buckets: Buckets, source: str) -> None:
    repo = f"s3://{buckets.plain}/repo"
    env = {"OPS_ARTIFACTS_DIR": repo, "DATABASE_URL": source}

    made = cli("backup", "create", "--name", "b1", **env)
    assert made.returncode == 0, made.stderr
    assert f"-> {repo}/backups/b1/manifest.json" in made.stdout
    assert f"WARN  bucket '{buckets.plain}' has no Object Lock" in made.stdout
    keys = buckets.keys(buckets.plain, "repo/backups/b1/")
    assert "repo/backups/b1/manifest.json" in keys and len(keys) > 2
    assert list(cli.temp.iterdir()) == []  # the staging folder was swept

    again = cli("backup", "create", "--name", "b1", **env)
    assert again.returncode == 1 and "already exists at" in again.stderr
    assert buckets.keys(buckets.plain, "repo/backups/b1/") == keys

    valid = cli("backup", "validate", "b1", **env)
    assert valid.returncode == 0 and f"VALID: {repo}/backups/b1/manifest.json" in valid.stdout
    by_url = cli("backup", "validate", f"{repo}/backups/b1", "--json", **env)
    assert by_url.returncode == 0 and json.loads(by_url.stdout)["valid"] is True

    drill = cli("backup", "restore-verify", f"{repo}/backups/b1/manifest.json", **env)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert "drill PASS" in drill.stdout and f"report {repo}/drills/b1/drill_report_" in drill.stdout
    (report_key,) = buckets.keys(buckets.plain, "repo/drills/b1/")
    report = json.loads(buckets.client.get_object(Bucket=buckets.plain, Key=report_key)["Body"].read())
    assert report["status"] == "PASS"
    assert report["manifest"] == f"{repo}/backups/b1/manifest.json", "where the backup is, not its local copy"

    restored = cli("backup", "restore", "b1", "--target-url", source, "--yes", **env)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"safety backup of the previous state: {repo}/backups/safety_" in restored.stdout
    safety = [k for k in buckets.keys(buckets.plain, "repo/backups/safety_") if k.endswith("/manifest.json")]
    assert len(safety) == 1
    log = buckets.client.get_object(Bucket=buckets.plain, Key="repo/rollback_log.jsonl")["Body"].read().decode()
    assert [json.loads(line)["status"] for line in log.splitlines()] == ["STARTED", "RESTORED"]
    started = json.loads(log.splitlines()[0])
    kept_at = f"{repo}/{safety[0].removeprefix('repo/').removesuffix('/manifest.json')}"
    assert started["safety_backup"] == kept_at, "the log names the safety backup on the store, not in staging"
    assert str(cli.temp) not in log
    assert list(cli.temp.iterdir()) == []
    _no_secret_on_the_store(buckets, buckets.plain)


def test_a_byte_changed_on_the_store_is_named(cli: Cli, buckets: Buckets, source_sqlite: str) -> None:
    repo = f"s3://{buckets.plain}"
    env = {"OPS_ARTIFACTS_DIR": repo, "DATABASE_URL": source_sqlite}
    assert cli("backup", "create", "--name", "b1", **env).returncode == 0
    key = next(k for k in buckets.keys(buckets.plain, "backups/b1/") if k.endswith(".sqlite3"))
    data = bytearray(buckets.client.get_object(Bucket=buckets.plain, Key=key)["Body"].read())
    data[5000] ^= 0xFF
    buckets.client.put_object(Bucket=buckets.plain, Key=key, Body=bytes(data))

    invalid = cli("backup", "validate", "b1", **env)
    assert invalid.returncode == 1, invalid.stderr
    assert f"INVALID: {repo}/backups/b1/manifest.json (1 problem)" in invalid.stdout
    assert f"{repo}/{key} has SHA-256" in invalid.stdout and "Traceback" not in invalid.stderr

    drill = cli("backup", "restore-verify", "b1", **env)
    assert drill.returncode == 1, drill.stdout + drill.stderr
    assert f"FAILED: drill of b1 FAILED: {repo}/{key} has SHA-256" in drill.stderr
    assert f"(report: {repo}/drills/b1/drill_report_" in drill.stderr
    (report_key,) = buckets.keys(buckets.plain, "drills/b1/")
    report = json.loads(buckets.client.get_object(Bucket=buckets.plain, Key=report_key)["Body"].read())
    assert report["status"] == "FAIL"
    as_json = cli("backup", "restore-verify", "b1", "--json", **env)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["report_path"].startswith(f"{repo}/drills/b1/drill_report_"), "s3://, not s3:/"
    assert f"report {repo}/drills/b1/drill_report_" in drill.stdout


def test_every_object_not_as_listed_is_named_by_validate_and_the_drill_report(
    cli: Cli, buckets: Buckets, source_sqlite: str
) -> None:
    repo = f"s3://{buckets.plain}"
    env = {"OPS_ARTIFACTS_DIR": repo, "DATABASE_URL": source_sqlite}
    assert cli("backup", "create", "--name", "b2", **env).returncode == 0
    keys = buckets.keys(buckets.plain, "backups/b2/")
    database = next(k for k in keys if k.endswith(".sqlite3"))
    exports = sorted(k for k in keys if "/exports/" in k)
    assert len(exports) >= 2, keys
    changed, deleted, intact = database, exports[0], exports[-1]
    data = bytearray(buckets.client.get_object(Bucket=buckets.plain, Key=changed)["Body"].read())
    data[5000] ^= 0xFF
    buckets.client.put_object(Bucket=buckets.plain, Key=changed, Body=bytes(data))
    buckets.client.delete_object(Bucket=buckets.plain, Key=deleted)

    invalid = cli("backup", "validate", "b2", **env)
    assert invalid.returncode == 1, invalid.stderr
    assert "(2 problems)" in invalid.stdout, invalid.stdout
    assert f"{repo}/{changed} has SHA-256" in invalid.stdout
    assert f"{repo}/{deleted} is missing from the store" in invalid.stdout
    assert intact.rsplit("/", 1)[-1] not in invalid.stdout, "an intact object is not a problem"

    drill = cli("backup", "restore-verify", "b2", **env)
    assert drill.returncode == 1, drill.stdout + drill.stderr
    assert f"{repo}/{changed} has SHA-256" in drill.stderr and f"{repo}/{deleted} is missing" in drill.stderr
    (report_key,) = buckets.keys(buckets.plain, "drills/b2/")
    report = json.loads(buckets.client.get_object(Bucket=buckets.plain, Key=report_key)["Body"].read())
    text = json.dumps(report)
    assert report["status"] == "FAIL"
    assert f"{repo}/{changed} has SHA-256" in text and f"{repo}/{deleted} is missing from the store" in text
    assert 'is missing"' not in text.replace("from the store", ""), "no file called missing that was refused"


def test_a_drill_report_is_locked_for_the_drills_retain_days(cli: Cli, buckets: Buckets, source_sqlite: str) -> None:
    env = {"OPS_ARTIFACTS_DIR": f"s3://{buckets.locked}", "DATABASE_URL": source_sqlite}
    assert cli("backup", "create", "--name", "b1", "--retain-days", "2", **env).returncode == 0
    drill = cli("backup", "restore-verify", "b1", "--retain-days", "3", "--retention-mode", "COMPLIANCE", **env)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    (report_key,) = buckets.keys(buckets.locked, "drills/b1/")
    head = buckets.client.head_object(Bucket=buckets.locked, Key=report_key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    local = cli("backup", "restore-verify", "elsewhere/manifest.json", "--retain-days", "3", DATABASE_URL=source_sqlite)
    assert local.returncode == 2 and "apply to a backup on s3://" in local.stderr


def test_retention_on_a_bucket_without_object_lock_is_refused(cli: Cli, buckets: Buckets, source_sqlite: str) -> None:
    env = {"OPS_ARTIFACTS_DIR": f"s3://{buckets.plain}", "DATABASE_URL": source_sqlite}
    done = cli("backup", "create", "--name", "b1", "--retain-days", "3", **env)
    assert done.returncode == 2
    assert f"FAILED: retention asked, but bucket '{buckets.plain}' has no Object Lock" in done.stderr
    assert buckets.keys(buckets.plain) == []
    by_setting = cli("backup", "create", "--name", "b1", OPS_RETAIN_DAYS="3", **env)
    assert by_setting.returncode == 2 and buckets.keys(buckets.plain) == []


def test_retention_locks_every_object(cli: Cli, buckets: Buckets, source_sqlite: str) -> None:
    env = {"OPS_ARTIFACTS_DIR": f"s3://{buckets.locked}", "DATABASE_URL": source_sqlite}
    done = cli("backup", "create", "--name", "b1", "--retain-days", "2", "--retention-mode", "COMPLIANCE", **env)
    assert done.returncode == 0, done.stderr
    assert "WARN" not in done.stdout
    keys = buckets.keys(buckets.locked, "backups/b1/")
    assert keys
    for key in keys:
        head = buckets.client.head_object(Bucket=buckets.locked, Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE", key


def test_a_locked_bucket_written_without_retention_is_said_unless_it_locks_by_default(
    cli: Cli, buckets: Buckets, store: Any, source_sqlite: str
) -> None:
    """Object Lock enabled is not objects locked: a write with no retention asked, on a bucket
    with no default retention, says so (a WARN, as a bucket without Object Lock gets); a read
    does not, and neither does a bucket whose default retention locks every new object."""
    env = {"OPS_ARTIFACTS_DIR": f"s3://{buckets.locked}", "DATABASE_URL": source_sqlite}
    said = "has Object Lock, but no retention was asked"
    made = cli("backup", "create", "--name", "b1", **env)
    assert made.returncode == 0, made.stderr
    assert said in made.stdout + made.stderr and "is not locked" in made.stdout + made.stderr
    read = cli("backup", "validate", "b1", **env)
    assert read.returncode == 0 and said not in read.stdout + read.stderr
    default = f"default-{uuid.uuid4().hex[:10]}"
    client = store.client()
    client.create_bucket(Bucket=default, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=default,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    locked_by_default = cli("backup", "create", "--name", "b1", **{**env, "OPS_ARTIFACTS_DIR": f"s3://{default}"})
    assert locked_by_default.returncode == 0, locked_by_default.stderr
    assert said not in locked_by_default.stdout + locked_by_default.stderr


def test_a_missing_bucket_is_exit_2(cli: Cli, source_sqlite: str) -> None:
    env = {"OPS_ARTIFACTS_DIR": f"s3://missing-{uuid.uuid4().hex[:10]}/repo", "DATABASE_URL": source_sqlite}
    for args in (("backup", "create", "--name", "b1"), ("backup", "validate", "b1")):
        done = cli(*args, **env)
        assert done.returncode == 2
        assert "does not exist (or is not on this store)" in done.stderr and "Traceback" not in done.stderr


def test_wrong_credentials_are_exit_2(cli: Cli, buckets: Buckets, store: Any, source_sqlite: str) -> None:
    env = {"OPS_ARTIFACTS_DIR": f"s3://{buckets.plain}", "DATABASE_URL": source_sqlite}
    with store.checking_credentials():
        done = cli("backup", "create", "--name", "b1", **env)
    assert done.returncode == 2 and "refused the credentials" in done.stderr
    assert buckets.keys(buckets.plain) == []


def test_forget_removes_what_the_policy_drops_and_leaves_locked_backups(
    cli: Cli, buckets: Buckets, source_sqlite: str
) -> None:
    env = {"OPS_ARTIFACTS_DIR": f"s3://{buckets.locked}", "DATABASE_URL": source_sqlite}
    assert cli("backup", "create", "--name", "old", **env).returncode == 0
    assert cli("backup", "create", "--name", "locked", "--retain-days", "1", **env).returncode == 0
    assert cli("backup", "create", "--name", "new", **env).returncode == 0

    before = buckets.keys(buckets.locked)
    dry = cli("backup", "forget", "--keep-last", "1", "--dry-run", **env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would remove old" in dry.stdout and "under lock until" in dry.stdout
    assert "2 backups kept, 1 would be removed" in dry.stdout
    assert buckets.keys(buckets.locked) == before

    done = cli("backup", "forget", "--keep-last", "1", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "under lock until" in done.stdout
    assert "removed      old" in done.stdout
    left = {key.split("/")[1] for key in buckets.keys(buckets.locked, "backups/")}
    assert left == {"locked", "new"}
    versions = buckets.client.list_object_versions(Bucket=buckets.locked, Prefix="backups/old/")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")  # every version gone
    assert cli("backup", "validate", "locked", **env).returncode == 0


def test_forget_keeps_the_backup_the_last_go_run_drilled_as_its_drill_report_names_it(
    cli: Cli, buckets: Buckets, source_sqlite: str
) -> None:
    """`aris3nb run drill` picks the newest backup itself (no manifest parameter): the backup it
    drilled is known from its drill report, which forget reads from the bucket — only at a path
    a drill report has (an evidence.json listing another is not followed)."""
    env = {"OPS_ARTIFACTS_DIR": f"s3://{buckets.plain}", "DATABASE_URL": source_sqlite}
    assert cli("backup", "create", "--name", "old", **env).returncode == 0
    assert cli("backup", "create", "--name", "new", **env).returncode == 0
    run = "runs/20261130T090000Z-abc123"
    report, stray = "drill/drill_report_20261130T090001000000Z.json", "drill/drill_report_x/../../../escape.json"
    evidence = {
        "decision": "GO",
        "started_at": "2026-11-30T09:00:00.000Z",
        "phases": [{"phase": "drill", "parameters": {"manifest": None}}],
        "files": [{"path": report}, {"path": stray}],
    }
    put = buckets.client.put_object
    put(Bucket=buckets.plain, Key=f"{run}/evidence.json", Body=json.dumps(evidence).encode())
    put(Bucket=buckets.plain, Key=f"{run}/{report}", Body=json.dumps({"backup": "old", "status": "PASS"}).encode())
    put(Bucket=buckets.plain, Key="backups/half/database/aris3.sqlite3", Body=b"an upload killed part way")
    done = cli("backup", "forget", "--keep-last", "1", "--json", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["partial"] == {"half": 1}, "a folder without manifest is said, left alone"
    decisions = {b["backup"]: b for b in json.loads(done.stdout)["backups"]}
    assert decisions["old"]["keep"] and decisions["old"]["reasons"][0] == (
        "drilled by run 20261130T090000Z-abc123, the last GO run"
    )
    assert {key.split("/")[1] for key in buckets.keys(buckets.plain, "backups/")} == {"old", "new", "half"}
    said = cli("backup", "forget", "--keep-last", "1", **env)
    assert "left alone: backups/half/ holds 1 object but no manifest" in said.stdout, said.stdout


def test_a_killed_uploads_objects_block_its_name_until_stale_then_go(
    cli: Cli, buckets: Buckets, source_sqlite: str, store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup killed part way leaves objects under backups/NAME/ but no manifest (written
    last). The next backup of that name refuses while they are recent (it may be one being
    made), and once they are older than the stale-upload age removes them, says so, and goes."""
    from aris3nb.core.settings import load_settings
    from aris3nb.storage import artifacts
    from aris3nb.storage.s3 import StorageOptions, open_repository

    repo = f"s3://{buckets.plain}/repo"
    for key in ("repo/backups/k1/database/aris3.sqlite3", "repo/backups/k1/exports/a.csv"):
        buckets.client.put_object(Bucket=buckets.plain, Key=key, Body=b"half")
    refused = cli("backup", "create", "--name", "k1", OPS_ARTIFACTS_DIR=repo, DATABASE_URL=source_sqlite)
    assert refused.returncode == 1, refused.stderr
    assert f"{repo}/backups/k1 holds 2 objects but no manifest" in refused.stderr
    assert "a backup being made, or one killed part way" in refused.stderr
    assert len(buckets.keys(buckets.plain, "repo/backups/k1/")) == 2, "left untouched"

    for name, value in store.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(
        artifacts,
        "_open",
        lambda url, settings, **_: open_repository(url, options=StorageOptions(stale_upload_age_sec=0)),
    )
    monkeypatch.setenv("OPS_ARTIFACTS_DIR", repo)
    settings = load_settings()
    result, remote = artifacts.create_remote(settings, source_sqlite, "k1", exports_dir=tmp_path / "exports")
    assert any(
        w.startswith(f"removed the objects of a backup killed part way at {repo}/backups/k1 (2 ")
        for w in remote.repository.warnings
    ), remote.repository.warnings
    keys = buckets.keys(buckets.plain, "repo/backups/k1/")
    assert "repo/backups/k1/manifest.json" in keys and "repo/backups/k1/exports/a.csv" not in keys
    assert result.manifest["name"] == "k1"


def test_a_bucket_backup_is_hashed_by_its_upload_and_one_that_fails_leaves_no_object(
    store: Any, buckets: Buckets, source_sqlite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from aris3nb.backup import create as create_module
    from aris3nb.storage import artifacts

    settings = _in_process(store, buckets, tmp_path, monkeypatch)

    def not_read_here(path: Path) -> tuple[int, str]:
        raise AssertionError(f"{path} was read a second time to be hashed")

    monkeypatch.setattr(create_module, "sha256_file", not_read_here)
    result, _ = artifacts.create_remote(settings, source_sqlite, "once", exports_dir=tmp_path / "exports")
    listed = {entry["path"]: entry["sha256"] for entry in result.manifest["files"]}
    assert any(path.startswith("exports/") for path in listed) and any(p.startswith("database/") for p in listed)
    for path, digest in listed.items():
        body = buckets.client.get_object(Bucket=buckets.plain, Key=f"backups/once/{path}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest, path

    _hung_up_on_the_third_upload(settings, source_sqlite, buckets, tmp_path, monkeypatch)


@pytest.mark.postgres
def test_a_postgresql_backup_goes_up_table_by_table_while_pg_dump_runs(
    store: Any, buckets: Buckets, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each table's data file is uploaded as soon as pg_dump says it has finished it — on the
    backup's publishing thread, while the snapshot goes on, not after it — and its local copy
    removed (pg_dump's table of contents, which it writes first, goes up last, alone on disk by
    then); what the manifest lists is what went up, and the backup validates. (How much of the
    dump the staging folder holds at once depends on the upload's pace against pg_dump's: at a
    test's scale pg_dump is done before the first upload is; bench/s3_vs_local.py measures it.)"""
    import threading

    from aris3nb.storage import artifacts
    from aris3nb.storage.s3 import Repository

    source = _seeded(postgres_url, tmp_path / "exports")
    settings = _in_process(store, buckets, tmp_path, monkeypatch)
    seen: list[tuple[str, str, list[str]]] = []  # (file sent, by which thread, the dump files on disk)
    upload = Repository.upload_file

    def watched(self: Repository, path: Path, key: str) -> tuple[int, str]:
        if "/database/dump/" in key:
            on_disk = sorted(p.name for p in path.parent.iterdir())
            seen.append((path.name, threading.current_thread().name, on_disk))
        return upload(self, path, key)

    monkeypatch.setattr(Repository, "upload_file", watched)
    result, _ = artifacts.create_remote(settings, source, "streamed", exports_dir=tmp_path / "exports")
    tables = [(name, thread) for name, thread, _ in seen if name != "toc.dat"]
    assert len(tables) >= 5 and seen[-1][0] == "toc.dat", seen
    not_streamed = [(name, thread) for name, thread in tables if not (name.endswith(".dat.gz") and "publish" in thread)]
    assert not not_streamed, not_streamed
    assert seen[-1][2] == ["toc.dat"], "each table file was removed once sent"
    listed = {e["path"].rsplit("/", 1)[-1] for e in result.manifest["files"] if e["path"].startswith("database/")}
    assert listed == {name for name, _, _ in seen}
    monkeypatch.setattr(Repository, "upload_file", upload)
    validation, _ = artifacts.validate_remote("streamed", settings)
    assert validation.ok, validation.problems
    _hung_up_on_the_third_upload(settings, source, buckets, tmp_path, monkeypatch)  # while pg_dump runs


@pytest.mark.parametrize("kind", ["plain", "versioned"])
def test_a_failed_bucket_backup_removes_its_own_objects_only_and_says_what_it_could_not(
    store: Any,
    buckets: Buckets,
    source_sqlite: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    """Another writer of the same name meanwhile (a second `backup create` racing this one):
    its objects, and on a versioned bucket its newer version of a key this backup wrote too,
    stay; this backup's own versions go. A removal the store refuses is said on the line."""
    from aris3nb.cli import _common, main
    from aris3nb.storage import artifacts
    from aris3nb.storage.errors import StorageError
    from aris3nb.storage.s3 import Repository

    bucket = buckets.plain if kind == "plain" else buckets.locked
    settings = _in_process(store, buckets, tmp_path, monkeypatch, bucket=bucket)
    sent: list[str] = []
    upload = Repository.upload_file

    def another_writer_then_a_hang_up(self: Repository, path: Path, key: str) -> tuple[int, str]:
        sent.append(key)
        if len(sent) == 3:
            buckets.client.put_object(Bucket=bucket, Key="backups/raced/exports/theirs.csv", Body=b"theirs")
            if kind == "versioned":  # and theirs, newer, of a key this backup wrote
                buckets.client.put_object(Bucket=bucket, Key=sent[0], Body=b"their version")
            raise StorageError("could not upload: the store hung up")
        return upload(self, path, key)

    monkeypatch.setattr(Repository, "upload_file", another_writer_then_a_hang_up)
    with pytest.raises(StorageError, match="hung up") as failed:
        artifacts.create_remote(settings, source_sqlite, "raced", exports_dir=tmp_path / "exports")
    assert not getattr(failed.value, "__notes__", None), "everything it wrote was removed"
    left = buckets.keys(bucket, "backups/raced/")
    if kind == "plain":
        assert left == ["backups/raced/exports/theirs.csv"]
    else:
        assert sorted(left) == sorted(["backups/raced/exports/theirs.csv", sent[0]])
        versions = buckets.client.list_object_versions(Bucket=bucket, Prefix=sent[0]).get("Versions", [])
        assert len(versions) == 1, "this backup's own version went, theirs stayed"
        body = buckets.client.get_object(Bucket=bucket, Key=sent[0])["Body"].read()
        assert body == b"their version"

    sent.clear()

    def refused(self: Repository, written: Any) -> None:
        raise StorageError("could not delete s3://x/y: AccessDenied")

    monkeypatch.setattr(Repository, "delete_versions", refused)
    monkeypatch.setenv("OPS_ARTIFACTS_DIR", f"s3://{bucket}")
    _common.settings.cache_clear()  # the CLI reads its settings once a process: read these
    try:
        with pytest.raises(SystemExit) as exited:
            main(["backup", "create", "--name", "raced2", "--database-url", source_sqlite])
    finally:
        _common.settings.cache_clear()  # nor keep them for the tests after this one
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 1 and len(err) == 1 and err[0].startswith("FAILED: "), err
    assert "the store hung up" in err[0] and "; the 2 objects it uploaded to" in err[0] and "AccessDenied" in err[0]
    assert "the next backup named 'raced2' removes them" in err[0]


def _hung_up_on_the_third_upload(
    settings: Any, source: str, buckets: Buckets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup whose third upload fails: the error is the store's, the files that went up
    before it are removed, and so is the staging folder."""
    from aris3nb.storage import artifacts
    from aris3nb.storage.errors import StorageError
    from aris3nb.storage.s3 import Repository

    sent: list[str] = []
    upload = Repository.upload_file

    def hangs_up_on_the_third(self: Repository, path: Path, key: str) -> tuple[int, str]:
        sent.append(key)
        if len(sent) == 3:
            raise StorageError("could not upload: the store hung up")
        return upload(self, path, key)

    monkeypatch.setattr(Repository, "upload_file", hangs_up_on_the_third)
    with pytest.raises(StorageError, match="hung up"):
        artifacts.create_remote(settings, source, "broken", exports_dir=tmp_path / "exports")
    monkeypatch.setattr(Repository, "upload_file", upload)
    assert len(sent) == 3
    assert buckets.keys(buckets.plain, "backups/broken/") == [], "the files that went up were removed"
    assert not list(tmp_path.glob("aris3nb-*")), "the staging folder was removed"


def _in_process(
    store: Any, buckets: Buckets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, bucket: str | None = None
) -> Any:
    """Settings of a repository on the plain bucket (or ``bucket``), for the library called in
    this process."""
    from aris3nb.core.settings import load_settings

    for name, value in store.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # read once a process: the staging folders land here
    monkeypatch.setenv("ARIS3_EXPORTS_DIR", str(tmp_path / "exports"))
    return load_settings(artifacts={"repository_url": f"s3://{bucket or buckets.plain}"})


def test_a_bucket_restore_that_fails_leaves_no_copy_behind_and_names_the_safety_backup_on_the_bucket(
    store: Any, buckets: Buckets, source_sqlite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused (a backup of another database) or failed after its safety backup: the backup
    pulled for it is not left in the temporary folder, and what the failure names — the safety
    backup to put back — is its copy on the bucket; when that cannot go up, it stays, said."""
    from aris3nb.backup import restore as restore_module
    from aris3nb.core.errors import Aris3nbError, BackupError
    from aris3nb.storage import artifacts
    from aris3nb.storage.errors import StorageError
    from aris3nb.storage.s3 import Repository

    settings = _in_process(store, buckets, tmp_path, monkeypatch)
    artifacts.create_remote(settings, source_sqlite, "b1", exports_dir=tmp_path / "exports")
    other = _seeded(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other-exports")
    with pytest.raises(Aris3nbError, match="another database"):
        artifacts.restore_remote("b1", other, settings, confirmed=True)
    assert not list(tmp_path.glob("aris3nb-*")), "nothing of the refused restore is left locally"

    def fails_after_its_safety_backup(*args: Any, **keywords: Any) -> list[str]:
        raise BackupError("the target went away")

    monkeypatch.setattr(restore_module, "_verify_target", fails_after_its_safety_backup)
    with pytest.raises(BackupError) as failed:
        artifacts.restore_remote("b1", source_sqlite, settings, confirmed=True)
    message = str(failed.value)
    assert f"in the safety backup s3://{buckets.plain}/backups/safety_" in message, message
    assert "/aris3nb-" not in message and not list(tmp_path.glob("aris3nb-*"))
    assert any(k.startswith("backups/safety_") for k in buckets.keys(buckets.plain, "backups/"))

    def store_gone(self: Repository, *args: Any, **keywords: Any) -> Any:
        raise StorageError("could not upload: the store cannot be reached")

    monkeypatch.setattr(Repository, "upload_tree", store_gone)
    with pytest.raises(BackupError) as failed:
        artifacts.restore_remote("b1", source_sqlite, settings, confirmed=True)
    [kept] = list(tmp_path.glob("aris3nb-*"))
    [note] = failed.value.__notes__
    assert f"they are kept locally in {kept}" in note and "the store cannot be reached" in note
    assert str(kept) in str(failed.value), "the message names the safety backup where it is: kept locally"
    assert not (kept / "backups" / "b1").exists(), "the pulled backup is not kept: it is on the bucket"


def test_a_bucket_restore_names_the_backups_copies_on_the_bucket_not_in_staging(
    store: Any, buckets: Buckets, source_sqlite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a restore says it did not put back points at the backup's copies where they stay:
    the staging folder it was pulled into is gone when the command ends."""
    from aris3nb.backup.manifest import manifest_digest
    from aris3nb.storage import artifacts

    settings = _in_process(store, buckets, tmp_path, monkeypatch)
    exports = tmp_path / "exports"
    artifacts.create_remote(settings, source_sqlite, "b1", exports_dir=exports)
    key = "backups/b1/manifest.json"
    document = json.loads(buckets.client.get_object(Bucket=buckets.plain, Key=key)["Body"].read())
    # A target profile's backup records the folder its export files came from (the reference's does not).
    document["exports"] = {"dir": str(exports), "files": len(list(exports.rglob("*.csv")))}
    document["manifest_digest"] = manifest_digest(document)
    buckets.client.put_object(Bucket=buckets.plain, Key=key, Body=json.dumps(document).encode())
    next(exports.rglob("*.csv")).parent.joinpath("written-after-the-backup.csv").write_text("id\n1\n")

    said: list[str] = []
    result, _ = artifacts.restore_remote("b1", source_sqlite, settings, confirmed=True, announce=said.append)
    [warning] = result.warnings
    copies = f"the backup's copies are in s3://{buckets.plain}/backups/b1/exports"
    assert copies in warning and str(tmp_path) + "/aris3nb-" not in warning
    assert any(copies in line for line in said) and not any("/aris3nb-" in line for line in said)
    log = buckets.client.get_object(Bucket=buckets.plain, Key="rollback_log.jsonl")["Body"].read().decode()
    assert copies in log and "/aris3nb-" not in log
