"""One playbook run per target: the second waits a bounded time, then refuses naming the first."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from aris3nb.core.errors import UsageError
from aris3nb.evidence.run_lock import target_lock


def test_a_second_run_on_the_same_target_refuses_naming_the_first(tmp_path: Path) -> None:
    with target_lock(
        tmp_path,
        "postgresql+psycopg://u@db:5432/prod",
        run_id="20261129T100000Z-aaaaaa",
        started_at="2026-11-29T10:00:00.000Z",
        wait_sec=0,
    ):
        started = time.monotonic()
        said: list[str] = []
        with pytest.raises(UsageError, match="run 20261129T100000Z-aaaaaa .* is running against .*prod") as refused:
            with target_lock(
                tmp_path,
                "postgresql+psycopg://u@db:5432/prod",
                run_id="20261129T100001Z-bbbbbb",
                started_at="2026-11-29T10:00:01.000Z",
                wait_sec=0.5,
                on_wait=said.append,
            ):
                pass
        assert said == [
            "waiting for run 20261129T100000Z-aaaaaa (pid %d, started 2026-11-29T10:00:00.000Z) against "
            "postgresql+psycopg://u@db:5432/prod to end (at most 0.5 s, OPS_RUN_LOCK_WAIT_SEC)" % os.getpid()
        ], "told once whom it waits for"
        assert 0.4 < time.monotonic() - started < 5, "it waited the time allowed, no longer"
        assert refused.value.exit_code == 2 and "OPS_RUN_LOCK_WAIT_SEC" in str(refused.value)
        with target_lock(
            tmp_path,
            "postgresql+psycopg://u@db:5432/other",
            run_id="20261129T100002Z-cccccc",
            started_at="2026-11-29T10:00:02.000Z",
            wait_sec=0,
            on_wait=said.append,
        ):
            pass  # another target: no wait
        assert len(said) == 1
    with target_lock(
        tmp_path,
        "postgresql+psycopg://u@db:5432/prod",
        run_id="20261129T100003Z-dddddd",
        started_at="2026-11-29T10:00:03.000Z",
        wait_sec=0,
    ):
        pass  # released when the first ended
