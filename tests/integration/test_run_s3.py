"""``aris3nb run --out s3://...`` and ``aris3nb evidence verify s3://...`` through the installed
command, against moto's S3 server over real HTTP on loopback (the real boto3 client), on the
embedded default: a whole run pushed and verified from the bucket (one run shared by the
module, it costs ~20 s), a second run chained to it, a byte changed in an object, the newest
run deleted, a push that fails (the staging folder is kept and named), bad input (exit 2 before
the run starts), and the secret key in no file, output or object."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import s3server
from s3server import Cli

from aris3nb.core.errors import EvidenceInvalid
from aris3nb.core.settings import load_settings
from aris3nb.storage import head_document, open_repository
from aris3nb.storage.runs import RunStaging

SECRET = s3server.SECRET_ACCESS_KEY


@dataclass
class Bucket:
    client: Any
    name: str

    @property
    def url(self) -> str:
        return f"s3://{self.name}/evidence"

    def keys(self, prefix: str = "evidence/") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run_s3")


@pytest.fixture(scope="module")
def cli(store: Any, module_dir: Path) -> Iterator[Cli]:
    """Only this store's AWS variables (no profile or config file of the machine); staging
    folders land in the module's own TMPDIR. Afterwards: the secret key in no output and in no
    file of the module's folders."""
    temp = module_dir / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPS_"))}
    env.update(store.environment())
    env.update(
        {
            "AWS_CONFIG_FILE": str(module_dir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(module_dir / "no-aws-credentials"),
            "TMPDIR": str(temp),
            "OPS_ARTIFACTS_DIR": str(module_dir / "local-artifacts"),
        }
    )
    work = module_dir / "work"
    work.mkdir()
    running = Cli(env, work, temp)
    yield running
    for text in running.outputs:
        assert SECRET not in text
    for path in module_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), f"the secret key is in {path}"


def _bucket(store: Any, *, locked: bool = True) -> Bucket:
    client = store.client()
    name = f"runs-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if locked else {}))
    return Bucket(client, name)


@pytest.fixture(scope="module")
def bucket(store: Any) -> Bucket:
    return _bucket(store)


def _run_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def first(cli: Cli, bucket: Bucket) -> dict[str, Any]:
    """The module's one whole run of the embedded default, pushed with retention. Its latency
    checks sample as little as they can (inconclusive, a warning): what is judged here is the
    bucket's copy, which holds their charts and summaries all the same."""
    return _run_json(
        cli(
            "run",
            "--out",
            bucket.url,
            "--retain-days",
            "1",
            "--json",
            OPS_GATE_LATENCY_SAMPLES="1",
            OPS_GATE_LATENCY_WARMUP="0",
        )
    )


@pytest.fixture(scope="module")
def second(cli: Cli, bucket: Bucket, first: dict[str, Any]) -> dict[str, Any]:
    """The module's second run, chained to the first: its deploy phase alone (a backup of its own
    on the bucket too). What the tests read of it is the chain, the head and the objects, which a
    run of one phase writes as a run of four does (the first run is the whole playbook)."""
    return _run_json(cli("run", "deploy", "--out", bucket.url, "--json"))


def _head(bucket: Bucket) -> dict[str, Any]:
    return dict(json.loads(bucket.read("evidence/runs/HEAD.json")))


