"""The warm probe (aris3nb/targets/warm.py, ``probe.py --serve``): a target's questions answered
by children forked from one server in the target's interpreter.

Each answer is the one-off probe's; each child imports the target's code afresh (nothing of one
question reaches the next) and is a child of the one server; a question past its timeout has the
server and its child killed and the next one starts another; a question asked while the server
is busy goes to a one-off probe; the server never outlives the process that started it, whether
that process exits or is killed.

The target is written here: an Alembic project with one revision and a models module that logs,
each time it is imported, its process, its parent and how many times it was imported in that
process. aris3nb's own interpreter plays the target's (it has Alembic and SQLAlchemy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from aris3nb.core.errors import MigrationError
from aris3nb.targets import warm
from aris3nb.targets.code import ProbedCode
from aris3nb.targets.profile import LoadedProfile, load_profile

MODELS = """
import builtins, os, time
import sqlalchemy as sa

builtins.imports_here = getattr(builtins, "imports_here", 0) + 1
with open(os.environ["MODELS_LOG"], "a") as log:
    log.write(f"{os.getpid()} {os.getppid()} {builtins.imports_here}\\n")
time.sleep(float(os.environ.get("MODELS_SLEEP", "0")))
metadata = sa.MetaData()
sa.Table("items", metadata, sa.Column("id", sa.Integer, primary_key=True))
"""

ENV_PY = """
from alembic import context
from sqlalchemy import engine_from_config, pool

with engine_from_config(context.config.get_section(context.config.config_ini_section), prefix="sqlalchemy.",
                        poolclass=pool.NullPool).connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
"""

REVISION = """
revision = "w0001_items"
down_revision = None

from alembic import op
import sqlalchemy as sa

def upgrade():
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))

def downgrade():
    op.drop_table("items")
"""


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedProfile:
    root = tmp_path / "target"
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "migrations" / "versions" / "w0001_items.py").write_text(REVISION)
    (root / "warm_models.py").write_text(MODELS)
    (root / "aris3nb.toml").write_text(
        textwrap.dedent(
            f"""\
            profile_version = 1
            name = "warm"
            [target]
            python = "{sys.executable}"
            metadata = "warm_models:metadata"
            """
        )
    )
    monkeypatch.setenv("MODELS_LOG", str(tmp_path / "models.log"))
    yield load_profile(root / "aris3nb.toml")
    warm.stop_all()


def imports(tmp_path: Path) -> list[tuple[int, int, int]]:
    """Each import of the models: (process, its parent, imports so far in that process)."""
    log = tmp_path / "models.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(int(a), int(b), int(c)) for a, b, c in (line.split() for line in lines)]


def server_pid(code: ProbedCode) -> int:
    """The process of the warm probe ``code`` asks (this process may run others, for other targets)."""
    return warm._SERVERS[(str(code.python), str(code.root))].process.pid


def test_each_question_is_answered_by_a_fresh_child_of_one_server(target: LoadedProfile, tmp_path: Path) -> None:
    code = ProbedCode(target)
    assert code.tables() == ["items"] and code.tables() == ["items"]
    assert [r.revision for r in code.history()] == ["w0001_items"]
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    code.upgrade(url)
    assert code.current(url) == "w0001_items" and code.compare(url) == []
    found = imports(tmp_path)
    # tables, tables, compare: three imports, each the first in its own process, all children of the server
    assert len(found) == 3 and {count for _, _, count in found} == {1}, found
    assert len({pid for pid, _, _ in found}) == 3 and {parent for _, parent, _ in found} == {server_pid(code)}
    assert os.getpid() not in {parent for _, parent, _ in found}


def test_a_warm_answer_is_the_one_off_probes(target: LoadedProfile, tmp_path: Path) -> None:
    code = ProbedCode(target)
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    for command, at in (("history", None), ("tables", None), ("upgrade", url), ("current", url), ("compare", url)):
        request = {
            "command": command,
            "alembic_ini": "alembic.ini",
            "metadata": "warm_models:metadata",
            "url_env": "DATABASE_URL",
            "revision": "head" if command == "upgrade" else None,
            "read_only": command in ("current", "compare"),
        }
        env = code._environment(command, at)
        one_off = code._one_off(request, env, command, 60)
        reply = warm.ask(code.python, code.root, request, env, "DATABASE_URL", 60)
        assert reply is not None and reply.returncode == one_off[2] == 0
        assert json.loads(reply.stdout) == json.loads(one_off[0]), command
    failing = {"command": "current", "url_env": "DATABASE_URL", "read_only": True}
    missing = code._environment("current", f"sqlite:///{tmp_path / 'absent.sqlite3'}")
    reply = warm.ask(code.python, code.root, failing, missing, "DATABASE_URL", 60)
    assert reply is not None and json.loads(reply.stdout) == json.loads(code._one_off(failing, missing, "x", 60)[0])
    assert "does not exist" in json.loads(reply.stdout)["error"]


def test_what_the_interpreter_prints_before_the_server_starts_is_passed_over(
    target: LoadedProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text('print("a sitecustomize says hello")\nprint("{not json")\n')
    monkeypatch.setenv("PYTHONPATH", str(site))
    code = ProbedCode(target)
    assert code.tables() == ["items"]
    assert [parent for _, parent, _ in imports(tmp_path)] == [server_pid(code)]


def test_a_question_past_its_timeout_kills_the_server_and_its_child(
    target: LoadedProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = ProbedCode(target)
    assert code.tables() == ["items"]
    first = server_pid(code)
    monkeypatch.setenv("MODELS_SLEEP", "120")
    code = ProbedCode(target)  # another environment: another server
    slow = server_pid(code)
    assert slow != first
    with pytest.raises(MigrationError, match=r"did not finish within 5 s; stopped"):
        code.probe("tables", timeout=5)
    children = [pid for pid, parent, _ in imports(tmp_path) if parent == slow]
    assert len(children) == 1, imports(tmp_path)  # the child that was asleep when the time ran out
    for pid in (slow, *children):  # SIGKILLed: gone once the kernel has delivered it
        assert _gone_within(pid, 5), f"process {pid} outlived the timeout"
    monkeypatch.delenv("MODELS_SLEEP")
    code = ProbedCode(target)
    assert code.tables() == ["items"]  # a new server
    assert server_pid(code) not in (first, slow)


def test_a_question_asked_while_the_server_is_busy_goes_to_a_one_off_probe(
    target: LoadedProfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELS_SLEEP", "1.5")
    code = ProbedCode(target)
    answers: list[list[str]] = []
    threads = [threading.Thread(target=lambda: answers.append(code.tables())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [["items"], ["items"]]
    assert sorted(parent == os.getpid() for _, parent, _ in imports(tmp_path)) == [False, True]


@pytest.mark.parametrize("how", ["exits", "is killed"])
def test_the_server_never_outlives_the_process_that_started_it(target: LoadedProfile, tmp_path: Path, how: str) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from aris3nb.targets import warm
        from aris3nb.targets.code import ProbedCode
        from aris3nb.targets.profile import load_profile
        code = ProbedCode(load_profile(Path({str(target.path)!r})))
        assert code.tables() == ["items"]
        print(warm._SERVERS[(str(code.python), str(code.root))].process.pid, flush=True)
        if {how == "is killed"}:
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip(), done.stderr
    pid = int(done.stdout.split()[0])
    assert _gone_within(pid, 10), f"the warm probe {pid} outlived the process that started it ({how})"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
