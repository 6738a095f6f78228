"""The smoke check: the pytest target run as a subprocess, with a timeout and a JUnit XML
report, judged per playbook area: for the reference suite from the report's ``area``
properties; for a target profile's suite (run with the target's own interpreter, where
aris3nb need not be installed) by the profile's ``[[smoke.areas]]`` rules over each test's
node id — a substring or glob of the id, or a pytest marker (the ids carrying it listed by
``pytest --collect-only -m MARKER`` in that interpreter). A test no rule matches counts in
``(other)``.

Any red area (a failed or erroring test in it) is a FAIL naming the area; the detail line
is pytest's own count line. A target that does not exist is a usage error (exit 2), found
before anything runs. The run's output and JUnit report are kept as evidence files, with
known secrets masked.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException, ElementTree

from aris3nb.core.checks import SAMPLE_LIMIT, Outcome, failed, passed, warned
from aris3nb.core.errors import UsageError
from aris3nb.core.redact import redact_text
from aris3nb.resources import PACKAGED, SMOKE_DIR, SMOKE_PYTEST_INI

#: Test-generation plugins a smoke run has no use for; loading them costs ~1.7 s of startup.
SKIPPED_PLUGINS = ("-p", "no:schemathesis", "-p", "no:hypothesispytest")
#: The playbook's critical areas, in its order.
AREAS = ("auth", "stock", "transfers", "pos", "reports", "exports")
NO_AREA = "(no area)"
#: Where a profile's suite counts a test none of its area rules matches.
OTHER_AREA = "(other)"
#: A pytest marker name (what ``-m`` is given for a ``marker`` rule).
_MARKER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: pytest's closing count line, e.g. "1 failed, 17 passed in 1.20s".
_COUNT_LINE = re.compile(r"^=*\s*(?P<line>(\d+ \w+(, )?)+.* in [\d.]+s( \([\d:]+\))?)\s*=*$")
_PYTEST_EXIT = {
    0: "all tests passed",
    1: "tests failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}


def check_pytest_target(target: str, cwd: Path) -> str:
    """``target`` (``PATH`` or ``PATH::NODE``) when its path exists; ``UsageError`` otherwise."""
    path = target.split("::", 1)[0]
    if not path.strip():
        raise UsageError(
            "--pytest-target is empty; give a test file or folder, e.g. tests/smoke/test_post_merge_readiness.py"
        )
    if not (cwd / path).exists():
        raise UsageError(f"pytest target {path!r} does not exist (relative to {cwd}); give a test file or folder")
    return target


@dataclass
class AreaCounts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failing_tests: list[str] = field(default_factory=list)

    @property
    def red(self) -> bool:
        return bool(self.failed or self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "red" if self.red else "green",
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "failing_tests": self.failing_tests[:SAMPLE_LIMIT],
        }


def junit_node_id(case: Any) -> str:
    """The pytest node id of a JUnit ``<testcase>`` (xunit1): its ``file`` attribute (the
    test file, relative to the rootdir) and the class names its ``classname`` holds after the
    file's dotted path, e.g. ``file="smoke/test_smoke.py" classname="smoke.test_smoke.TestA"
    name="test_b[x]"`` → ``smoke/test_smoke.py::TestA::test_b[x]``. Without a ``file`` (another
    JUnit family), ``classname::name``."""
    classname, name, path = case.get("classname", "") or "", case.get("name", "") or "", case.get("file")
    if path:
        dotted = re.sub(r"\.py$", "", path.replace(os.sep, ".").replace("/", "."))
        if classname == dotted:
            return f"{path}::{name}"
        if classname.startswith(dotted + "."):
            return "::".join([path, *classname[len(dotted) + 1 :].split("."), name])
    return f"{classname}::{name}".strip(":")


def _property_area(case: Any) -> str:
    return next((p.get("value") for p in case.iter("property") if p.get("name") == "area"), None) or NO_AREA


def areas_from_junit(
    xml_text: str, classify: Callable[[str], tuple[str, ...]] | None = None, totals: AreaCounts | None = None
) -> dict[str, AreaCounts]:
    """Per-area counts from a JUnit XML report: each test's areas are ``classify(node id)``,
    or by default its xunit1 ``<property name="area">``; ``totals`` (if given) counts each
    test once, whatever number of areas it covers."""
    root = ElementTree.fromstring(xml_text)
    areas: dict[str, AreaCounts] = {}
    for case in root.iter("testcase"):
        names = (_property_area(case),) if classify is None else classify(junit_node_id(case))
        test_id = (
            f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
            if classify is None
            else junit_node_id(case)
        )
        for counts in [areas.setdefault(name, AreaCounts()) for name in names] + ([totals] if totals else []):
            if case.find("failure") is not None:
                counts.failed += 1
                counts.failing_tests.append(test_id)
            elif case.find("error") is not None:
                counts.errors += 1
                counts.failing_tests.append(test_id)
            elif case.find("skipped") is not None:
                counts.skipped += 1
            else:
                counts.passed += 1
    return areas


def count_line(output: str) -> str | None:
    """pytest's closing count line in ``output`` (``-q`` or not), or None."""
    for line in reversed(output.strip().splitlines()):
        match = _COUNT_LINE.match(line.strip())
        if match:
            return match["line"]
    return None


