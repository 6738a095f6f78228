"""SQLite backups digested by the native row hash, and drilled with or without it.

A backup made where the extension is built records ``row-sha256``; a drill where it is not
(``rowhash.USE_NATIVE`` off) recomputes the same digests in Python: a pristine copy passes,
a forged row is named by key. A backup made without the extension keeps the older ``rows``
method and is still drilled, and its rows named, where the extension is built.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from aris3nb import migrate
from aris3nb.backup import rowhash
from aris3nb.backup.create import create_backup
from aris3nb.backup.drill import restore_verify
from aris3nb.backup.manifest import manifest_digest, validate_backup
from aris3nb.core.errors import DrillFailed
from aris3nb.core.settings import load_settings
from aris3nb.reference.seed import seed_database

SCALE = 700


def _backup(tmp: Path, native: bool) -> Path:
    url = f"sqlite:///{tmp / 'aris3.db'}"
    migrate.upgrade(url)
    seed_database(url, scale=SCALE, exports_dir=tmp / "exports")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(rowhash, "USE_NATIVE", native)
        made = create_backup(
            url, "rowhash", settings=load_settings(artifacts={"dir": tmp / "artifacts"}), exports_dir=tmp / "exports"
        )
    return made.path / "manifest.json"


@pytest.fixture(scope="module")
def native_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert rowhash.extension() is not None, "the native row hash is not built: reinstall aris3nb with a C compiler"
    return _backup(tmp_path_factory.mktemp("rowhash-native"), native=True)


@pytest.fixture(scope="module")
def shell_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _backup(tmp_path_factory.mktemp("rowhash-shell"), native=False)


def _copy(manifest: Path, where: Path) -> Path:
    target = where / "backups" / manifest.parent.name
    shutil.copytree(manifest.parent, target)
    return target / "manifest.json"


def _forge_row(manifest: Path) -> None:
    """Change stock_items id=321 in the backup's file and reseal every digest (a forger)."""
    conn = sqlite3.connect(manifest.parent / "database" / "aris3.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("UPDATE stock_items SET sku = 'FORGED-321' WHERE id = 321")
    conn.close()
    document = json.loads(manifest.read_text())
    for entry in document["files"]:
        data = (manifest.parent / entry["path"]).read_bytes()
        entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    document["manifest_digest"] = manifest_digest(document)
    manifest.write_text(json.dumps(document))
    assert validate_backup(manifest).ok


def _methods(manifest: Path) -> set[str | None]:
    return {t.get("digest_method") for t in json.loads(manifest.read_text())["tables"]}


@pytest.mark.parametrize("drill_native", [True, False], ids=["drilled-native", "drilled-in-python"])
def test_a_native_backup_drills_with_or_without_the_extension(
    native_backup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drill_native: bool
) -> None:
    assert _methods(native_backup) == {rowhash.ROW_SHA256_METHOD}
    monkeypatch.setattr(rowhash, "USE_NATIVE", drill_native)
    settings = load_settings(artifacts={"dir": tmp_path}, backup={"drill_enabled": True})
    report, _ = restore_verify(_copy(native_backup, tmp_path / "pristine"), settings=settings)
    assert report.status == "PASS"

    forged = _copy(native_backup, tmp_path / "forged")
    _forge_row(forged)
    with pytest.raises(DrillFailed) as failed:
        restore_verify(forged, settings=settings)
    report_json = json.loads(Path(failed.value.report_path).read_text())
    stock = next(d for d in report_json["diff"] if d["table"] == "stock_items")
    assert stock["counts"] == {"changed": 1, "missing": 0, "extra": 0}
    [changed] = stock["changed"]
    assert changed["key"] == [321] and changed["restored"]["sku"] == "FORGED-321"
    # The backup's own data holds the forged row: its digest is the restored one, not the recorded one.
    assert "changed after it was made" in changed["backup_data"]


def test_a_backup_without_the_extension_keeps_the_shell_hash_and_drills(
    shell_backup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _methods(shell_backup) == {"rows"}
    settings = load_settings(artifacts={"dir": tmp_path}, backup={"drill_enabled": True})
    report, _ = restore_verify(_copy(shell_backup, tmp_path / "pristine"), settings=settings)
    assert report.status == "PASS"
    forged = _copy(shell_backup, tmp_path / "forged")
    _forge_row(forged)
    with pytest.raises(DrillFailed) as failed:
        restore_verify(forged, settings=settings)
    report = json.loads(Path(failed.value.report_path).read_text())
    stock = next(d for d in report["diff"] if d["table"] == "stock_items")
    assert [c["key"] for c in stock["changed"]] == [[321]]
    assert "changed after it was made" in stock["changed"][0]["backup_data"]