def test_a_whole_run_is_pushed_and_verifies_from_the_bucket(cli: Cli, bucket: Bucket, first: dict[str, Any]) -> None:
    run_id = first["run_id"]
    assert first["decision"] == "GO"
    assert first["bundle"] == f"{bucket.url}/runs/{run_id}"
    assert first["evidence"] == f"{bucket.url}/runs/{run_id}/evidence.json"
    assert first["index"] == f"{bucket.url}/index.html"
    keys = bucket.keys()
    evidence = json.loads(bucket.read(f"evidence/runs/{run_id}/evidence.json"))
    for entry in evidence["files"]:
        assert f"evidence/runs/{run_id}/{entry['path']}" in keys
    head = _head(bucket)
    assert head["run_id"] == run_id
    assert head["digest"] == evidence_digest(bucket, run_id)
    # The drill's backup (and its report) went to the bucket's backups/, manifest and all.
    backup = next(p["parameters"]["backup_name"] for p in evidence["phases"] if p["phase"] == "deploy")
    assert f"evidence/backups/{backup}/manifest.json" in keys
    assert any(key.startswith(f"evidence/drills/{backup}/drill_report_") for key in keys)
    report_key = next(k for k in keys if k.startswith(f"evidence/runs/{run_id}/drill/drill_report_"))
    drilled = json.loads(bucket.read(report_key))["manifest"]
    assert drilled == f"{bucket.url}/backups/{backup}/manifest.json", "the backup named where it stays"
    assert run_id in bucket.read("evidence/index.html").decode()
    # Every object of the run is locked as asked; the staging folder is gone.
    held = bucket.client.head_object(Bucket=bucket.name, Key=f"evidence/runs/{run_id}/evidence.json")
    assert held["ObjectLockMode"] == "GOVERNANCE"
    assert cli.staging_folders() == []

    chain = cli("evidence", "verify", f"{bucket.url}/runs")
    assert chain.returncode == 0, chain.stdout + chain.stderr
    assert f"chain of 1 run in {bucket.url}/runs" in chain.stdout
    assert f"HEAD.json names run {run_id}" in chain.stdout
    assert "(the store's head below anchors it: its newest version is locked)" in chain.stdout
    # Unsigned, linked by no later run, but its digest is in a head version nobody can remove:
    # protected, so neither "UNPROTECTED" nor its warning (which --strict would fail on).
    assert "UNPROTECTED" not in chain.stdout and "protected by nothing" not in chain.stdout + chain.stderr
    assert cli("evidence", "verify", f"{bucket.url}/runs", "--strict").returncode == 0
    one = cli("evidence", "verify", f"{bucket.url}/runs/{run_id}", "--json")
    assert one.returncode == 0, one.stdout + one.stderr
    assert json.loads(one.stdout)["passed"] is True and json.loads(one.stdout)["unprotected"] is None
    assert cli.staging_folders() == []


def evidence_digest(bucket: Bucket, run_id: str) -> str:
    return "sha256:" + hashlib.sha256(bucket.read(f"evidence/runs/{run_id}/evidence.json")).hexdigest()


def test_a_second_run_chains_to_the_first(
    cli: Cli, bucket: Bucket, first: dict[str, Any], second: dict[str, Any]
) -> None:
    evidence = json.loads(bucket.read(f"evidence/runs/{second['run_id']}/evidence.json"))
    assert evidence["previous"] == {"run_id": first["run_id"], "digest": evidence_digest(bucket, first["run_id"])}
    assert _head(bucket)["run_id"] == second["run_id"]
    # Both runs' deploy backups are on the bucket, under names of their own.
    assert len({key.split("/")[2] for key in bucket.keys("evidence/backups/")}) == 2
    chain = cli("evidence", "verify", bucket.url)
    assert chain.returncode == 0, chain.stdout + chain.stderr
    assert "chain of 2 runs" in chain.stdout and "2 versions checked" in chain.stdout
    # The second run was pushed without retention: on a bucket with Object Lock its head
    # version is no anchor, and verify never says it is.
    assert "anchors it" not in chain.stdout and "its newest version carries no retention" in chain.stdout
    assert "UNPROTECTED" in chain.stdout, "an unlocked head protects the newest unsigned run from nothing"


