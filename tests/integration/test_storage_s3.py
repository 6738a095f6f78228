"""Repositories on object storage (aris3nb.storage) against moto's S3 server over real HTTP on
loopback: no mock of boto3. Each test gets its own buckets (one with Object Lock, one plain)."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import s3server
from botocore.exceptions import ClientError

from aris3nb.core.files import sha256_file
from aris3nb.storage import (
    ObjectCorrupt,
    ObjectMissing,
    Repository,
    RepositoryUnusable,
    StorageError,
    StorageOptions,
    check_head,
    head_document,
    open_repository,
)

MiB = 1024 * 1024
RUN_A = "20250101T120000Z-aaaaaa"
RUN_B = "20250102T120000Z-bbbbbb"


SECRET = s3server.SECRET_ACCESS_KEY


@pytest.fixture(autouse=True)
def aws_environment(store: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Only this store's variables: no profile, config file or credentials file of the machine."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name, value in store.environment().items():
        monkeypatch.setenv(name, value)
    return store


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The secret key appears in no log record of any test (botocore's debug output included)."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert SECRET not in record.getMessage(), f"secret in a log record of {record.name}"


def assert_no_secret(exc: BaseException) -> None:
    """Neither the message nor anything it was raised from holds the secret key."""
    seen: BaseException | None = exc
    while seen is not None:
        assert SECRET not in str(seen) and SECRET not in repr(seen)
        seen = seen.__cause__ or seen.__context__


@dataclass
class Buckets:
    client: Any
    locked: str
    plain: str

    def keys(self, bucket: str) -> list[str]:
        return [o["Key"] for o in self.client.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture
def buckets(store: Any) -> Buckets:
    client = store.client()
    suffix = uuid.uuid4().hex[:10]
    made = Buckets(client, locked=f"locked-{suffix}", plain=f"plain-{suffix}")
    client.create_bucket(Bucket=made.locked, ObjectLockEnabledForBucket=True)
    client.create_bucket(Bucket=made.plain)
    return made


def make_tree(root: Path) -> dict[str, tuple[int, str]]:
    """A backup-like folder: a 12 MiB file (multipart), small files, an empty one, a manifest."""
    root.mkdir()
    (root / "tables").mkdir()
    (root / "tables" / "deep").mkdir()
    (root / "big.bin").write_bytes(os.urandom(12 * MiB))
    (root / "tables" / "sales.csv").write_text("id,total\n1,10.00\n2,12.50\n")
    (root / "tables" / "deep" / "stock.csv").write_text("sku,qty\nA-1,4\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "manifest.json").write_text('{"format": "aris3nb.backup.manifest"}\n')
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in root.rglob("*") if p.is_file()}


def record_writes(repository: Repository) -> list[tuple[str, str]]:
    """(operation, key) of every object write the repository's client makes, in order."""
    calls: list[tuple[str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, params["Key"]))

    for operation in ("PutObject", "CreateMultipartUpload", "CompleteMultipartUpload"):
        repository.client.meta.events.register(f"before-parameter-build.s3.{operation}", record)
    return calls


# -- trees ------------------------------------------------------------------------------------


def test_a_tree_goes_up_and_comes_back_identical(buckets: Buckets, tmp_path: Path) -> None:
    local = make_tree(tmp_path / "backup")
    repository = open_repository(f"s3://{buckets.plain}/repo")
    writes = record_writes(repository)

    sent = repository.upload_tree(tmp_path / "backup", "backups/b1", last=["manifest.json"])

    assert sent == local
    assert ("CreateMultipartUpload", "repo/backups/b1/big.bin") in writes  # 12 MiB > the 8 MiB threshold
    assert ("PutObject", "repo/backups/b1/big.bin") not in writes
    completed = [key for operation, key in writes if operation != "CreateMultipartUpload"]
    assert completed[-1] == "repo/backups/b1/manifest.json"
    assert sorted(completed) == sorted(f"repo/backups/b1/{name}" for name in local)
    assert repository.list_keys("backups/b1/") == sorted(f"backups/b1/{name}" for name in local)

    got = repository.download_tree("backups/b1", tmp_path / "restored", expected=local)

    assert got == local
    for name in local:
        assert (tmp_path / "restored" / name).read_bytes() == (tmp_path / "backup" / name).read_bytes()
    assert not list((tmp_path / "restored").rglob("*.part"))


