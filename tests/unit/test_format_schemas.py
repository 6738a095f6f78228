"""The formats' models (``aris3nb.formats``) describe what aris3nb really writes, and the JSON
Schemas committed under docs/schemas/ are the ones the models generate.

Why it matters: a schema that an auditor or another tool validates against is only worth
something if the documents aris3nb writes pass it — so the documents here are made by the real
code (a SQLite backup, its drill, an integrity check, a phase's conclusion, sealed runs) — and if
it refuses what the format forbids (a digest that is not ``sha256:<hex>``, an unknown status, a
missing field).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from aris3nb.formats import FORMATS, REGENERATE, stale_schemas
from aris3nb.formats.backup import DrillReport, Manifest
from aris3nb.formats.evidence import Evidence, PhaseResult
from aris3nb.formats.reports import GateSummary, IntegrityReport

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
DOC = (ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8")


def documented(format_name: str) -> dict[str, Any]:
    """The full example of ``format_name`` in docs/FORMAT.md."""
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC, flags=re.S) if b.lstrip().startswith("{")]
    return copy.deepcopy(next(b for b in blocks if b.get("format") == format_name))


def test_the_committed_schemas_are_the_models() -> None:
    problems = stale_schemas(SCHEMAS)
    assert problems == [], f"docs/schemas is stale: {'; '.join(problems)}; regenerate with `{REGENERATE}`"


def test_every_format_the_writers_name_has_its_model() -> None:
    """The format names and version spellings the models carry are the writers' own."""
    from aris3nb.backup.drill import REPORT_FORMAT, REPORT_VERSION
    from aris3nb.backup.manifest import FORMAT, FORMAT_VERSION
    from aris3nb.evidence import bundle
    from aris3nb.evidence.display import RESULT_FORMAT, RESULT_VERSION
    from aris3nb.gate.runner import GATE_SUMMARY_FORMAT, GATE_SUMMARY_VERSION
    from aris3nb.integrity import INTEGRITY_REPORT_FORMAT, INTEGRITY_REPORT_VERSION

    written = {
        FORMAT: ("version", FORMAT_VERSION),
        REPORT_FORMAT: ("version", REPORT_VERSION),
        GATE_SUMMARY_FORMAT: ("version", GATE_SUMMARY_VERSION),
        INTEGRITY_REPORT_FORMAT: ("version", INTEGRITY_REPORT_VERSION),
        RESULT_FORMAT: ("version", RESULT_VERSION),
        bundle.FORMAT: ("version", bundle.FORMAT_VERSION),
    }
    assert set(FORMATS) == set(written)
    for name, (field, version) in written.items():
        schema = FORMATS[name].model_json_schema()
        assert schema["properties"]["format"]["const"] == name
        assert schema["properties"][field]["const"] == version, f"{name} spells its version {field!r}"
        assert field in schema["required"] and "format" in schema["required"]


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_the_documented_example_validates(format_name: str) -> None:
    FORMATS[format_name].model_validate(documented(format_name))


