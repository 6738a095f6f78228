"""The target's code driven in its own interpreter (aris3nb/targets/code.py and probe.py), and
the gate's migration checks on a target that is not the reference: the foreign ARIS3-like target
of tests/targets/foreign, whose revision ids after the first are 40-46 characters long.

History and heads come through the probe; the round trip passes on SQLite; on PostgreSQL it
FAILS naming a revision too long for alembic_version.version_num VARCHAR(32) with the profile as
the target ships it, and passes with a profile declaring the widened column; target.schema
passes at head, fails one revision behind naming it, fails on a too narrow live version_num;
a probe error is a one-line FAIL; a missing interpreter is a usage error (exit 2).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import foreign_target as ft  # tests/targets/foreign_target.py (tests/conftest.py puts it on sys.path)
import pytest
import sqlalchemy as sa

from aris3nb.core.checks import Status
from aris3nb.core.db import create_engine
from aris3nb.core.errors import MigrationError, UsageError
from aris3nb.gate.migrations import (
    SCRATCH_PREFIX,
    judge_single_head,
    judge_target_schema,
    round_trip_on_postgres,
    round_trip_on_sqlite,
)
from aris3nb.targets import code as target_code_module
from aris3nb.targets.code import ProbedCode, target_code
from aris3nb.targets.profile import LoadedProfile, load_profile

pytestmark = pytest.mark.slow  # the target's venv: 25-45 s once per machine (kept under VENV_CACHE)

TARGETS = Path(__file__).resolve().parents[1] / "targets"
VENV_CACHE = ft.VENV_CACHE


def write_profile(
    folder: Path, python: Path | str, *, width: int = 32, alembic_ini: str = "alembic.ini"
) -> LoadedProfile:
    """A copy of the target's aris3nb.toml in ``folder``, its root pointing at the target by
    absolute path, with the interpreter, version_num width and alembic.ini given."""
    text = ft.PROFILE.read_text(encoding="utf-8")
    for key, value in (("root", str(ft.ROOT)), ("python", str(python)), ("alembic_ini", alembic_ini)):
        text, found = re.subn(rf'^{key} = ".*"$', f"{key} = {value!r}".replace("'", '"'), text, count=1, flags=re.M)
        assert found == 1, key
    text, found = re.subn(r"^version_num_width = \d+$", f"version_num_width = {width}", text, count=1, flags=re.M)
    assert found == 1
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aris3nb.toml").write_text(text, encoding="utf-8")
    return load_profile(folder / "aris3nb.toml")


@pytest.fixture(scope="module")
def foreign_python() -> Path:
    return ft.ensure_venv(VENV_CACHE)


@pytest.fixture(scope="module")
def profile(foreign_python: Path, tmp_path_factory: pytest.TempPathFactory) -> LoadedProfile:
    return write_profile(tmp_path_factory.mktemp("profile"), foreign_python)


def _scratch_databases(admin: sa.Engine) -> set[str]:
    with admin.connect() as conn:
        return set(
            conn.scalars(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"{SCRATCH_PREFIX}%"})
        )


def test_history_and_heads_come_through_the_probe(profile: LoadedProfile) -> None:
    code = target_code(profile)
    assert isinstance(code, ProbedCode) and code.python != Path(sys.executable)
    assert [rev.revision for rev in code.history()] == list(ft.REVISIONS)
    assert code.history()[1].down_revisions == (ft.REVISIONS[0],)
    assert code.heads() == [ft.HEAD]
    assert target_code_module.head_revision(profile) == ft.HEAD
    assert code.revisions_between(ft.REVISIONS[4], ft.HEAD) == list(ft.REVISIONS[5:])
    assert code.revisions_between(None) == list(ft.REVISIONS)
    assert code.revisions_between("not_in_this_history") == []
    assert "receipts" in code.tables()
    assert judge_single_head(profile=profile).detail == f"one head: {ft.HEAD}"


def test_round_trip_on_sqlite_passes(profile: LoadedProfile) -> None:
    outcome = round_trip_on_sqlite(profile=profile)
    assert outcome.status is Status.PASS, outcome.detail
    steps = outcome.evidence["steps"]
    assert [s["step"] for s in steps] == [
        "upgrade head",
        "compare with the models",
        "downgrade base",
        "upgrade head again",
    ]
    assert steps[0]["schema_sha256"] == steps[3]["schema_sha256"]


@pytest.mark.postgres
def test_postgres_round_trip_fails_on_the_version_num_width_and_passes_widened(
    profile: LoadedProfile, foreign_python: Path, postgres_admin: sa.Engine, tmp_path: Path
) -> None:
    server = postgres_admin.url.render_as_string(hide_password=False)
    before = _scratch_databases(postgres_admin)

    outcome = round_trip_on_postgres(server, profile=profile)
    assert outcome.status is Status.FAIL
    first_long = ft.REVISIONS[1]
    assert outcome.detail.startswith(
        f"revision {first_long} ({len(first_long)} characters) does not fit alembic_version.version_num VARCHAR(32)"
    )
    assert outcome.evidence["revisions_too_long"] == {rev: len(rev) for rev in ft.REVISIONS[1:]}

    widened = write_profile(tmp_path / "wide", foreign_python, width=128)
    outcome = round_trip_on_postgres(server, profile=widened)
    assert outcome.status is Status.PASS, outcome.detail
    assert outcome.evidence["version_num_width"] == 128 and outcome.evidence["scratch_database_dropped"] is True
    assert _scratch_databases(postgres_admin) == before


def test_target_schema_at_head_passes_and_one_behind_fails_naming_it(profile: LoadedProfile, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    code = target_code(profile)
    code.upgrade(url)
    outcome = judge_target_schema(url, profile=profile)
    assert outcome.status is Status.PASS, outcome.detail
    assert outcome.detail == f"target at head {ft.HEAD}, schema equal to the models"

    code.downgrade(url, "-1")
    outcome = judge_target_schema(url, profile=profile)
    assert outcome.status is Status.FAIL
    assert outcome.evidence["pending_revisions"] == [ft.HEAD]
    assert outcome.detail == f"target at {ft.REVISIONS[-2]}, code head is {ft.HEAD}: 1 revision behind ({ft.HEAD})"

    code.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE receipts ADD COLUMN hotfix_note VARCHAR(20)")
    engine.dispose()
    outcome = judge_target_schema(url, profile=profile)
    assert outcome.status is Status.FAIL and "drifted from the models" in outcome.detail
    assert "receipts.hotfix_note" in outcome.detail


@pytest.mark.postgres
def test_target_schema_fails_on_a_live_version_num_too_narrow(
    profile: LoadedProfile, foreign_python: Path, postgres_url: str
) -> None:
    done = ft.migrate(foreign_python, postgres_url, check=False)  # the defect: stops after fr0001_baseline
    assert done.returncode != 0
    outcome = judge_target_schema(postgres_url, profile=profile)
    assert outcome.status is Status.FAIL
    longest = max(ft.REVISIONS, key=len)
    assert outcome.detail.startswith(
        f"the target's alembic_version.version_num is VARCHAR(32), narrower than "
        f"revision {longest} ({len(longest)} characters)"
    )
    assert outcome.evidence["current_revision"] == ft.REVISIONS[0]


def test_probe_errors_are_one_line_fails(profile: LoadedProfile, foreign_python: Path, tmp_path: Path) -> None:
    broken = write_profile(tmp_path / "broken", foreign_python, alembic_ini="no-such-alembic.ini")
    for outcome in (judge_single_head(profile=broken), round_trip_on_sqlite(profile=broken)):
        assert outcome.status is Status.FAIL
        assert "failed: FileNotFoundError: no Alembic configuration no-such-alembic.ini in " in outcome.detail
        assert "\n" not in outcome.detail and "traceback" not in outcome.evidence

    missing = tmp_path / "absent.db"
    outcome = judge_target_schema(f"sqlite:///{missing}", profile=profile)
    assert outcome.status is Status.FAIL and "does not exist" in outcome.detail and "\n" not in outcome.detail
    assert not missing.exists(), "reading a target never creates it"

    with pytest.raises(MigrationError) as caught:
        target_code(profile).upgrade("postgresql://postgres:Hunter2-secret@127.0.0.1:1/postgres")
    assert "Hunter2-secret" not in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("upgrade to head on postgresql://postgres:***@127.0.0.1:1/postgres failed: ")


def test_a_missing_or_unusable_interpreter_is_a_usage_error(tmp_path: Path) -> None:
    not_executable = tmp_path / "python"
    not_executable.write_text("")
    for python, why in ((tmp_path / "no" / "python", "does not exist"), (not_executable, "is not executable")):
        loaded = write_profile(tmp_path / why.replace(" ", "-"), python)
        with pytest.raises(UsageError) as caught:
            target_code_module.head_revision(loaded)
        assert caught.value.exit_code == 2
        assert str(python) in str(caught.value) and "target.python" in str(caught.value) and why in str(caught.value)


@pytest.fixture
def probed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The commands of every probe process started from now on, in order."""
    commands: list[str] = []
    real_probe = ProbedCode.probe

    def counting_probe(self: ProbedCode, command: str, **kwargs: object) -> dict[str, object]:
        commands.append(command)
        return real_probe(self, command, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ProbedCode, "probe", counting_probe)
    return commands