def test_delete_tree_removes_every_version_the_chosen_keys_first(buckets: Buckets, tmp_path: Path) -> None:
    """A versioned bucket: two versions of a file, a delete marker; all go, the manifest first,
    and nothing outside the folder (b10 shares b1's text prefix but is another folder)."""
    buckets.client.put_bucket_versioning(Bucket=buckets.plain, VersioningConfiguration={"Status": "Enabled"})
    make_tree(tmp_path / "backup")
    repository = open_repository(f"s3://{buckets.plain}/repo")
    repository.upload_tree(tmp_path / "backup", "backups/b1", last=["manifest.json"])
    repository.upload_tree(tmp_path / "backup", "backups/b10", last=["manifest.json"])
    buckets.client.put_object(Bucket=buckets.plain, Key="repo/backups/b1/empty.txt", Body=b"again")
    buckets.client.delete_object(Bucket=buckets.plain, Key="repo/backups/b1/tables/sales.csv")
    deleted: list[str] = []
    repository.client.meta.events.register(
        "before-parameter-build.s3.DeleteObject", lambda params, **_: deleted.append(params["Key"])
    )

    removed = repository.delete_tree("backups/b1/", first=lambda key: key.endswith("/manifest.json"))

    assert removed == 7 == len(deleted), "5 objects, a second version of one, a delete marker"
    assert deleted[0] == "repo/backups/b1/manifest.json"
    versions = buckets.client.list_object_versions(Bucket=buckets.plain, Prefix="repo/backups/b1/")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")
    assert len(repository.list_keys("backups/b10/")) == 5


@pytest.mark.parametrize("change", ["same size", "longer"])
def test_an_object_changed_on_the_store_fails_its_download(buckets: Buckets, tmp_path: Path, change: str) -> None:
    local = make_tree(tmp_path / "backup")
    repository = open_repository(f"s3://{buckets.plain}/repo")
    repository.upload_tree(tmp_path / "backup", "backups/b1", last=["manifest.json"])
    original = (tmp_path / "backup" / "tables" / "sales.csv").read_bytes()
    altered = original.replace(b"12.50", b"99.50") if change == "same size" else original + b"3,1.00\n"
    buckets.client.put_object(Bucket=buckets.plain, Key="repo/backups/b1/tables/sales.csv", Body=altered)

    with pytest.raises(ObjectCorrupt) as caught:
        repository.download_tree("backups/b1", tmp_path / "restored", expected=local)

    url = f"s3://{buckets.plain}/repo/backups/b1/tables/sales.csv"
    assert caught.value.url == url and url in str(caught.value)
    assert caught.value.exit_code == 1
    assert not (tmp_path / "restored" / "tables" / "sales.csv").exists()
    assert not list(tmp_path.rglob("*.part"))
    assert_no_secret(caught.value)


def test_an_expected_object_missing_from_the_store_is_named(buckets: Buckets, tmp_path: Path) -> None:
    local = make_tree(tmp_path / "backup")
    repository = open_repository(f"s3://{buckets.plain}")
    repository.upload_tree(tmp_path / "backup", "b1", last=["manifest.json"])
    buckets.client.delete_object(Bucket=buckets.plain, Key="b1/tables/deep/stock.csv")

    with pytest.raises(ObjectMissing) as caught:
        repository.download_tree("b1", tmp_path / "restored", expected=local)

    assert f"s3://{buckets.plain}/b1/tables/deep/stock.csv is missing" in str(caught.value)


def test_an_upload_is_refused_before_anything_is_sent(buckets: Buckets, tmp_path: Path) -> None:
    make_tree(tmp_path / "backup")
    repository = open_repository(f"s3://{buckets.plain}")
    with pytest.raises(StorageError, match="'missing.json', to be uploaded last, is not a regular file"):
        repository.upload_tree(tmp_path / "backup", "b1", last=["missing.json"])
    (tmp_path / "backup" / "link").symlink_to(tmp_path / "backup" / "empty.txt")
    with pytest.raises(StorageError, match="is a symbolic link"):
        repository.upload_tree(tmp_path / "backup", "b1", last=["manifest.json"])
    assert buckets.keys(buckets.plain) == []

    (tmp_path / "backup" / "link").unlink()
    repository.upload_tree(tmp_path / "backup", "b1", last=["manifest.json"])
    with pytest.raises(StorageError, match="already holds objects"):
        repository.upload_tree(tmp_path / "backup", "b1", last=["manifest.json"])


def test_small_objects_read_list_and_exist(buckets: Buckets, tmp_path: Path) -> None:
    make_tree(tmp_path / "backup")
    repository = open_repository(f"s3://{buckets.plain}/repo/")
    repository.upload_tree(tmp_path / "backup", "backups/b1", last=["manifest.json"])
    repository.upload_tree(tmp_path / "backup", "backups/b2", last=["manifest.json"])

    assert repository.read_bytes("backups/b1/manifest.json") == b'{"format": "aris3nb.backup.manifest"}\n'
    assert repository.exists("backups/b1/manifest.json") and not repository.exists("backups/b3/manifest.json")
    assert repository.list_folders("backups/") == ["b1", "b2"]
    with pytest.raises(ObjectMissing) as caught:
        repository.read_bytes("backups/b3/manifest.json")
    assert caught.value.url == f"s3://{buckets.plain}/repo/backups/b3/manifest.json"
    with pytest.raises(StorageError, match="more than 100 to read"):
        repository.read_bytes("backups/b1/big.bin", max_bytes=100)


