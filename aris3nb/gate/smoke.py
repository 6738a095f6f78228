"""The smoke check: the pytest target run as a subprocess, with a timeout and a JUnit XML
report, judged per playbook area from the report's ``area`` properties.

Any red area (a failed or erroring test in it) is a FAIL naming the area; the detail line
is pytest's own count line. A target that does not exist is a usage error (exit 2), found
before anything runs. The run's output and JUnit report are kept as evidence files, with
known secrets masked.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException, ElementTree

from aris3nb.core.checks import SAMPLE_LIMIT, Outcome, failed, passed, warned
from aris3nb.core.errors import UsageError
from aris3nb.core.redact import redact_text
from aris3nb.resources import SMOKE_DIR, SMOKE_PYTEST_INI, is_packaged_smoke

#: The playbook's critical areas, in its order.
#: Test-generation plugins a smoke run has no use for; loading them costs ~1.7 s of startup.
SKIPPED_PLUGINS = ("-p", "no:schemathesis", "-p", "no:hypothesispytest")
AREAS = ("auth", "stock", "transfers", "pos", "reports", "exports")
NO_AREA = "(no area)"
#: pytest's closing count line, e.g. "1 failed, 17 passed in 1.20s".
_COUNT_LINE = re.compile(r"^=*\s*(?P<line>(\d+ \w+(, )?)+.* in [\d.]+s( \([\d:]+\))?)\s*=*$")
_PYTEST_EXIT = {0: "all tests passed", 1: "tests failed", 2: "interrupted", 3: "internal error",
                4: "usage error", 5: "no tests collected"}


def check_pytest_target(target: str, cwd: Path) -> str:
    """``target`` (``PATH`` or ``PATH::NODE``) when its path exists; ``UsageError`` otherwise."""
    path = target.split("::", 1)[0]
    if not path.strip():
        raise UsageError("--pytest-target is empty; give a test file or folder, e.g. tests/smoke/test_post_merge_readiness.py")
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
        return {"status": "red" if self.red else "green", "passed": self.passed, "failed": self.failed,
                "errors": self.errors, "skipped": self.skipped, "failing_tests": self.failing_tests[:SAMPLE_LIMIT]}


def areas_from_junit(xml_text: str) -> dict[str, AreaCounts]:
    """Per-area counts from a JUnit XML report (xunit1 ``<property name="area">``)."""
    root = ElementTree.fromstring(xml_text)
    areas: dict[str, AreaCounts] = {}
    for case in root.iter("testcase"):
        area = next((p.get("value") for p in case.iter("property") if p.get("name") == "area"), None) or NO_AREA
        counts = areas.setdefault(area, AreaCounts())
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
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


def run_pytest(target: str, *, cwd: Path, timeout_sec: float, env: dict[str, str]) -> SmokeRun:
    """``python -m pytest -q TARGET --junitxml=...`` in its own process group, killed whole
    at ``timeout_sec``."""
    with tempfile.TemporaryDirectory(prefix=f"aris3nb-smoke-pid{os.getpid()}-") as folder:
        junit = Path(folder) / "junit.xml"
        own_config: list[str] = []
        if is_packaged_smoke(target, cwd):
            own_config = _packaged_suite_config(Path(folder))
            env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}  # no pytest-rewritten .pyc left in site-packages
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SKIPPED_PLUGINS, *own_config,
                   "-o", "junit_family=xunit1", f"--junitxml={junit}", target]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout_sec)
            returncode: int | None = process.returncode
        except subprocess.TimeoutExpired:
            _kill_group(process)
            output, _ = process.communicate()
            returncode = None
        duration = time.perf_counter() - started
        xml_text = junit.read_text(encoding="utf-8") if junit.is_file() else None
    return SmokeRun(returncode, output or "", xml_text, duration)


def _packaged_suite_config(folder: Path) -> list[str]:
    """pytest options for the smoke suite shipped inside an installed aris3nb: a config file of
    its own (its markers registered) and its own folder as rootdir, whatever ``pytest.ini`` or
    ``pyproject.toml`` lies above the environment it is installed in; the confcutdir keeps its
    ``conftest.py`` in and any conftest above it out."""
    ini = folder / "pytest.ini"
    ini.write_text(SMOKE_PYTEST_INI, encoding="utf-8")
    return ["-c", str(ini), "--rootdir", str(SMOKE_DIR), "--confcutdir", str(SMOKE_DIR)]


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def judge_smoke(run: SmokeRun, *, timeout_sec: float, secrets: list[str | None]) -> Outcome:
    """Release only what passes the critical smoke in every area (auth, stock, transfers,
    POS, reports, exports): one red area is a NO-GO, whatever the others say."""
    tail = redact_text("\n".join(run.output.strip().splitlines()[-40:]), secrets)
    evidence: dict[str, Any] = {"pytest_exit_code": run.returncode, "duration_sec": round(run.duration_sec, 3),
                                "output_tail": tail}
    if run.returncode is None:
        return failed(f"pytest did not finish within {timeout_sec:g} s and was killed", **evidence)
    counts_text = count_line(run.output)
    if run.junit_xml is None:
        return failed(f"pytest exited {run.returncode} ({_PYTEST_EXIT.get(run.returncode, 'unknown')}) without a JUnit "
                      f"report: {counts_text or _last_line(tail)}", **evidence)
    try:
        areas = areas_from_junit(run.junit_xml)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        return failed(f"the JUnit report cannot be read: {exc}", **evidence)
    evidence["areas"] = {name: counts.to_dict() for name, counts in sorted(areas.items(), key=_area_order)}
    totals = Counter[str]()
    for counts in areas.values():
        totals.update({"passed": counts.passed, "failed": counts.failed, "errors": counts.errors,
                       "skipped": counts.skipped})
    evidence["totals"] = dict(totals)
    summary = counts_text or ", ".join(f"{n} {k}" for k, n in totals.items() if n) or "no tests"
    red = [name for name, counts in sorted(areas.items(), key=_area_order) if counts.red]
    if red:
        return failed(f"red area(s): {', '.join(red)} — {summary}", **evidence)
    if run.returncode != 0:
        return failed(f"pytest exited {run.returncode} ({_PYTEST_EXIT.get(run.returncode, 'unknown')}): {summary}",
                      **evidence)
    if not sum(totals.values()) or totals["passed"] == 0:
        return failed(f"no test passed: {summary}", **evidence)
    missing = [area for area in AREAS if area not in areas]
    evidence["areas_missing"] = missing
    if missing:
        return warned(f"{summary}; area(s) not covered: {', '.join(missing)}", **evidence)
    return passed(summary, **evidence)


def _area_order(item: tuple[str, AreaCounts]) -> tuple[int, str]:
    name = item[0]
    return (AREAS.index(name) if name in AREAS else len(AREAS), name)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"
