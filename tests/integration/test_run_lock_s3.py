"""The run lock of a run on a bucket (``aris3nb.storage.lock``), against moto's S3 server over
real HTTP on loopback: of two runs racing for one target exactly one holds it and the other
waits, then refuses (exit 2) naming it; a dead holder's lock is taken over after its lease, a
live one never; the lock goes when the run ends however it ends (an error, Ctrl-C, SIGTERM, a
NO-GO run); a lock object holds no password and no retention; a store that ignores or does not
implement conditional writes is refused. The lease logic runs with leases of a second or two;
two whole runs of the installed command (~30 s each) check the same through ``aris3nb run``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import s3server
from botocore.exceptions import ClientError
from test_run_s3 import Bucket, _bucket, cli, module_dir  # noqa: F401  (the module's fixtures)

from aris3nb.core.settings import load_settings
from aris3nb.evidence.runner import RunOptions, lock_target
from aris3nb.storage import StorageOptions, open_repository
from aris3nb.storage.lock import BucketLock, RunLocked, RunLockUnsupported, bucket_lock, lock_key
from aris3nb.storage.runs import run_on_store

PASSWORD = "pw-7d41c9e2"
TARGET = "postgresql db.internal:5432/shop"  # core.db.database_key: no role, no password, no driver
DEAD_RUN = "20261129T100000Z-dead00"


@pytest.fixture
def aws(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        **store.environment(),
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(params=["plain", "object-lock"])
def bucket(request: pytest.FixtureRequest, store: Any, aws: None) -> Bucket:
    """A bucket of each kind: without versioning, and with Object Lock (versioned; the lock's
    delete adds a delete marker)."""
    return _bucket(store, locked=request.param == "object-lock")


@pytest.fixture
def plain(store: Any, aws: None) -> Bucket:
    """A bucket without versioning, for what does not depend on the kind of bucket."""
    return _bucket(store, locked=False)


def _repository(bucket: Bucket, **keywords: Any) -> Any:
    return open_repository(bucket.url, options=StorageOptions(stale_upload_age_sec=None), **keywords)


def _lock_object(bucket: Bucket, target: str = TARGET) -> dict[str, Any] | None:
    try:
        return dict(json.loads(bucket.read(f"evidence/{lock_key(target)}")))
    except ClientError:
        return None


def _dead_holder(bucket: Bucket, lease_sec: float = 1) -> None:
    """A lock object left by a run that was killed: never renewed."""
    document = {
        "format": "aris3nb run lock",
        "version": 1,
        "lock_id": "0123456789abcdef",
        "run_id": DEAD_RUN,
        "host": "ci-runner-7",
        "pid": 4242,
        "started_at": "2026-11-29T10:00:00.000Z",
        "renewed_at": "2026-11-29T10:00:00.000Z",
        "lease_sec": lease_sec,
        "target": TARGET,
    }
    bucket.client.put_object(Bucket=bucket.name, Key=f"evidence/{lock_key(TARGET)}", Body=json.dumps(document))


def _race(*attempts: Any) -> list[Any]:
    """Run the callables at the same moment, one thread each; their results (or exceptions)."""
    gate = threading.Barrier(len(attempts))
    results: list[Any] = [None] * len(attempts)

    def one(index: int) -> None:
        gate.wait()
        try:
            results[index] = attempts[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(attempts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# -- the lock itself, with short leases --------------------------------------------------------


def test_of_two_racing_runs_exactly_one_holds_the_lock_and_the_other_refuses_naming_it(bucket: Bucket) -> None:
    repository = _repository(bucket)
    locks = [BucketLock(repository, TARGET, lease_sec=30, poll_sec=0.1) for _ in range(2)]
    told: list[list[str]] = [[], []]
    released = threading.Event()

    def take(index: int) -> str:
        locks[index].acquire(1.5, told[index].append)
        locks[index].name_run(f"20261130T090000Z-00000{index}")
        released.wait(30)  # held until the other gave up
        locks[index].release()
        return "held"

    def attempt(index: int) -> Any:
        def go() -> str:
            try:
                return take(index)
            finally:
                if not locks[index].held:
                    released.set()

        return go

    started = time.monotonic()
    results = _race(attempt(0), attempt(1))
    assert sorted(type(result).__name__ for result in results) == ["RunLocked", "str"], results
    winner = results.index("held")
    loser = 1 - winner
    refused = results[loser]
    assert refused.exit_code == 2
    message = str(refused)
    assert f"run 20261130T090000Z-00000{winner} on host {socket.gethostname()} (pid {os.getpid()}, started " in message
    assert f"is running against {TARGET}; this run waited 1.5 s and did not start" in message
    assert f"lock {bucket.url}/{lock_key(TARGET)}" in message
    assert told[winner] == [] and len(told[loser]) == 1, "the waiter is told once whom it waits for"
    assert told[loser][0].startswith("waiting for ") and "(at most 1.5 s, OPS_RUN_LOCK_WAIT_SEC)" in told[loser][0]
    assert time.monotonic() - started < 15
    assert _lock_object(bucket) is None, "released"
    assert not locks[winner].warnings


def test_a_dead_holders_lock_is_taken_over_after_its_lease_and_said(bucket: Bucket) -> None:
    _dead_holder(bucket, lease_sec=1)
    said: list[str] = []
    started = time.monotonic()
    with bucket_lock(_repository(bucket), TARGET, wait_sec=20, on_wait=said.append, poll_sec=0.2) as lock:
        waited = time.monotonic() - started
        held = _lock_object(bucket)
        assert held is not None and held["lock_id"] == lock.lock_id
        assert len(lock.warnings) == 1
        assert f"took over the run lock of run {DEAD_RUN} on host ci-runner-7 (pid 4242" in lock.warnings[0]
        assert lock.doubts() == [], "a lock taken over is held alone: said, but no doubt on the run"
    assert 1 < waited < 10, "taken over once its lease (1 s, and the clocks' slack) had passed"
    assert said and DEAD_RUN in said[0]
    assert _lock_object(bucket) is None


def test_of_two_runs_waiting_on_a_dead_holders_lock_one_only_takes_it_over(plain: Bucket) -> None:
    bucket = plain
    _dead_holder(bucket, lease_sec=1)
    repository = _repository(bucket)
    locks = [BucketLock(repository, TARGET, lease_sec=30, poll_sec=0.05) for _ in range(2)]
    results = _race(*(lambda lock=lock: lock.acquire(5) for lock in locks))
    try:
        holders = [lock for lock in locks if lock.held]
        assert len(holders) == 1, results
        refused = next(r for r in results if r is not None)
        assert isinstance(refused, RunLocked)
        assert f"pid {os.getpid()}" in str(refused) and DEAD_RUN not in str(refused), "names the new holder"
        assert _lock_object(bucket)["lock_id"] == holders[0].lock_id  # type: ignore[index]
    finally:
        for lock in locks:
            lock.release()


def test_a_live_lock_is_renewed_and_never_taken_over(plain: Bucket) -> None:
    bucket = plain
    repository = _repository(bucket)
    with bucket_lock(repository, TARGET, wait_sec=0, lease_sec=1) as holder:
        holder.name_run("20261130T090000Z-a11ve0")
        first = _lock_object(bucket)
        waiter = BucketLock(repository, TARGET, poll_sec=0.2)
        started = time.monotonic()
        with pytest.raises(RunLocked, match="run 20261130T090000Z-a11ve0 on host"):
            waiter.acquire(4)  # more than the holder's lease and the clocks' slack (3 s)
        assert time.monotonic() - started >= 4
        assert not waiter.held
        renewed = _lock_object(bucket)
        assert first is not None and renewed is not None
        assert renewed["lock_id"] == holder.lock_id and renewed["renewed_at"] > first["renewed_at"]
    assert holder.warnings == []
    assert _lock_object(bucket) is None


def test_the_lock_goes_when_the_block_fails_or_is_interrupted(bucket: Bucket) -> None:
    repository = _repository(bucket)
    for stop in (RuntimeError("the run failed"), KeyboardInterrupt()):
        with pytest.raises(type(stop)):
            with bucket_lock(repository, TARGET, wait_sec=0, lease_sec=5):
                assert _lock_object(bucket) is not None
                raise stop
        assert _lock_object(bucket) is None
    with bucket_lock(repository, TARGET, wait_sec=0):  # free again at once
        pass


def test_a_holder_that_lost_its_lock_leaves_it_to_the_new_holder_and_says_so(bucket: Bucket) -> None:
    repository = _repository(bucket)
    with bucket_lock(repository, TARGET, wait_sec=0, lease_sec=1) as lock:
        _dead_holder(bucket, lease_sec=60)  # another run took it over (this one did not renew it)
        deadline = time.monotonic() + 5
        while not lock.warnings and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(lock.warnings) == 1 and "this run lost its run lock" in lock.warnings[0]
    assert f"now held by run {DEAD_RUN}" in lock.warnings[0]
    assert lock.doubts() == lock.warnings, "the run it held is not sealed as held alone"
    assert _lock_object(bucket)["run_id"] == DEAD_RUN, "the new holder's lock is left alone"  # type: ignore[index]


@pytest.mark.parametrize("store_does", ["fail", "hang"])
def test_a_lock_the_store_stops_renewing_is_a_doubt_once_its_lease_has_passed(
    plain: Bucket, monkeypatch: pytest.MonkeyPatch, store_does: str
) -> None:
    """Renewals refused (an error each time) or never answered (the renewal hangs): once the
    lease has passed without one, the run may no longer hold its lock alone, and says why."""
    from aris3nb.storage.errors import StorageError

    repository = _repository(plain)
    answer = threading.Event()
    with bucket_lock(repository, TARGET, wait_sec=0, lease_sec=1.5) as lock:
        assert lock.doubts() == []

        def stalled(*args: Any, **keywords: Any) -> Any:
            if store_does == "hang":
                answer.wait(30)
            raise StorageError("could not write the run lock: the store did not answer (timed out)")

        monkeypatch.setattr(repository, "put_conditional", stalled)

        def settled(doubts: list[str]) -> bool:
            # Refused: the overdue lock is said at once, its cause at the next refusal (a third
            # of the lease later at most, later on a slow machine): wait for the cause.
            return bool(doubts) and (store_does == "hang" or "the store did not answer" in doubts[0])

        deadline = time.monotonic() + 10
        while not settled(lock.doubts()) and time.monotonic() < deadline:
            time.sleep(0.1)
        doubts = lock.doubts()
        answer.set()
        monkeypatch.undo()
    assert len(doubts) == 1 and "more than its lease of 1.5 s" in doubts[0], doubts
    if store_does == "fail":
        assert "was not renewed for" in doubts[0] and "the store did not answer" in doubts[0]
    else:
        assert "was last renewed" in doubts[0] and "another run against" in doubts[0]


def test_a_lock_object_holds_no_password_and_no_retention(store: Any, aws: None) -> None:
    bucket = _bucket(store, locked=True)
    repository = _repository(bucket, retain_days=1)  # every other object is written locked
    target = lock_target(RunOptions(database_url=f"postgresql+psycopg://ops:{PASSWORD}@db.internal:5432/shop"))
    assert target == TARGET
    with bucket_lock(repository, target, wait_sec=0) as lock:
        lock.name_run("20261130T090000Z-abcdef")
        key = f"evidence/{lock_key(target)}"
        body = bucket.read(key)
        head = bucket.client.head_object(Bucket=bucket.name, Key=key)
    assert PASSWORD not in body.decode()
    document = json.loads(body)
    assert {"run_id", "host", "pid", "started_at", "renewed_at", "lease_sec", "target"} <= set(document)
    assert document["run_id"] == "20261130T090000Z-abcdef" and document["target"] == TARGET
    assert "ObjectLockMode" not in head, "a lock object is never put under retention"
    assert _lock_object(bucket) is None


class _Client:
    """A boto3 client as a store that does not honour conditional writes would answer."""

    def __init__(self, client: Any, *, answer: str) -> None:
        self._client, self._answer = client, answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_object(self, **arguments: Any) -> Any:
        conditional = "IfNoneMatch" in arguments or "IfMatch" in arguments
        if conditional and self._answer == "501":
            error = {"Error": {"Code": "NotImplemented", "Message": "A header you provided implies functionality"}}
            raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 501}}, "PutObject")
        arguments.pop("IfNoneMatch", None)
        arguments.pop("IfMatch", None)
        return self._client.put_object(**arguments)


@pytest.mark.parametrize("answer", ["ignored", "501"])
def test_a_store_without_conditional_writes_is_refused_and_left_clean(bucket: Bucket, answer: str) -> None:
    repository = _repository(bucket)
    repository._client = _Client(repository.client, answer=answer)
    with pytest.raises(RunLockUnsupported) as refused:
        with bucket_lock(repository, TARGET, wait_sec=0):
            pytest.fail("ran without a lock")
    assert refused.value.exit_code == 2
    message = str(refused.value)
    assert "does not honour conditional writes" in message and "nothing was run" in message
    assert ("ignores If-None-Match" if answer == "ignored" else "NotImplemented") in message
    assert _lock_object(bucket) is None


# -- run_on_store: a real target's run holds it, the embedded default's does not ----------------


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt])
def test_a_real_targets_run_holds_the_lock_from_pull_to_end_and_the_embedded_default_none(
    plain: Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stop: type[BaseException]
) -> None:
    import aris3nb.evidence.runner as runner

    bucket = plain
    database_url = f"sqlite:///{tmp_path / 'shop.db'}"
    (tmp_path / "shop.db").touch()  # a run never creates the database it judges (an empty file is one)
    seen: list[dict[str, Any] | None] = []

    def run_playbook(options: Any, settings: Any, *, on_run_id: Any = None, **keywords: Any) -> Any:
        if on_run_id is not None:
            on_run_id("20261130T090000Z-f00ba4")
        seen.append(_lock_object(bucket, lock_target(options)))
        assert settings.artifacts.shown_as == bucket.url, "its messages name places on the bucket"
        raise stop("the run failed" if stop is RuntimeError else "")

    monkeypatch.setattr(runner, "run_playbook", run_playbook)
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "ARIS3_BASE_URL", "OPS_ARTIFACTS_DIR", "OPS_RETAIN_DAYS"):
        monkeypatch.delenv(name, raising=False)
    for options in (RunOptions(database_url=database_url), RunOptions()):
        with pytest.raises(stop):
            run_on_store(bucket.url, options, load_settings())
    real, embedded = seen
    assert (
        real is not None
        and real["run_id"] == "20261130T090000Z-f00ba4"
        and real["target"] == f"sqlite {tmp_path / 'shop.db'}"
    )
    assert embedded is None, "the embedded default takes no lock"
    assert bucket.keys("evidence/locks/") == [], "released after the failed (or interrupted) run"


# -- through the installed command ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(module_dir: Path) -> tuple[str, Path]:  # noqa: F811
    """A real target: the reference schema, seeded, in a SQLite file."""
    from aris3nb import migrate
    from aris3nb.reference.seed import seed_database

    url = f"sqlite:///{module_dir / 'lock-shop.db'}"
    exports = module_dir / "lock-shop-exports"
    migrate.upgrade(url)
    seed_database(url, scale=100, exports_dir=exports)
    return url, exports


def _drill_run(cli: s3server.Cli, url: str, exports: Path, bucket: Bucket, **env: str) -> subprocess.Popen[str]:  # noqa: F811
    return subprocess.Popen(
        [s3server.ARIS3NB, "run", "drill", "--database-url", url, "--out", bucket.url, "--json"],
        env={**cli.env, "ARIS3_EXPORTS_DIR": str(exports), "OPS_ENABLE_BACKUP_DRILL": "true", **env},
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_commands_racing_for_one_target_run_one_at_a_time(
    cli: s3server.Cli,  # noqa: F811
    store: Any,
    shop: tuple[str, Path],
) -> None:
    """Two ``aris3nb run`` started together against one database through one bucket: one runs
    (its drill FAILs, no backup: a NO-GO run), the other waits OPS_RUN_LOCK_WAIT_SEC (0) and refuses,
    exit 2 in one line naming the first's run, host and start; nothing of it is on the bucket,
    and the lock is gone after the NO-GO run."""
    bucket = _bucket(store)
    url, exports = shop
    # Not waiting at all: the loser's one attempt falls within the winner's hold (seconds, from
    # before its pull to after its push) whatever the machine's speed; a wait could outlast it.
    runs = [_drill_run(cli, url, exports, bucket, OPS_RUN_LOCK_WAIT_SEC="0") for _ in range(2)]
    done = [run.communicate(timeout=600) for run in runs]
    cli.outputs += [text for pair in done for text in pair]
    codes = [run.returncode for run in runs]
    assert sorted(codes) == [1, 2], done
    winner, loser = (0, 1) if codes[0] == 1 else (1, 0)
    run_id = json.loads(done[winner][0])["run_id"]
    out, err = done[loser]
    assert out == "" and err.startswith("FAILED: ") and len(err.strip().splitlines()) == 1, err
    assert f" on host {socket.gethostname()} (pid {runs[winner].pid}, started " in err
    assert f"FAILED: run {run_id} on host" in err or "FAILED: a run still starting on host" in err, err
    target = lock_target(RunOptions(database_url=url))
    assert f"is running against {target}; this run waited 0 s and did not start" in err
    assert {key.split("/")[2] for key in bucket.keys("evidence/runs/") if key.count("/") > 2} == {run_id}
    assert bucket.keys("evidence/locks/") == [], "released after the NO-GO run"


@pytest.mark.slow
def test_a_command_takes_over_a_dead_runs_lock_and_releases_it_on_sigterm(
    cli: s3server.Cli,  # noqa: F811
    store: Any,
    shop: tuple[str, Path],
) -> None:
    bucket = _bucket(store)
    url, exports = shop
    target = lock_target(RunOptions(database_url=url))  # what the command names its lock after
    key = f"evidence/{lock_key(target)}"
    document = {"lock_id": "0123456789abcdef", "run_id": DEAD_RUN, "host": "ci-runner-7", "pid": 4242}
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=json.dumps({**document, "lease_sec": 1}))
    run = _drill_run(cli, url, exports, bucket, OPS_RUN_LOCK_WAIT_SEC="60")
    deadline = time.monotonic() + 120
    held: dict[str, Any] = {}
    while time.monotonic() < deadline and run.poll() is None:
        with_run = _lock_object(bucket, target)
        if with_run and with_run.get("run_id") != DEAD_RUN and with_run.get("run_id"):
            held = with_run
            break
        time.sleep(0.2)
    assert held.get("pid") == run.pid, "the command took the dead run's lock over"
    time.sleep(1)  # the run under way (a stop before the runner starts is not sealed: nothing ran)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=120)
    cli.outputs += [out, err]
    assert run.returncode == 130, out + err
    summary = json.loads(out)
    assert summary["run_id"] == held["run_id"] and summary["decision"] == "INTERRUPTED"
    assert any(f"took over the run lock of run {DEAD_RUN} on host ci-runner-7" in w for w in summary["warnings"])
    assert bucket.keys("evidence/locks/") == [], "released on SIGTERM"


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    yield
    strays = [t for t in threading.enumerate() if t.name == "aris3nb-run-lock"]
    deadline = time.monotonic() + 5
    while strays and time.monotonic() < deadline:
        time.sleep(0.05)
        strays = [t for t in strays if t.is_alive()]
    assert strays == [], "a lock's renewing thread outlived its lock"