def test_a_byte_changed_in_an_object_fails_verify_naming_it(
    cli: Cli, bucket: Bucket, first: dict[str, Any], second: dict[str, Any]
) -> None:
    key = f"evidence/runs/{first['run_id']}/02-deploy.html"
    original = bucket.read(key)
    changed = bucket.client.put_object(Bucket=bucket.name, Key=key, Body=original[:-2] + b"X" + original[-1:])
    try:
        chain = cli("evidence", "verify", f"{bucket.url}/runs")
        one = cli("evidence", "verify", f"{bucket.url}/runs/{first['run_id']}")
    finally:  # the changed version goes; the locked original is the object again
        bucket.client.delete_object(Bucket=bucket.name, Key=key, VersionId=changed["VersionId"])
    for done in (chain, one):
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"s3://{bucket.name}/{key} on the store is" in done.stdout
        assert "the object was changed" in done.stdout
    assert cli("evidence", "verify", f"{bucket.url}/runs").returncode == 0


def test_the_newest_run_deleted_fails_the_chain_and_the_next_run(
    cli: Cli, bucket: Bucket, second: dict[str, Any]
) -> None:
    newest = second["run_id"]
    markers = [
        (key, bucket.client.delete_object(Bucket=bucket.name, Key=key)["VersionId"])
        for key in bucket.keys(f"evidence/runs/{newest}/")
    ]
    try:
        chain = cli("evidence", "verify", f"{bucket.url}/runs")
        refused = cli("run", "--out", bucket.url)
    finally:
        for key, marker in markers:
            bucket.client.delete_object(Bucket=bucket.name, Key=key, VersionId=marker)
    assert chain.returncode == 1, chain.stdout + chain.stderr
    assert f"the head names run {newest} as the newest, but run {newest} is missing" in chain.stdout
    assert refused.returncode == 1
    assert refused.stderr.startswith("FAILED: ") and len(refused.stderr.strip().splitlines()) == 1
    assert f"the head names run {newest} as the newest, but it is missing" in refused.stderr
    assert "nothing was run" in refused.stderr
    assert cli.staging_folders() == []


def test_a_run_replaced_with_its_head_rewritten_to_match_fails_verify_and_the_next_run(
    cli: Cli, bucket: Bucket, second: dict[str, Any]
) -> None:
    """The forgery a writer without delete rights can make on a locked bucket: a new version of
    a run's evidence.json (its verdict changed) and a new head version recording its digest.
    The first head version naming the run still holds the true digest: FAIL, and no run starts."""
    newest = second["run_id"]
    key = f"evidence/runs/{newest}/evidence.json"
    document = json.loads(bucket.read(key))
    document.update(verdict="PASS", decision="GO", exit_code=0)
    forged = json.dumps(document).encode()
    added = [
        (key, bucket.client.put_object(Bucket=bucket.name, Key=key, Body=forged)["VersionId"]),
        (
            "evidence/runs/HEAD.json",
            bucket.client.put_object(
                Bucket=bucket.name,
                Key="evidence/runs/HEAD.json",
                Body=head_document(newest, f"sha256:{hashlib.sha256(forged).hexdigest()}"),
            )["VersionId"],
        ),
    ]
    try:
        chain = cli("evidence", "verify", f"{bucket.url}/runs")
        one = cli("evidence", "verify", f"{bucket.url}/runs/{newest}")
        one_json = cli("evidence", "verify", f"{bucket.url}/runs/{newest}", "--json")
        refused = cli("run", "--out", bucket.url)
    finally:
        for name, version in added:
            bucket.client.delete_object(Bucket=bucket.name, Key=name, VersionId=version)
    assert chain.returncode == 1, chain.stdout + chain.stderr
    assert f"run {newest} was replaced and the head rewritten" in chain.stdout
    # The run's own check reads the head's history too: no VALID for the forged run alone.
    assert one.returncode == 1, one.stdout + one.stderr
    assert f"run {newest} was replaced and the head rewritten" in one.stdout
    assert one_json.returncode == 1 and json.loads(one_json.stdout)["passed"] is False
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"run {newest} was replaced and the head rewritten" in refused.stderr and "nothing was run" in refused.stderr


