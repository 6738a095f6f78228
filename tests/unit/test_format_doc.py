"""The examples in docs/FORMAT.md are parsed with the real code's definitions."""

import csv
import io
import re
from pathlib import Path

from aris3nb.reference.export_files import STOCK_COLUMNS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md").read_text()


def code_blocks(language: str = "") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def test_stock_export_example_has_the_real_columns() -> None:
    block = next(b for b in code_blocks() if b.startswith("id,store_code"))
    rows = list(csv.reader(io.StringIO(block)))
    assert tuple(rows[0]) == STOCK_COLUMNS
    assert all(len(row) == len(STOCK_COLUMNS) for row in rows[1:])
    epc = rows[1][STOCK_COLUMNS.index("epc")]
    assert len(epc) == 24 and int(epc, 16) >= 0, "SGTIN-96: 24 hex digits"


def json_blocks() -> list[dict]:
    import json

    return [json.loads(b) for b in code_blocks("json") if b.lstrip().startswith("{")]


def test_manifest_example_passes_the_real_structure_check() -> None:
    from aris3nb.backup.manifest import check_structure

    manifest = next(d for d in json_blocks() if d.get("format") == "aris3nb.backup.manifest")
    assert check_structure(manifest) == []


def test_drill_report_example_is_read_by_the_real_reader(tmp_path: Path) -> None:
    import json

    from aris3nb.backup.drill import read_drill_report

    report = next(d for d in json_blocks() if d.get("format") == "aris3nb.drill.report")
    path = tmp_path / "drill_report_x.json"
    path.write_text(json.dumps(report))
    assert read_drill_report(path)["status"] == "FAIL"
    path.write_text(json.dumps({**report, "version": 2}))
    import pytest

    from aris3nb.core.errors import ManifestUnreadable

    with pytest.raises(ManifestUnreadable, match="drill report version 2"):
        read_drill_report(path)


def test_error_envelope_example_has_the_four_fields() -> None:
    envelope = next(d for d in json_blocks() if "trace_id" in d)
    assert set(envelope) == {"code", "message", "details", "trace_id"}


def test_phase_result_example_is_read_by_the_runner(tmp_path: Path) -> None:
    import json

    from aris3nb.evidence.display import RESULT_FILE, read_result

    example = next(d for d in json_blocks() if d.get("format") == "aris3nb.phase_result")
    (tmp_path / RESULT_FILE).write_text(json.dumps(example))
    assert read_result(tmp_path) == example
    assert example["verdict"] == "FAIL" and example["reasons"] == [
        f"{c['name']}: {c['detail']}" for c in example["checks"] if c["status"] == "FAIL"
    ]
