"""The readers judge documents with the formats' models (``aris3nb.formats.reading``).

Why it matters: a reader that checks structure by hand drifts from the documented format and
from the JSON Schemas auditors validate against; with one model per document the three agree.
What a reader says must stay usable and safe: one line, naming the file and the field's path,
never the value found there (a field could hold a secret), in the error class and exit code the
command already had. Documents of version 1 spelled ``format_version`` are still read; fields a
document does not declare are kept (docs/FORMAT.md §9: version 1 grew fields), while an unknown
field of a record FORMAT.md lists exhaustively (a file entry, a chunk, a check) is refused.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from aris3nb.backup.drill import read_drill_report
from aris3nb.backup.manifest import check_structure, manifest_digest
from aris3nb.core.errors import EvidenceInvalid, ManifestUnreadable
from aris3nb.evidence.bundle import read_evidence
from aris3nb.formats import Manifest
from aris3nb.formats.reading import DocumentInvalid, field_path, one_line, validate

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8")
SECRET = "s3cr3t-Pa55word"


def documented(format_name: str) -> dict[str, Any]:
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC, flags=re.S) if b.lstrip().startswith("{")]
    return copy.deepcopy(next(b for b in blocks if b.get("format") == format_name))


def resealed(document: dict[str, Any]) -> dict[str, Any]:
    document["manifest_digest"] = manifest_digest(document)
    return document


# -- the one helper -----------------------------------------------------------------------


def test_a_wrong_typed_field_is_named_by_its_path_and_never_quoted() -> None:
    document = documented("aris3nb.backup.manifest")
    document["tables"][1]["rows"] = SECRET
    with pytest.raises(DocumentInvalid) as refused:
        validate(Manifest, document, "manifest.json")
    assert refused.value.problems == ["manifest.json: tables.stock_items.rows: Input should be a valid integer"]
    assert SECRET not in str(refused.value) and "\n" not in str(refused.value)


def test_the_alternatives_of_a_field_make_one_line() -> None:
    document = documented("aris3nb.backup.manifest")
    document["tables"][1]["chunks"][0]["last_key"] = [{"password": SECRET}]
    with pytest.raises(DocumentInvalid) as refused:
        validate(Manifest, document, "manifest.json")
    [line] = refused.value.problems
    assert line.startswith("manifest.json: tables.stock_items.chunks.0.last_key.0: Input should be a valid string")
    assert SECRET not in line and "password" not in line


def test_null_where_a_field_is_absent_or_has_a_value_is_refused() -> None:
    document = documented("aris3nb.backup.manifest")
    document["row_index"] = None
    with pytest.raises(DocumentInvalid, match=r"^manifest.json: row_index: Input should be an object$"):
        validate(Manifest, document, "manifest.json")


def test_a_hostile_key_stays_on_one_line() -> None:
    document = documented("aris3nb.backup.manifest")
    document["files"][0]["mode\nx"] = 384
    with pytest.raises(DocumentInvalid) as refused:
        validate(Manifest, document, "manifest.json")
    assert refused.value.problems == ["manifest.json: files.0.'mode\\nx': Extra inputs are not permitted"]


def test_a_list_element_is_named_only_by_a_plain_name() -> None:
    document = {"tables": [{"name": "a.b"}, {"name": "stock"}]}
    assert field_path(("tables", 0, "rows"), document, missing=True) == "tables.0.rows"
    assert field_path(("tables", 1, "rows"), document, missing=True) == "tables.stock.rows"
    assert field_path(("tables", 1, "str"), document) == "tables.stock", "a union's label is not a step"


def test_many_problems_are_one_line_with_a_count() -> None:
    assert one_line(["a", "b", "c", "d", "e"]) == "a; b; c (and 2 more)"


# -- the manifest (validate_backup's structure) -------------------------------------------


def test_the_manifest_names_the_field_path_without_its_value() -> None:
    document = documented("aris3nb.backup.manifest")
    document["source"]["server"] = 5432  # a secret would be text; the type is what is wrong
    document["tables"][1]["chunks"][1]["rows"] = "2500"
    assert check_structure(resealed(document)) == [
        "manifest.json: source.server: Input should be a valid string",
        "manifest.json: tables.stock_items.chunks.1.rows: Input should be a valid integer",
    ]


def test_the_manifest_keeps_unknown_fields_and_refuses_them_in_a_record() -> None:
    document = documented("aris3nb.backup.manifest")
    document["added_later"] = {"x": 1}  # version 1 grew fields: forward compatible
    assert check_structure(resealed(document)) == []
    document["files"][0]["mode"] = 384  # a file entry's fields are listed exhaustively
    assert check_structure(resealed(document)) == ["manifest.json: files.0.mode: Extra inputs are not permitted"]


def test_the_manifest_with_the_older_version_field_is_read() -> None:
    document = documented("aris3nb.backup.manifest")
    document["format_version"] = document.pop("version")
    assert check_structure(resealed(document)) == []
    document["version"] = 1
    assert check_structure(resealed(document)) == ["version None is not supported (this aris3nb reads [1])"]


def test_a_manifest_of_before_its_purpose_was_recorded_is_read() -> None:
    document = documented("aris3nb.backup.manifest")
    del document["purpose"]
    assert check_structure(resealed(document)) == []


@pytest.mark.parametrize("version", [2, True, "1", 1.0])
def test_a_manifest_of_another_version_is_refused_in_one_line(version: Any) -> None:
    document = documented("aris3nb.backup.manifest")
    document["version"] = version
    [problem] = check_structure(resealed(document))
    assert problem.startswith("version ") and "is not supported (this aris3nb reads [1])" in problem


def test_what_no_model_can_say_is_still_checked() -> None:
    document = documented("aris3nb.backup.manifest")
    document["tables"][1]["chunks"][0]["digest"] = "0" * 64
    document["files"].append(dict(document["files"][0], path="../outside.csv"))
    problems = check_structure(resealed(document))
    assert any("'../outside.csv': unsafe path" in p for p in problems)
    assert any("its chunks' digests do not make its table digest" in p for p in problems)
    document = documented("aris3nb.backup.manifest")
    document["name"] = "other"
    assert check_structure(document) == [
        "manifest digest does not match its content: the manifest was changed after it was written"
    ]


# -- the drill report ---------------------------------------------------------------------


def test_a_drill_report_with_a_wrong_typed_field_is_refused_naming_it(tmp_path: Path) -> None:
    report = documented("aris3nb.drill.report")
    report["checks"][0]["duration_sec"] = SECRET
    path = tmp_path / "drill_report_x.json"
    path.write_text(json.dumps(report))
    with pytest.raises(ManifestUnreadable) as refused:
        read_drill_report(path)
    assert str(refused.value) == f"{path}: checks.0.duration_sec: Input should be a valid number"
    assert refused.value.exit_code == 2


def test_a_drill_report_of_before_profiles_and_with_the_older_version_field_is_read(tmp_path: Path) -> None:
    report = documented("aris3nb.drill.report")
    report["format_version"] = report.pop("version")
    del report["profile"], report["warnings"]
    report["engine"] = None  # a drill that stopped before it had a valid manifest
    report["added_later"] = [1]
    path = tmp_path / "drill_report_x.json"
    path.write_text(json.dumps(report))
    assert read_drill_report(path)["added_later"] == [1]
    report["checks"][0]["added_later"] = 1  # a check's fields are listed exhaustively
    path.write_text(json.dumps(report))
    with pytest.raises(ManifestUnreadable, match=r"checks\.0\.added_later: Extra inputs are not permitted$"):
        read_drill_report(path)


# -- evidence.json ------------------------------------------------------------------------


def test_evidence_names_the_field_path_and_keeps_the_runners_fields_opaque(tmp_path: Path) -> None:
    from aris3nb.evidence.bundle import seal_run

    run = tmp_path / "runs" / "20261128T094500Z-a1b2c3"
    run.mkdir(parents=True)
    (run / "x.txt").write_text("x\n")
    body = {
        k: v
        for k, v in documented("aris3nb.evidence").items()
        if k not in ("format", "version", "previous", "signature", "files")
    }
    body["parameters"] = ["what the runner of another day wrote"]  # not the bundle's to judge
    path = seal_run(run, {**body, "run_id": run.name})
    document = json.loads(path.read_text())
    assert read_evidence(path)["parameters"] == body["parameters"]
    document["files"][0]["size"] = SECRET
    path.write_text(json.dumps(document))
    with pytest.raises(EvidenceInvalid) as refused:
        read_evidence(path)
    assert refused.value.problems == ["evidence.json: files.0.size: Input should be a valid integer"]
    assert SECRET not in str(refused.value) and refused.value.exit_code == 1