def test_a_run_pushed_without_its_head_is_taken_as_the_newest(
    store: Any, bucket: Bucket, first: dict[str, Any], second: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push cut short after evidence.json and before the head: the next run links to that run
    (it links to the head's run), and says so; a run that does not link to the head's run is refused."""
    other = _bucket(store, locked=False)
    for run in (first, second):
        source = f"evidence/runs/{run['run_id']}/evidence.json"
        other.client.copy_object(Bucket=other.name, Key=source, CopySource={"Bucket": bucket.name, "Key": source})
    head = head_document(first["run_id"], evidence_digest(bucket, first["run_id"]))
    other.client.put_object(Bucket=other.name, Key="evidence/runs/HEAD.json", Body=head)
    for name, value in {**store.environment(), "AWS_CONFIG_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OPS_RETAIN_DAYS", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    repository = open_repository(other.url)
    with RunStaging(repository, load_settings()) as staged:
        assert staged.previous == (second["run_id"], evidence_digest(bucket, second["run_id"]))
        assert any("the head was not moved to it" in warning for warning in staged.warnings)
        folder = staged.folder
    assert not folder.exists()  # nothing was run: nothing kept
    orphan = "29990101T000000Z-abcdef"
    other.client.put_object(Bucket=other.name, Key=f"evidence/runs/{orphan}/evidence.json", Body=b"{}")
    with pytest.raises(EvidenceInvalid, match=f"run {orphan} is later than the head's run"):
        RunStaging(repository, load_settings()).__enter__()


def test_a_failed_push_keeps_the_staging_folder_and_names_it(cli: Cli, store: Any) -> None:
    """The bucket is removed while the run runs: the push fails (exit 1) in one line naming the
    kept staging folder, which holds the sealed run."""
    doomed = _bucket(store, locked=False)

    def remove_the_bucket_once_the_run_is_sealed() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(cli.temp.glob("aris3nb-*/runs/*/evidence.json")):
            time.sleep(0.05)
        doomed.client.delete_bucket(Bucket=doomed.name)

    remover = threading.Thread(target=remove_the_bucket_once_the_run_is_sealed, daemon=True)
    remover.start()
    # What the phase judges is no part of this test: its latency checks sample as little as they can.
    done = cli("run", "pre_deploy", "--out", doomed.url, OPS_GATE_LATENCY_SAMPLES="1", OPS_GATE_LATENCY_WARMUP="0")
    remover.join(timeout=10)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("FAILED: ") and "does not exist" in lines[-1]
    kept = cli.staging_folders()
    assert len(kept) == 1 and f"kept locally in {kept[0]}" in lines[-1]
    sealed = list(kept[0].glob("runs/*/evidence.json"))
    assert len(sealed) == 1
    verified = cli("evidence", "verify", str(sealed[0].parent))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shutil.rmtree(kept[0])


@pytest.mark.parametrize(
    "case",
    ["missing bucket", "missing bucket in OPS_ARTIFACTS_DIR", "wrong credentials", "retention without Object Lock"],
)
def test_bad_input_is_exit_2_in_one_line_before_the_run_starts(cli: Cli, store: Any, case: str) -> None:
    plain = _bucket(store, locked=False)
    started = time.monotonic()
    if case == "missing bucket":
        done = cli("run", "--out", f"s3://no-such-{uuid.uuid4().hex[:8]}/x")
        expected = "does not exist"
    elif case == "missing bucket in OPS_ARTIFACTS_DIR":  # the run takes its place from there too
        done = cli("run", OPS_ARTIFACTS_DIR=f"s3://no-such-{uuid.uuid4().hex[:8]}/x")
        expected = "does not exist"
    elif case == "wrong credentials":
        with store.checking_credentials():
            done = cli("run", "--out", plain.url, AWS_SECRET_ACCESS_KEY="not-the-key", AWS_ACCESS_KEY_ID="AKIAWRONG")
        expected = "refused the credentials"
    else:
        done = cli("run", "--out", plain.url, "--retain-days", "3")
        expected = "has no Object Lock"
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("FAILED: ")
    assert expected in done.stderr
    assert time.monotonic() - started < 30  # refused before any phase ran
    assert plain.keys("") == []
    assert cli.staging_folders() == []


def test_verify_of_a_missing_bucket_or_an_empty_one_is_exit_2(cli: Cli, store: Any) -> None:
    empty = _bucket(store, locked=False)
    for url in (f"s3://no-such-{uuid.uuid4().hex[:8]}/runs", f"{empty.url}/runs"):
        done = cli("evidence", "verify", url)
        assert done.returncode == 2, done.stdout + done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("FAILED: ")


def test_no_credential_on_the_store(bucket: Bucket, second: dict[str, Any]) -> None:
    keys = bucket.keys("")
    assert keys
    for key in keys:
        assert SECRET.encode() not in bucket.read(key), key


def test_a_real_targets_gate_judges_its_backups_and_drills_on_the_bucket(
    cli: Cli, store: Any, module_dir: Path
) -> None:
    """A target released before with its backup and drill on the bucket: its run's gate judges
    them as it would a local artifacts folder's — the backup made from the target and drilled
    PASSes backup.freshness and drill.freshness; a newer backup whose dump was damaged on the
    store is passed over by name, never taken as valid; a bucket that holds neither FAILs both."""
    from aris3nb import migrate
    from aris3nb.reference.seed import seed_database

    url = f"sqlite:///{module_dir / 'shop.db'}"
    exports = module_dir / "shop-exports"
    migrate.upgrade(url)
    seed_database(url, scale=300, exports_dir=exports)
    released, empty = _bucket(store), _bucket(store)
    env = {"OPS_ARTIFACTS_DIR": released.url, "ARIS3_EXPORTS_DIR": str(exports), "OPS_ENABLE_BACKUP_DRILL": "true"}
    for args in (
        ("backup", "create", "--database-url", url, "--name", "released"),
        ("backup", "restore-verify", f"{released.url}/backups/released", "--database-url", url),
        ("backup", "create", "--database-url", url, "--name", "damaged"),
    ):
        done = cli(*args, **env)
        assert done.returncode == 0, (args, done.stdout + done.stderr)
    dump = next(k for k in released.keys("evidence/backups/damaged/") if not k.endswith("manifest.json"))
    body = bytearray(released.read(dump))
    body[len(body) // 2] ^= 1
    released.client.put_object(Bucket=released.name, Key=dump, Body=bytes(body))

    def gate_checks(bucket: Bucket) -> dict[str, dict[str, Any]]:
        done = cli("run", "pre_deploy", "--database-url", url, "--out", bucket.url, "--json", **gate_env)
        run_id = json.loads(done.stdout)["run_id"]
        key = next(k for k in bucket.keys(f"evidence/runs/{run_id}/pre_deploy/") if "/gate_summary_" in k)
        return {check["name"]: check for check in json.loads(bucket.read(key))["checks"]}

    # The freshness checks are what is judged here: the latency checks sample as little as they
    # can (their verdict, inconclusive, is no part of this test's).
    gate_env = {"ARIS3_EXPORTS_DIR": str(exports), "OPS_GATE_LATENCY_SAMPLES": "1", "OPS_GATE_LATENCY_WARMUP": "0"}
    checks = gate_checks(released)
    assert checks["backup.freshness"]["status"] == "WARN", checks["backup.freshness"]  # the damaged one is newer
    assert "newest valid backup released " in checks["backup.freshness"]["detail"]
    assert "damaged" in json.dumps(checks["backup.freshness"]["evidence"]), "the damaged newer backup is named"
    assert checks["drill.freshness"]["status"] == "PASS", checks["drill.freshness"]
    assert "of backup released" in checks["drill.freshness"]["detail"]
    nothing = gate_checks(empty)
    assert nothing["backup.freshness"]["status"] == "FAIL" and nothing["drill.freshness"]["status"] == "FAIL"


def test_the_second_run_on_the_bucket_does_not_take_its_link_stub_for_a_broken_run(second: dict[str, Any]) -> None:
    """The staging folder holds only the previous run's evidence.json (the link): the seal's check
    that the previous run still verifies is for a local chain; on the bucket the push verifies."""
    assert not [w for w in second["warnings"] if "does not verify" in w], second["warnings"]
