"""Hostile backup names: ``aris3nb backup create --name NAME`` with a name that is not a
plain slug (``..``, separators, NUL, 300 characters, Unicode look-alikes such as Cyrillic
'а' or fullwidth letters) is a usage error: exit 2, one line, and nothing is created
anywhere (README: "an unsafe backup name" is exit 2).

A few names are tried as a real process (argv cannot carry NUL), and every listed name
and the names hypothesis makes up in-process, through the same ``main``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from faultkit import run_cli, tree
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from aris3nb.cli import _common as _cli_common
from aris3nb.cli import main

EXAMPLES = 500
#: What a name must be (README, docs/FORMAT.md), written here independently of aris3nb.
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
HOSTILE = [
    "../x",
    "../../etc/cron.d/x",
    "a/b",
    "/abs",
    "./x",
    ".",
    "..",
    ".tmp-x-pid1-abc",
    "-rf",
    " x",
    "x ",
    "x" * 101,
    "x" * 300,
    "pre_deploy_2026\u200b",
    "pre_dеploy",  # Cyrillic е
    "ｐｒｅ＿ｄｅｐｌｏｙ",
    "pre\u2010deploy",
    "pre\u2044deploy",
    "pre\uff0fdeploy",
    "x\\y",
    "x:y",
    "x*y",
    "x\ny",
    "",
    "\u202eyolpeD",
    "a\u0301",
    "pre_deploy\n",
    "pre_deploy\r\n",
]


#: One of each kind as a real process (each costs a process start); all of them in-process below.
AS_A_PROCESS = ["../x", "a/b", "x" * 300, "pre_dеploy", "ｐｒｅ＿ｄｅｐｌｏｙ", "pre_deploy_2026\u200b", "pre_deploy\n"]


@pytest.mark.parametrize("name", AS_A_PROCESS)
def test_a_hostile_name_is_refused_by_the_command(name: str, tmp_path: Path, small_sqlite_template: Path) -> None:
    before = tree(tmp_path)
    artifacts = tmp_path / "artifacts"
    done = run_cli(
        ["backup", "create", f"--name={name}", "--database-url", f"sqlite:///{small_sqlite_template / 'aris3.db'}"],
        artifacts,
        timeout=60,
    )
    assert done.returncode == 2
    assert "not a plain slug" in done.failed_line
    assert tree(tmp_path) == before, "nothing created, inside OPS_ARTIFACTS_DIR or out of it"


def every(names: list[str]):  # type: ignore[no-untyped-def]
    """Hypothesis ``example``s for each of ``names``: tried whatever else it draws."""

    def apply(test):  # type: ignore[no-untyped-def]
        for name in names:
            test = example(name=name)(test)
        return test

    return apply


@pytest.mark.slow
@every([*HOSTILE, "n\x00ul", "\x00"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.one_of(
        st.text(min_size=0, max_size=120),
        st.sampled_from(HOSTILE + ["n\x00ul", "\x00"]),
        st.text(alphabet=st.sampled_from("a./\\\x00-_аｐ\u200b"), max_size=12),
    )
)
def test_any_name_that_is_not_a_slug_is_exit_2_and_creates_nothing(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assume(not SLUG.fullmatch(name))
    artifacts = tmp_path / "names" / "artifacts"
    monkeypatch.setenv("OPS_ARTIFACTS_DIR", str(artifacts))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    _cli_common.settings.cache_clear()  # read OPS_ARTIFACTS_DIR again
    before = tree(tmp_path)
    try:
        with pytest.raises(SystemExit) as exited:
            main(["backup", "create", f"--name={name}", "--database-url", "sqlite:////nonexistent/aris3.db"])
    finally:
        _cli_common.settings.cache_clear()
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("FAILED: ") and "not a plain slug" in error
    assert tree(tmp_path) == before