# -- real documents -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """A manifest, a drill report, an integrity report and a phase result, each written by the
    real code for a small migrated and seeded SQLite database."""
    from aris3nb import migrate
    from aris3nb.backup.create import create_backup
    from aris3nb.backup.drill import restore_verify
    from aris3nb.core.settings import load_settings
    from aris3nb.evidence.display import RESULT_FILE, PhaseEvidence
    from aris3nb.integrity import IntegrityOptions, run_integrity_check
    from aris3nb.reference.seed import seed_database

    folder = tmp_path_factory.mktemp("formats")
    settings = load_settings(
        artifacts={"dir": folder / "artifacts"},
        backup={"drill_enabled": True},
        target={"exports_dir": folder / "exports"},
    )
    url = f"sqlite:///{folder / 'aris3.db'}"
    migrate.upgrade(url)
    seed_database(url, scale=50, exports_dir=settings.resolved_exports_dir())
    made = create_backup(
        url, "pre_deploy_20261128_0800", settings=settings, exports_dir=settings.resolved_exports_dir()
    )
    _, drill_path = restore_verify(made.manifest_path, settings=settings, server_url=url)
    integrity = run_integrity_check(
        IntegrityOptions(database_url=url, exports_dir=settings.resolved_exports_dir()),
        artifacts_dir=settings.artifacts.dir,
    )
    phase = PhaseEvidence("post_deploy", folder / "run" / "post_deploy")
    phase.folder.mkdir(parents=True)
    phase.keep_report(integrity.document, integrity.path)
    phase.conclude(integrity)

    def read(path: Path) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document

    return {
        "manifest": read(made.manifest_path),
        "drill": read(drill_path),
        "integrity": read(integrity.path),
        "phase_result": read(phase.folder / RESULT_FILE),
    }


def test_a_real_sqlite_manifest_validates(real: dict[str, dict[str, Any]]) -> None:
    manifest = Manifest.model_validate(real["manifest"])
    assert manifest.source.engine == "sqlite" and manifest.purpose == "manual"
    assert manifest.row_index is not None and manifest.tables and manifest.files


def test_a_real_drill_report_validates(real: dict[str, dict[str, Any]]) -> None:
    report = DrillReport.model_validate(real["drill"])
    assert report.status == "PASS" and report.rto.status == "PASS"


def test_a_real_integrity_report_validates(real: dict[str, dict[str, Any]]) -> None:
    report = IntegrityReport.model_validate(real["integrity"])
    assert report.verdict == "PASS" and report.inputs.engine == "sqlite"


def test_a_real_phase_result_validates(real: dict[str, dict[str, Any]]) -> None:
    result = PhaseResult.model_validate(real["phase_result"])
    assert result.verdict == "PASS" and result.kept


def test_a_real_gate_summary_validates(tmp_path: Path) -> None:
    """Every check runs; the live ones FAIL fast against a port nothing listens on."""
    import socket

    from aris3nb.core.settings import load_settings
    from aris3nb.gate.runner import GateOptions, run_gate

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"}, gate={"latency_samples": 1})
    report = run_gate(GateOptions(base_url=f"http://127.0.0.1:{port}", workdir=tmp_path), settings)
    summary = GateSummary.model_validate(json.loads(report.path.read_text(encoding="utf-8")))
    assert summary.verdict == "FAIL" and summary.blocking_checks and summary.counts.SKIP


def test_real_sealed_runs_validate(tmp_path: Path) -> None:
    """Two runs sealed by the bundle, the second signed: ``previous``, ``signature`` and
    ``files`` as the real code writes them (the runner's fields: the documented example's)."""
    from aris3nb.evidence import bundle

    runner_fields = {
        k: v
        for k, v in documented("aris3nb.evidence").items()
        if k not in ("format", "version", "previous", "signature", "files")
    }
    key = tmp_path / "keys" / "signing.pem"
    bundle.generate_signing_key(key)  # and signing.pem.pub beside it
    sealed = []
    for run_id, signing_key in (("20261128T094500Z-a1b2c3", None), ("20261128T101500Z-d4e5f6", key)):
        run_dir = tmp_path / "runs" / run_id
        (run_dir / "pre_deploy").mkdir(parents=True)
        (run_dir / "pre_deploy" / "result.json").write_text("{}\n")
        path = bundle.seal_run(run_dir, {**runner_fields, "run_id": run_id}, signing_key=signing_key)
        sealed.append(Evidence.model_validate(json.loads(path.read_text(encoding="utf-8"))))
    first, second = sealed
    assert first.previous is None and first.signature is None
    assert second.previous is not None and second.previous.run_id == first.run_id
    assert second.signature is not None and [f.path for f in second.files][-1] == "pre_deploy/result.json"


# -- what each model refuses ----------------------------------------------------------------


def _set(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """``document`` with the value at ``path`` replaced (``...``: removed)."""
    changed = copy.deepcopy(document)
    node: Any = changed
    for step in path[:-1]:
        node = node[step]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return changed


BROKEN: list[tuple[type[BaseModel], str, tuple[str | int, ...], Any]] = [
    # a digest that is not sha256:<64 lowercase hex>
    (Manifest, "aris3nb.backup.manifest", ("manifest_digest",), "sha256:ED0EA026"),
    (
        Manifest,
        "aris3nb.backup.manifest",
        ("tables", 0, "digest"),
        "9f72ea0cf49536e3c66c787f705186df9a4378083753ae9536d65b3ad7fcddc4",
    ),
    (Manifest, "aris3nb.backup.manifest", ("files", 0, "sha256"), "sha256:" + "9f2c" + "0" * 60),
    (
        Evidence,
        "aris3nb.evidence",
        ("files", 0, "sha256"),
        "e7f028a0fbdb6527c87ac8294a1aa498264ebef21c9d9a51b5e70fc25eda89f4",
    ),
    (Evidence, "aris3nb.evidence", ("previous", "digest"), "sha256:xyz"),
    # a status, verdict or enum value outside its set
    (DrillReport, "aris3nb.drill.report", ("status",), "PASSED"),
    (DrillReport, "aris3nb.drill.report", ("checks", 0, "status"), "WARN"),
    (GateSummary, "aris3nb.gate_summary", ("verdict",), "OK"),
    (GateSummary, "aris3nb.gate_summary", ("checks", 0, "status"), "pass"),
    (IntegrityReport, "aris3nb.integrity_report", ("checks", 0, "status"), "ERROR"),
    (PhaseResult, "aris3nb.phase_result", ("verdict",), "INTERRUPTED"),
    (Evidence, "aris3nb.evidence", ("phases", 0, "status"), "done"),
    (Evidence, "aris3nb.evidence", ("decision",), "MAYBE"),
    (Manifest, "aris3nb.backup.manifest", ("purpose",), "nightly"),
    # a missing required field
    (Manifest, "aris3nb.backup.manifest", ("manifest_digest",), ...),
    (DrillReport, "aris3nb.drill.report", ("finished_at",), ...),
    (GateSummary, "aris3nb.gate_summary", ("counts", "SKIP"), ...),
    (IntegrityReport, "aris3nb.integrity_report", ("not_applicable",), ...),
    (PhaseResult, "aris3nb.phase_result", ("checks",), ...),
    (Evidence, "aris3nb.evidence", ("files",), ...),
    # another version, a version that is a boolean, a negative count, an unknown field of a closed record
    (Manifest, "aris3nb.backup.manifest", ("version",), 2),
    (GateSummary, "aris3nb.gate_summary", ("version",), True),
    (Manifest, "aris3nb.backup.manifest", ("tables", 0, "rows"), -1),
    (Evidence, "aris3nb.evidence", ("files", 0, "mode"), 384),
    # null where a field is absent or has a value
    (Manifest, "aris3nb.backup.manifest", ("row_index",), None),
]


@pytest.mark.parametrize(
    ("model", "format_name", "path", "value"),
    BROKEN,
    ids=[f"{f}:{'.'.join(map(str, p))}={'absent' if v is ... else v!r}"[:80] for _, f, p, v in BROKEN],
)
def test_a_broken_document_is_refused(
    model: type[BaseModel], format_name: str, path: tuple[str | int, ...], value: Any
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(_set(documented(format_name), path, value))
    assert any(tuple(error["loc"][: len(path)]) == path for error in refused.value.errors()), refused.value


def test_unknown_fields_of_a_document_are_kept() -> None:
    """Version 1 grew fields without a new version: a reader keeps what it does not know."""
    document = _set(documented("aris3nb.gate_summary"), ("added_later",), {"x": 1})
    assert GateSummary.model_validate(document).model_dump()["added_later"] == {"x": 1}