@dataclass(frozen=True)
class SmokeRun:
    returncode: int | None  # None when killed at the timeout
    output: str
    junit_xml: str | None
    duration_sec: float
    python: str | None = None  # the interpreter pytest ran in


class PytestRun:
    """A pytest command started in its own process group, its output going to a file in a
    scratch folder of its own (never a pipe: the child cannot block on it while nobody reads);
    ``wait`` gives its ``SmokeRun``, killing the whole group at ``timeout_sec`` counted from the
    start; ``kill`` ends it early. The gate starts its smoke run so, before the checks that run
    beside it, and waits for it when the smoke check's turn comes."""

    def __init__(
        self,
        command: list[str],
        folder: tempfile.TemporaryDirectory[str],
        *,
        cwd: Path,
        env: dict[str, str],
        timeout_sec: float,
        python: str,
    ) -> None:
        self.timeout_sec, self.python, self._folder = timeout_sec, python, folder
        self.junit = Path(folder.name) / "junit.xml"
        self._output = Path(folder.name) / "output.txt"
        self._process: subprocess.Popen[bytes] | None = None
        self._not_started: str | None = None
        self.started = time.perf_counter()
        try:
            with self._output.open("wb") as output:  # the child keeps its own descriptor
                self._process = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:  # the interpreter does not exist or cannot run
            self._not_started = f"ERROR: cannot run {command[0]}: {exc.strerror or exc}"

    def wait(self) -> SmokeRun:
        """The run's outcome once it exits, or once it is killed at its timeout (exit code None)."""
        try:
            returncode: int | None = 127
            output = self._not_started or ""
            if self._process is not None:
                try:
                    returncode = self._process.wait(
                        timeout=max(0.0, self.started + self.timeout_sec - time.perf_counter())
                    )
                except subprocess.TimeoutExpired:
                    self.kill()
                    returncode = None
                output = self._output.read_bytes().decode("utf-8", errors="replace")
            xml_text = self.junit.read_text(encoding="utf-8") if self.junit.is_file() else None
            return SmokeRun(returncode, output, xml_text, time.perf_counter() - self.started, self.python)
        finally:
            self._folder.cleanup()

    def kill(self) -> None:
        """End the run now if it still runs: its whole process group."""
        if self._process is not None and self._process.poll() is None:
            _kill_group(self._process)
            self._process.wait()

    def close(self) -> None:
        """Kill the run if it still runs and remove its folder (a run nobody will wait for)."""
        self.kill()
        self._folder.cleanup()


