"""Masked URL parameters are resolved from the runner's hand-over file or the environment,
and only to the URL they stand for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aris3nb.core.errors import UsageError
from aris3nb.phases.inputs import URLS_FILE_ENV, resolve_url

REAL = "postgresql://app:S3cret-pw@db.internal:5432/aris3"
MASKED = "postgresql://app:***@db.internal:5432/aris3"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (URLS_FILE_ENV, "DATABASE_URL", "ARIS3_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_an_unmasked_url_and_none_pass_through() -> None:
    assert resolve_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert resolve_url(None) is None


def test_a_masked_url_is_resolved_from_the_runners_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handed = tmp_path / "urls.json"
    handed.write_text(json.dumps(["http://svc:Other-pw@10.0.0.1:8000", REAL]))
    monkeypatch.setenv(URLS_FILE_ENV, str(handed))
    assert resolve_url(MASKED) == REAL
    assert resolve_url("http://svc:***@10.0.0.1:8000") == "http://svc:Other-pw@10.0.0.1:8000"


def test_a_masked_url_is_resolved_from_database_url_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", REAL)
    assert resolve_url(MASKED) == REAL


def test_another_databases_url_is_never_taken_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", REAL.replace("/aris3", "/other"))
    with pytest.raises(UsageError) as raised:
        resolve_url(MASKED)
    assert "DATABASE_URL" in str(raised.value) and "S3cret" not in str(raised.value)