def test_a_store_failure_after_open_is_one_storage_error_line(buckets: Buckets, tmp_path: Path) -> None:
    make_tree(tmp_path / "backup")
    repository = open_repository(f"s3://{buckets.plain}/repo")
    buckets.client.delete_bucket(Bucket=buckets.plain)

    with pytest.raises(StorageError) as caught:
        repository.upload_tree(tmp_path / "backup", "backups/b1", last=["manifest.json"])

    message = str(caught.value)
    assert message == (f"could not list s3://{buckets.plain}/repo/backups/b1/: bucket '{buckets.plain}' does not exist")
    assert caught.value.exit_code == 1
    with pytest.raises(StorageError, match=f"could not write s3://{buckets.plain}/repo/runs/HEAD.json: bucket"):
        repository.put_head("runs/HEAD.json", b"{}")
    assert_no_secret(caught.value)


# -- retention --------------------------------------------------------------------------------


def test_retention_locks_every_object_and_refuses_their_deletion(buckets: Buckets, tmp_path: Path) -> None:
    local = make_tree(tmp_path / "backup")
    repository = open_repository(f"s3://{buckets.locked}/repo", retain_days=3, mode="GOVERNANCE")
    assert repository.locked and repository.versioned and repository.warnings == []

    repository.upload_tree(tmp_path / "backup", "backups/b1", last=["manifest.json"])

    soon, late = datetime.now(UTC) + timedelta(days=3, minutes=-5), datetime.now(UTC) + timedelta(days=3, minutes=5)
    for name in local:
        retention = repository.retention_of(f"backups/b1/{name}")
        assert retention is not None, name
        mode, until = retention
        assert mode == "GOVERNANCE" and soon < until < late, (name, retention)
    version = buckets.client.head_object(Bucket=buckets.locked, Key="repo/backups/b1/manifest.json")["VersionId"]
    with pytest.raises(ClientError) as refused:
        buckets.client.delete_object(Bucket=buckets.locked, Key="repo/backups/b1/manifest.json", VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert repository.exists("backups/b1/manifest.json")


def test_retention_on_a_bucket_without_object_lock_is_refused_before_writing(buckets: Buckets) -> None:
    with pytest.raises(RepositoryUnusable) as caught:
        open_repository(f"s3://{buckets.plain}/repo", retain_days=7)

    assert str(caught.value).startswith(f"retention asked, but bucket '{buckets.plain}' has no Object Lock")
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    assert buckets.keys(buckets.plain) == []
    assert buckets.client.list_multipart_uploads(Bucket=buckets.plain).get("Uploads", []) == []


def test_without_retention_a_plain_bucket_opens_with_warnings(buckets: Buckets) -> None:
    repository = open_repository(f"s3://{buckets.plain}")
    assert not repository.locked and not repository.versioned
    assert any("has no Object Lock" in w for w in repository.warnings)
    assert repository.retention_of("anything") is None


# -- refusals at open -------------------------------------------------------------------------


def test_a_missing_bucket_is_a_usage_error(buckets: Buckets) -> None:
    with pytest.raises(RepositoryUnusable) as caught:
        open_repository("s3://no-such-bucket-4711/repo")
    assert str(caught.value).startswith("bucket 'no-such-bucket-4711' does not exist")
    assert caught.value.exit_code == 2
    assert_no_secret(caught.value)


def test_an_unreachable_endpoint_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, buckets: Buckets) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on (bound, then released)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")

    with pytest.raises(RepositoryUnusable) as caught:
        open_repository(f"s3://{buckets.plain}", options=StorageOptions(max_attempts=2))

    message = str(caught.value)
    assert message.startswith(f"cannot use bucket '{buckets.plain}': the store cannot be reached")
    assert "check AWS_ENDPOINT_URL" in message and str(port) not in message
    assert_no_secret(caught.value)