def test_the_history_is_read_once_per_process_until_a_migration_changes(
    foreign_python: Path, tmp_path: Path, probed: list[str]
) -> None:
    """A gate's checks each make their own ``target_code``: the history is probed once, and again
    only when a migration file or folder (or alembic.ini) has changed since."""
    root = tmp_path / "target"
    shutil.copytree(ft.ROOT, root, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
    write_profile(tmp_path / "profile", foreign_python)
    text = (tmp_path / "profile" / "aris3nb.toml").read_text(encoding="utf-8").replace(str(ft.ROOT), str(root))
    (tmp_path / "profile" / "aris3nb.toml").write_text(text, encoding="utf-8")
    loaded = load_profile(tmp_path / "profile" / "aris3nb.toml")
    assert loaded.root == root
    assert target_code(loaded).heads() == [ft.HEAD]
    assert [rev.revision for rev in target_code(loaded).history()] == list(ft.REVISIONS)
    assert target_code(loaded).heads() == [ft.HEAD]
    assert probed == ["history"]

    versions = root / "migrations" / "versions"
    newest = versions / "fr0099_a_migration_added_since.py"
    newest.write_text(
        f'revision = "{newest.stem}"\ndown_revision = "{ft.HEAD}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n",
        encoding="utf-8",
    )
    assert target_code(loaded).heads() == [newest.stem]
    assert target_code(loaded).heads() == [newest.stem], "changed just before it was read: not kept"
    assert probed == ["history"] * 3

    a_minute_ago = time.time_ns() - 60_000_000_000
    for path in (newest, versions):
        os.utime(path, ns=(a_minute_ago, a_minute_ago))
    assert target_code(loaded).heads() == [newest.stem]
    assert target_code(loaded).heads() == [newest.stem]
    assert probed == ["history"] * 4

    newest.unlink()
    assert target_code(loaded).heads() == [ft.HEAD]
    assert probed == ["history"] * 5


def test_the_target_schema_is_read_in_one_probe_and_a_broken_comparison_never_hides_the_revision(
    foreign_python: Path, profile: LoadedProfile, tmp_path: Path, probed: list[str]
) -> None:
    """target.schema asks the revision and the comparison of one probe process; models that
    cannot be imported fail it at head, naming why, but a database behind head is still said
    to be behind, by how many revisions."""
    url = f"sqlite:///{tmp_path / 'target.db'}"
    target_code(profile).upgrade(url)
    probed.clear()
    assert judge_target_schema(url, profile=profile).status is Status.PASS
    assert [c for c in probed if c != "history"] == ["current"]

    broken_folder = tmp_path / "broken-models"
    write_profile(broken_folder, foreign_python)
    toml = broken_folder / "aris3nb.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            'metadata = "foreign_retail.models:metadata"', 'metadata = "foreign_retail.no_such_models:metadata"'
        ),
        encoding="utf-8",
    )
    broken = load_profile(toml)
    assert broken.profile.target.metadata == "foreign_retail.no_such_models:metadata"
    outcome = judge_target_schema(url, profile=broken)
    assert outcome.status is Status.FAIL
    assert "failed: ModuleNotFoundError: No module named 'foreign_retail.no_such_models'" in outcome.detail
    target_code(profile).downgrade(url, "-1")
    outcome = judge_target_schema(url, profile=broken)
    assert outcome.status is Status.FAIL
    assert outcome.detail == f"target at {ft.REVISIONS[-2]}, code head is {ft.HEAD}: 1 revision behind ({ft.HEAD})"