def start_pytest(
    target: str,
    *,
    cwd: Path,
    timeout_sec: float,
    env: dict[str, str],
    python: str | None = None,
    pytest_args: Sequence[str] = (),
) -> PytestRun:
    """Start ``python -m pytest -q TARGET --junitxml=...`` in its own process group.

    ``python`` None: aris3nb's own interpreter; the playbook's own suite under its own
    configuration (``_own_suite_config``). Given (a target's own interpreter): only standard
    pytest options besides ``pytest_args`` (the profile's), no bytecode written into the
    target's tree.
    """
    folder = tempfile.TemporaryDirectory(prefix=f"aris3nb-smoke-pid{os.getpid()}-")
    junit = Path(folder.name) / "junit.xml"
    if python is None:
        own_config: list[str] = []
        own = is_own_suite(target, cwd)
        if own:
            own_config = _own_suite_config(Path(folder.name))
            if PACKAGED:
                env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}  # no pytest-rewritten .pyc left in site-packages
        plugins, env = _plugins(own, env)
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *plugins,
            *own_config,
            "-o",
            "junit_family=xunit1",
            f"--junitxml={junit}",
            target,
        ]
    else:
        env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        command = [
            python,
            "-m",
            "pytest",
            "-q",
            "--color=no",
            *_no_cache(pytest_args),
            *pytest_args,
            "-o",
            "junit_family=xunit1",
            f"--junitxml={junit}",
            target,
        ]
    return PytestRun(command, folder, cwd=cwd, env=env, timeout_sec=timeout_sec, python=python or sys.executable)


def run_pytest(
    target: str,
    *,
    cwd: Path,
    timeout_sec: float,
    env: dict[str, str],
    python: str | None = None,
    pytest_args: Sequence[str] = (),
) -> SmokeRun:
    """``start_pytest`` and wait for it: killed whole at ``timeout_sec``."""
    return start_pytest(
        target, cwd=cwd, timeout_sec=timeout_sec, env=env, python=python, pytest_args=pytest_args
    ).wait()


def is_own_suite(target: str, cwd: Path) -> bool:
    """Whether a pytest target (``PATH`` or ``PATH::NODE``, relative to ``cwd``) lies in the
    playbook's own smoke suite (``aris3nb.resources.SMOKE_DIR``), in a checkout or installed."""
    path = (cwd / target.split("::", 1)[0]).resolve()
    return path == SMOKE_DIR.resolve() or SMOKE_DIR.resolve() in path.parents


