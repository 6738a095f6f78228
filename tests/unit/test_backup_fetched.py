"""``check_files`` with what a download verified on the way in: not hashed twice, never trusted
beyond what was verified."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from aris3nb.backup import manifest as manifest_module
from aris3nb.backup.manifest import Manifest, check_files


def _backup(tmp_path: Path) -> tuple[Manifest, dict[str, tuple[int, str]]]:
    folder = tmp_path / "b1"
    (folder / "database").mkdir(parents=True)
    files: list[dict[str, Any]] = []
    digests = {}
    for name, body in (("database/aris3.sqlite3", b"x" * 5000), ("database/other", b"y" * 10)):
        (folder / name).write_bytes(body)
        digest = hashlib.sha256(body).hexdigest()
        files.append({"path": name, "size": len(body), "sha256": digest, "role": "database"})
        digests[name] = (len(body), digest)
    return Manifest({"files": files}, folder / "manifest.json"), digests


def test_files_verified_on_the_way_in_are_not_hashed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest, digests = _backup(tmp_path)
    hashed: list[Path] = []
    real = manifest_module.sha256_file
    monkeypatch.setattr(manifest_module, "sha256_file", lambda path: hashed.append(path) or real(path))
    assert check_files(manifest, digests) == ([], 2, 5010)
    assert hashed == []
    assert check_files(manifest) == ([], 2, 5010)
    assert len(hashed) == 2


def test_a_verified_file_changed_since_or_verified_as_other_bytes_is_still_caught(tmp_path: Path) -> None:
    manifest, digests = _backup(tmp_path)
    (manifest.folder / "database/other").write_bytes(b"z" * 11)  # its size changed after the download
    problems, _, _ = check_files(manifest, digests)
    assert problems == ["file 'database/other' is 11 bytes, the manifest says 10"]
    (manifest.folder / "database/other").write_bytes(b"z" * 10)
    other = {**digests, "database/other": (10, hashlib.sha256(b"z" * 10).hexdigest())}  # not the manifest's bytes
    problems, _, _ = check_files(manifest, other)
    assert len(problems) == 1 and "database/other" in problems[0] and "SHA-256" in problems[0]


def test_the_finished_table_files_are_read_from_pg_dumps_interleaved_messages() -> None:
    """pg_dump's leader and workers share one standard error and write a message in pieces
    (name, space, text): a "finished item" message may start its line without its name, or
    after another process's name; a table named like the message is never taken for one."""
    from aris3nb.backup.postgres import _FINISHED

    said = (
        "pg_dump: finished item 3501 TABLE DATA tenants\n"
        'pg_dump:pg_dump:  dumping contents of table "public.stock_items"\n'
        "finished item 3529 TABLE DATA stock_items\n"
        "pg_dump: pg_dump: finished item 3530 TABLE DATA sales\n"
        'pg_dump: dumping contents of table "public.finished item 77 TABLE DATA x"\n'
        "pg_dump: finished item 3531 TABLE DATA finished item 78 TABLE DATA y\n"
    )
    assert _FINISHED.findall(said) == ["3501", "3529", "3530", "3531"]
