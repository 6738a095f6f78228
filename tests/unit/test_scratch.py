"""Where throwaway files go: the memory folder (OPS_MEMORY_DIR) only when it is there, writable
and has room; the temporary folder otherwise; both swept for killed runs' folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from aris3nb.core.scratch import MEMORY_FOLDER, MEMORY_HEADROOM, memory_folder, scratch_roots
from aris3nb.core.settings import load_settings


def test_the_memory_folder_is_used_only_with_room_to_spare(tmp_path: Path) -> None:
    space = os.statvfs(tmp_path)
    free = space.f_bavail * space.f_frsize
    assert memory_folder(tmp_path, 1) == tmp_path
    assert memory_folder(tmp_path, free // MEMORY_HEADROOM - (1 << 20)) == tmp_path
    assert memory_folder(tmp_path, free // MEMORY_HEADROOM + (64 << 20)) is None, "room, but not twice over"
    assert memory_folder(tmp_path / "missing", 1) is None
    (tmp_path / "file").write_text("")
    assert memory_folder(tmp_path / "file", 1) is None
    assert memory_folder(None, 1) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_a_memory_folder_this_user_cannot_write_in_is_not_used(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        assert memory_folder(tmp_path, 1) is None
    finally:
        tmp_path.chmod(0o700)


def test_both_scratch_roots_are_swept_and_never_twice(tmp_path: Path) -> None:
    temporary = Path(tempfile.gettempdir())
    assert scratch_roots(None) == [temporary]
    assert scratch_roots(tmp_path) == [temporary, tmp_path]
    assert scratch_roots(tmp_path / "missing") == [temporary]
    assert scratch_roots(temporary) == [temporary]


def test_the_memory_folder_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPS_MEMORY_DIR", raising=False)
    assert load_settings().artifacts.memory_dir == MEMORY_FOLDER == Path("/dev/shm")
    monkeypatch.setenv("OPS_MEMORY_DIR", "")
    assert load_settings().artifacts.memory_dir is None
    monkeypatch.setenv("OPS_MEMORY_DIR", str(tmp_path))
    assert load_settings().artifacts.memory_dir == tmp_path