def _plugins(own: bool, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The plugin options of a smoke run in aris3nb's interpreter, and its environment (``own``:
    the target is the playbook's own suite, ``is_own_suite``).

    The playbook's own suite needs no plugin but pytest's own: it starts without the installed
    plugins' entry points (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), which would otherwise be
    imported and assertion-rewritten at every start (xdist, anyio and the like: ~0.2 s of CPU).
    Any other target may rely on what is installed: it gets them all, but for the test
    generators in ``SKIPPED_PLUGINS``.
    """
    if not own:
        return list(SKIPPED_PLUGINS), env
    return [], {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _no_cache(pytest_args: Sequence[str]) -> list[str]:
    """``-p no:cacheprovider`` unless the profile's arguments already say it: a smoke run
    leaves no ``.pytest_cache`` in the target's tree."""
    return [] if "no:cacheprovider" in pytest_args else ["-p", "no:cacheprovider"]


def _run_group(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout_sec: float
) -> tuple[int | None, str, float]:
    """Run ``command`` in its own process group, output and errors together; killed whole
    at ``timeout_sec`` (exit code None)."""
    folder = tempfile.TemporaryDirectory(prefix=f"aris3nb-smoke-pid{os.getpid()}-")
    run = PytestRun(command, folder, cwd=cwd, env=env, timeout_sec=timeout_sec, python=command[0]).wait()
    return run.returncode, run.output, run.duration_sec


class SmokeSetupError(Exception):
    """The tests an area rule's marker selects could not be listed."""


def marked_node_ids(
    marker: str,
    target: str,
    *,
    python: str,
    cwd: Path,
    env: dict[str, str],
    timeout_sec: float,
    pytest_args: Sequence[str] = (),
) -> set[str]:
    """The node ids of the tests of ``target`` that carry ``marker``: ``python -m pytest
    --collect-only -q -m MARKER`` in the target's interpreter (standard pytest; no test runs).
    ``SmokeSetupError`` naming pytest's error when the collection fails."""
    if not _MARKER_NAME.match(marker):
        raise SmokeSetupError(f"area rule marker {marker!r} is not a pytest marker name")
    command = [
        python,
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        *_no_cache(pytest_args),
        *pytest_args,
        "-m",
        marker,
        target,
    ]
    returncode, output, _ = _run_group(
        command, cwd=cwd, env={**env, "PYTHONDONTWRITEBYTECODE": "1"}, timeout_sec=timeout_sec
    )
    if returncode == 5:  # no test carries the marker
        return set()
    if returncode != 0:
        why = "timed out" if returncode is None else f"exited {returncode}"
        raise SmokeSetupError(
            f"listing the tests marked {marker!r} (pytest --collect-only -m {marker}) {why}: {error_excerpt(output)}"
        )
    ids = set()
    for line in output.splitlines():  # the ids, one a line, then a blank line and the count
        if not line.strip():
            break
        if "::" in line and not line.startswith((" ", "=")):
            ids.add(line.strip())
    return ids


def area_classifier(rules: Iterable[Any], marked: dict[str, set[str]]) -> Callable[[str], tuple[str, ...]]:
    """A test's areas by a profile's ``[[smoke.areas]]`` rules — every rule it matches (one test
    may cover several areas, e.g. a checkout that also reads the report and exports it): one of
    the rule's ``match`` patterns is a substring of the node id or an ``fnmatch`` glob matching
    it, or the test carries the rule's ``marker`` (``marked``: marker → node ids). Else ``(other)``."""
    rules = list(rules)

    def classify(node_id: str) -> tuple[str, ...]:
        areas = [
            str(rule.area)
            for rule in rules
            if any(pattern in node_id or fnmatch.fnmatchcase(node_id, pattern) for pattern in rule.match)
            or (rule.marker and node_id in marked.get(rule.marker, set()))
        ]
        return tuple(dict.fromkeys(areas)) or (OTHER_AREA,)

    return classify


def error_excerpt(output: str, limit: int = 300) -> str:
    """What pytest said went wrong, for a detail: its first exception line (``E   ...``) and
    its ``ERROR`` lines, else its last line."""
    lines = [line.rstrip() for line in output.splitlines()]
    picked = [line[1:].strip() for line in lines if line.startswith("E ")][:1]
    picked += [line.strip() for line in lines if line.startswith("ERROR")][:2]
    text = "; ".join(dict.fromkeys(p for p in picked if p)) or _last_line(output)
    return text[:limit] + ("..." if len(text) > limit else "")


def _own_suite_config(folder: Path) -> list[str]:
    """pytest options for the playbook's own smoke suite, installed or in a checkout: a config
    file of its own (its markers registered) and its own folder as rootdir and confcutdir, so
    that no ``pytest.ini``, ``pyproject.toml`` or ``conftest.py`` above it applies — neither
    those above the environment it is installed in nor, in a checkout, the development suite's
    (whose conftest and warning filters load SQLAlchemy and the settings: ~0.3 s of CPU a start
    the smoke run has no use for). Its test ids are the same either way."""
    ini = folder / "pytest.ini"
    ini.write_text(SMOKE_PYTEST_INI, encoding="utf-8")
    return ["-c", str(ini), "--rootdir", str(SMOKE_DIR), "--confcutdir", str(SMOKE_DIR)]


def _kill_group(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def judge_smoke(
    run: SmokeRun,
    *,
    timeout_sec: float,
    secrets: list[str | None],
    classify: Callable[[str], tuple[str, ...]] | None = None,
    strict: bool = False,
) -> Outcome:
    """Release only what passes the critical smoke in every area (auth, stock, transfers,
    POS, reports, exports): one red area is a NO-GO, whatever the others say.

    ``classify`` (a profile's suite: node id → area, see ``area_classifier``): an area counts
    as covered only by a passing test, and an area no test covers is a FAIL under ``strict``
    (a WARN otherwise). Without it, the reference suite's ``area`` properties, as always.
    """
    tail = redact_text("\n".join(run.output.strip().splitlines()[-40:]), secrets)
    evidence: dict[str, Any] = {
        "pytest_exit_code": run.returncode,
        "duration_sec": round(run.duration_sec, 3),
        "output_tail": tail,
    }
    if run.returncode is None:
        return failed(f"pytest did not finish within {timeout_sec:g} s and was killed", **evidence)
    counts_text = count_line(run.output)
    meaning = _PYTEST_EXIT.get(run.returncode, "unknown")
    if run.junit_xml is None:
        if classify is not None:
            return failed(
                f"pytest exited {run.returncode} ({meaning}) before any test ran, without a JUnit report: "
                f"{redact_text(error_excerpt(run.output), secrets)}",
                **evidence,
            )
        return failed(
            f"pytest exited {run.returncode} ({meaning}) without a JUnit report: {counts_text or _last_line(tail)}",
            **evidence,
        )
    try:
        all_tests = AreaCounts()
        areas = areas_from_junit(run.junit_xml, classify, all_tests)
        ran = _tests_ran(run.junit_xml)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        return failed(f"the JUnit report cannot be read: {exc}", **evidence)
    if run.returncode not in (0, 1) and not ran:
        return failed(
            f"pytest exited {run.returncode} ({meaning}) before any test ran: "
            f"{redact_text(error_excerpt(run.output), secrets)}",
            **evidence,
        )
    evidence["areas"] = {name: counts.to_dict() for name, counts in sorted(areas.items(), key=_area_order)}
    totals = Counter(
        {
            "passed": all_tests.passed,
            "failed": all_tests.failed,
            "errors": all_tests.errors,
            "skipped": all_tests.skipped,
        }
    )
    evidence["totals"] = dict(totals)
    summary = counts_text or ", ".join(f"{n} {k}" for k, n in totals.items() if n) or "no tests"
    red = [name for name, counts in sorted(areas.items(), key=_area_order) if counts.red]
    if red:
        return failed(f"red {'area' if len(red) == 1 else 'areas'}: {', '.join(red)} — {summary}", **evidence)
    if run.returncode != 0:
        return failed(
            f"pytest exited {run.returncode} ({_PYTEST_EXIT.get(run.returncode, 'unknown')}): {summary}", **evidence
        )
    if not sum(totals.values()) or totals["passed"] == 0:
        return failed(f"no test passed: {summary}", **evidence)
    if classify is None:
        missing = [area for area in AREAS if area not in areas]
    else:
        missing = [area for area in AREAS if area not in areas or not areas[area].passed]
    evidence["areas_missing"] = missing
    if missing:
        judged = failed if strict and classify is not None else warned
        return judged(
            f"{summary}; {'area' if len(missing) == 1 else 'areas'} not covered: {', '.join(missing)}"
            + (" (no test of the profile's [[smoke.areas]] rules passed in it)" if classify else ""),
            **evidence,
        )
    return passed(summary, **evidence)


def _tests_ran(xml_text: str) -> bool:
    """Whether the report holds a test (a collection error's testcase has no classname)."""
    return any(case.get("classname") for case in ElementTree.fromstring(xml_text).iter("testcase"))


def _area_order(item: tuple[str, AreaCounts]) -> tuple[int, str]:
    name = item[0]
    return (AREAS.index(name) if name in AREAS else len(AREAS), name)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"
