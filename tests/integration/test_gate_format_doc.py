"""The gate summary and integrity report examples in the format documentation are read with
the real readers, and have the shape the real code writes (same top-level fields, same
checks in the same order, same fields per check); readers refuse unknown formats and versions."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from aris3nb import migrate
from aris3nb.core.checks import Status, Verdict, blocking_checks, status_counts
from aris3nb.core.errors import UsageError
from aris3nb.core.settings import load_settings
from aris3nb.gate import GATE_CHECKS, GateOptions, read_gate_summary, run_gate
from aris3nb.integrity import INTEGRITY_CHECKS, IntegrityOptions, read_integrity_report, run_integrity_check
from aris3nb.reference.seed import seed_database

DOCS = Path(__file__).resolve().parents[2] / "docs"


def example(format_name: str) -> dict:
    """The JSON example of ``format_name`` in docs/FORMAT.md."""
    text = (DOCS / "FORMAT.md").read_text()
    blocks = [b for b in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL) if f'"format": "{format_name}"' in b]
    assert len(blocks) == 1, f"one example of {format_name} expected, found {len(blocks)}"
    return json.loads(blocks[0])


def written(tmp_path: Path, document: dict, name: str) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def assert_consistent(document: dict) -> None:
    """verdict, counts, exit code and blocking checks agree with the checks (the format's rules)."""
    from aris3nb.core.checks import CheckResult

    results = [
        CheckResult(c["name"], Status(c["status"]), c["detail"], c["duration_sec"], c["evidence"])
        for c in document["checks"]
    ]
    statuses = {r.status for r in results}
    expected = (
        Verdict.FAIL
        if Status.FAIL in statuses or (document["strict"] and Status.WARN in statuses)
        else Verdict.PASS_WITH_WARNINGS
        if Status.WARN in statuses
        else Verdict.PASS
    )
    assert document["verdict"] == expected
    assert document["exit_code"] == (1 if expected is Verdict.FAIL else 0)
    assert document["counts"] == status_counts(results)
    assert document["blocking_checks"] == [r.name for r in blocking_checks(results, strict=document["strict"])]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_gate_summary_example_has_the_real_shape(tmp_path: Path) -> None:
    doc = read_gate_summary(written(tmp_path, example("aris3nb.gate_summary"), "doc.json"))
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"}, gate={"latency_samples": 1})
    real = run_gate(GateOptions(base_url=f"http://127.0.0.1:{closed_port()}", workdir=tmp_path), settings).summary
    assert list(doc) == list(real)
    assert list(doc["inputs"]) == list(real["inputs"]) and list(doc["code"]) == list(real["code"])
    assert [c["name"] for c in doc["checks"]] == GATE_CHECKS.names() == [c["name"] for c in real["checks"]]
    assert all(list(c) == ["name", "status", "detail", "duration_sec", "evidence"] for c in doc["checks"])
    assert_consistent(doc)
    assert_consistent(real)
    latency = next(c for c in doc["checks"] if c["name"] == "latency.health")["evidence"]
    assert latency["budget_ms"] == 120 and latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]


def test_the_integrity_report_example_has_the_real_shape(tmp_path: Path, sqlite_url: str) -> None:
    doc = read_integrity_report(written(tmp_path, example("aris3nb.integrity_report"), "doc.json"))
    migrate.upgrade(sqlite_url)
    seed_database(sqlite_url, scale=0, exports_dir=tmp_path / "exports")
    real = run_integrity_check(IntegrityOptions(sqlite_url, tmp_path / "exports"), artifacts_dir=tmp_path).report
    assert list(doc) == list(real) and list(doc["inputs"]) == list(real["inputs"])
    assert [c["name"] for c in doc["checks"]] == INTEGRITY_CHECKS.names() == [c["name"] for c in real["checks"]]
    for documented, actual in zip(doc["checks"], real["checks"], strict=True):
        assert sorted(documented["evidence"]) == sorted(actual["evidence"]), documented["name"]
    assert_consistent(doc)
    failing = next(c for c in doc["checks"] if c["status"] == "FAIL")
    assert failing["name"] == "pos.payments_cover_total" and failing["evidence"]["sample"][0]["missing"] == 100


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"version": 2}, "version 2; this aris3nb reads version 1"),
        ({"format": "aris3nb.manifest"}, "is not a aris3nb.gate_summary document"),
    ],
)
def test_readers_refuse_unknown_formats_and_versions(tmp_path: Path, change: dict, fragment: str) -> None:
    document = {**example("aris3nb.gate_summary"), **change}
    with pytest.raises(UsageError, match=re.escape(fragment)):
        read_gate_summary(written(tmp_path, document, "x.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        read_gate_summary(tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("format_name", "reader"),
    [("aris3nb.gate_summary", read_gate_summary), ("aris3nb.integrity_report", read_integrity_report)],
)
def test_readers_refuse_a_field_of_the_wrong_type_naming_it_without_its_value(
    tmp_path: Path, format_name: str, reader: Any
) -> None:
    document = example(format_name)
    document["verdict"] = "s3cret-VALUE"
    with pytest.raises(UsageError) as caught:
        reader(written(tmp_path, document, "x.json"))
    assert f"is not a valid {format_name} document: x.json: verdict: Input should be " in str(caught.value)
    assert "s3cret-VALUE" not in str(caught.value) and "\n" not in str(caught.value)