def test_credentials_the_store_refuses_are_named_by_code_not_value(
    store: Any, buckets: Buckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto accepts any credentials by default; its IAM check (``checking_credentials``) is on
    here, so it refuses an unknown key (InvalidAccessKeyId) and a wrong secret for a key it
    issued (SignatureDoesNotMatch)."""
    iam = store.client("iam")
    user = f"aris3nb-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    issued = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    cases = [("AKIAUNKNOWNKEY000001", "InvalidAccessKeyId"), (issued, "SignatureDoesNotMatch")]
    with store.checking_credentials():
        for access_key, code in cases:
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
            with pytest.raises(RepositoryUnusable) as caught:
                open_repository(f"s3://{buckets.plain}")
            message = str(caught.value)
            assert message == f"cannot use bucket '{buckets.plain}': the store refused the credentials ({code})"
            assert access_key not in message
            assert_no_secret(caught.value)


# -- incomplete uploads -----------------------------------------------------------------------


def test_an_interrupted_multipart_upload_is_aborted_and_never_visible(buckets: Buckets) -> None:
    client = buckets.client
    started = client.create_multipart_upload(Bucket=buckets.plain, Key="repo/backups/b9/big.bin")
    client.upload_part(
        Bucket=buckets.plain, Key="repo/backups/b9/big.bin", UploadId=started["UploadId"], PartNumber=1, Body=b"x" * MiB
    )  # and never completed: the process was killed

    # Not at open: moto dates every incomplete upload 2010-11-10, so any age limit would take it.
    repository = open_repository(f"s3://{buckets.plain}/repo", options=StorageOptions(stale_upload_age_sec=None))
    assert not repository.exists("backups/b9/big.bin") and repository.list_keys() == []

    assert repository.abort_stale_uploads("backups/", older_than_sec=0) == ["backups/b9/big.bin"]

    assert client.list_multipart_uploads(Bucket=buckets.plain).get("Uploads", []) == []
    assert buckets.keys(buckets.plain) == []


def test_open_aborts_stale_uploads(buckets: Buckets) -> None:
    buckets.client.create_multipart_upload(Bucket=buckets.plain, Key="repo/runs/r1/evidence.json")
    repository = open_repository(f"s3://{buckets.plain}/repo", options=StorageOptions(stale_upload_age_sec=0))
    assert repository.aborted_at_open == ["runs/r1/evidence.json"]


# -- the chain head ---------------------------------------------------------------------------


def _seal_run(repository: Repository, tmp_path: Path, run_id: str) -> str:
    """Upload a run folder (evidence.json last) and return its evidence digest."""
    folder = tmp_path / run_id
    folder.mkdir()
    (folder / "report.html").write_text(f"<p>run {run_id}</p>")
    (folder / "evidence.json").write_text(f'{{"run_id": "{run_id}"}}\n')
    sent = repository.upload_tree(folder, f"runs/{run_id}", last=["evidence.json"])
    return "sha256:" + sent["evidence.json"][1]


def _remaining_runs(repository: Repository) -> dict[str, str]:
    """The runs on the store with an evidence.json, and that file's digest."""
    return {
        run: "sha256:" + hashlib.sha256(repository.read_bytes(f"runs/{run}/evidence.json")).hexdigest()
        for run in repository.list_folders("runs/")
        if repository.exists(f"runs/{run}/evidence.json")
    }


def test_the_head_history_detects_deleted_newest_runs(buckets: Buckets, tmp_path: Path) -> None:
    repository = open_repository(f"s3://{buckets.locked}/repo", retain_days=1)
    first = repository.put_head("runs/HEAD.json", head_document(RUN_A, _seal_run(repository, tmp_path, RUN_A)))
    second = repository.put_head("runs/HEAD.json", head_document(RUN_B, _seal_run(repository, tmp_path, RUN_B)))
    assert first and second and first != second
    assert [v.version_id for v in repository.head_history("runs/HEAD.json")] == [second, first]
    assert check_head(repository, _remaining_runs(repository)) == []
    assert repository.retention_of("runs/HEAD.json") is not None

    # Someone with write access removes the newest run (delete markers: the lock keeps the versions).
    for key in repository.list_keys(f"runs/{RUN_B}/"):
        buckets.client.delete_object(Bucket=buckets.locked, Key=f"repo/{key}")
    remaining = _remaining_runs(repository)
    assert list(remaining) == [RUN_A]

    problems = check_head(repository, remaining)
    assert problems == [
        f"the head names run {RUN_B} as the newest, but run {RUN_B} is missing: the newest runs were deleted"
    ]

    # ... and rewrites the head to name the run that remains: the older, locked version still tells.
    repository.put_head("runs/HEAD.json", head_document(RUN_A, remaining[RUN_A]))
    problems = check_head(repository, remaining)
    assert any(f"names run {RUN_B}, later than every run that remains" in p for p in problems)
    assert any("the head was rewound" in p for p in problems)

    # The head's locked versions cannot be removed either.
    with pytest.raises(ClientError) as refused:
        buckets.client.delete_object(Bucket=buckets.locked, Key="repo/runs/HEAD.json", VersionId=second)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
