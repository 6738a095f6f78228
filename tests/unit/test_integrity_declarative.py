"""Declarative integrity checks: the profile's [[integrity.sql]] / [[integrity.files]] tables
read into checks (bad keys named, one reading statement per query), and run on a small real
SQLite database: offending rows named and counted, severity, NOT APPLICABLE through
``requires``, a failing query a FAIL with its reason, export files missing, changed or extra."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from aris3nb.core.checks import SAMPLE_LIMIT, Status, Verdict
from aris3nb.core.errors import UsageError
from aris3nb.integrity import FileCheck, IntegrityOptions, SqlCheck, checks_from_toml, run_integrity_check
from aris3nb.integrity.declarative import split_statements

FOREIGN_PROFILE = Path(__file__).resolve().parents[1] / "targets" / "foreign" / "aris3nb.toml"

SHOP = """
CREATE TABLE orders (order_id TEXT PRIMARY KEY, order_no INTEGER, total_minor INTEGER, state TEXT, note TEXT);
CREATE TABLE order_lines (order_id TEXT, line_no INTEGER, amount_minor INTEGER, PRIMARY KEY (order_id, line_no));
CREATE TABLE exports (export_id TEXT PRIMARY KEY, file_name TEXT, sha256 TEXT, size INTEGER);
"""

LINES_MAKE_TOTAL = {
    "name": "lines_make_total",
    "severity": "error",
    "description": "An order's lines sum to its total.",
    "requires": ["orders.total_minor", "order_lines.amount_minor"],
    "query": """SELECT o.order_id, o.order_no, o.total_minor, COALESCE(SUM(l.amount_minor), 0) AS lines_minor
                FROM orders o LEFT JOIN order_lines l ON l.order_id = o.order_id
                GROUP BY o.order_id, o.order_no, o.total_minor
                HAVING COALESCE(SUM(l.amount_minor), 0) <> o.total_minor
                ORDER BY o.order_no""",
}


def shop(tmp_path: Path, orders: int = 3) -> str:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.executescript(SHOP)
        for n in range(1, orders + 1):
            db.execute("INSERT INTO orders VALUES (?, ?, ?, 'PAID', '10:30 at :desk, 50% off')", (f"o{n}", n, 300))
            db.executemany("INSERT INTO order_lines VALUES (?, ?, 100)", [(f"o{n}", line) for line in (1, 2, 3)])
    return f"sqlite:///{path}"


def execute(url: str, *statements: str) -> None:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        for statement in statements:
            db.execute(statement)


def run(
    url: str, tmp_path: Path, *, sql: tuple = (), files: tuple = (), exports: Path | None = None, strict: bool = False
):
    options = IntegrityOptions(
        url, exports or tmp_path / "exports", strict=strict, builtin=(), sql_checks=sql, file_checks=files
    )
    return run_integrity_check(options, artifacts_dir=tmp_path / "artifacts")


# --------------------------------------------------------------------------- reading the profile


def test_the_foreign_profile_tables_become_checks() -> None:
    table = tomllib.loads(FOREIGN_PROFILE.read_text())["integrity"]
    selection = checks_from_toml(table, base_dir=FOREIGN_PROFILE.parent)
    assert selection.builtin == () and selection.plugins == ()
    assert [c.name for c in selection.sql] == [entry["name"] for entry in table["sql"]] and len(selection.sql) == 16
    [files] = selection.files
    assert (files.name, files.root, files.path_column, files.sha256_column, files.size_column, files.key_columns) == (
        "export_files_match_digest",
        "backup.exports_dir",
        "file_name",
        "content_sha256",
        "byte_size",
        ("export_id",),
    )
    assert {c.severity for c in selection.sql} == {"error", "warning"}
    assert selection.sql[0].requires[0] == "receipts.gross_minor"


def test_the_target_profile_model_converts_too() -> None:
    from aris3nb.targets.profile import Profile

    profile = Profile.model_validate(tomllib.loads(FOREIGN_PROFILE.read_text()))
    selection = checks_from_toml(profile.integrity)
    assert [c.name for c in selection.sql] == [c.name for c in profile.integrity.sql]
    assert selection.files[0].path_column == "file_name"


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ({**LINES_MAKE_TOTAL, "severity": "warn"}, "integrity.sql[1].severity"),
        ({**LINES_MAKE_TOTAL, "serverity": "error"}, "integrity.sql[1].serverity"),
        ({**LINES_MAKE_TOTAL, "requires": ["public.orders.total_minor"]}, "integrity.sql[1].requires"),
        ({**LINES_MAKE_TOTAL, "query": "SELECT 1; DELETE FROM orders"}, "integrity.sql[1].query"),
        ({**LINES_MAKE_TOTAL, "query": "DELETE FROM orders"}, "integrity.sql[1].query"),
        ({**LINES_MAKE_TOTAL, "name": "has spaces"}, "integrity.sql[1].name"),
    ],
)
def test_a_bad_entry_is_a_usage_error_naming_its_key(entry: dict, where: str) -> None:
    with pytest.raises(UsageError, match=f"invalid integrity checks: {re.escape(where)}:"):
        checks_from_toml({"sql": [LINES_MAKE_TOTAL, entry]})


def test_a_bad_check_given_as_options_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"options\.sql\[0\]\.severity"):
        run(shop(tmp_path), tmp_path, sql=({**LINES_MAKE_TOTAL, "severity": "fatal"},))
    with pytest.raises(ValidationError):
        SqlCheck(name="x", severity="error", query="UPDATE orders SET state = 'X'")


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("SELECT 1", 1),
        ("SELECT 1;\n  ", 1),
        ("SELECT ';' AS a, 'it''s; fine' AS b -- a comment; still one\n", 1),
        ('SELECT 1 AS "odd;name" /* a; b */', 1),
        ("SELECT $$ ; $$, $tag$ ; $tag$", 1),
        ("SELECT E'\\'; still a string'", 1),
        ("SELECT 1; SELECT 2", 2),
        ("SELECT 1; -- only a comment after", 1),
    ],
)
def test_statements_are_split_outside_quotes_and_comments(query: str, count: int) -> None:
    assert len(split_statements(query)) == count


# --------------------------------------------------------------------------- running SQL checks


def test_sound_data_passes_and_offending_rows_are_named_and_counted(tmp_path: Path) -> None:
    url = shop(tmp_path, orders=SAMPLE_LIMIT + 3)
    report = run(url, tmp_path, sql=(LINES_MAKE_TOTAL,))
    [result] = report.results
    assert (result.status, report.verdict) == (Status.PASS, Verdict.PASS)
    assert result.detail == "no offending row: An order's lines sum to its total."
    execute(url, "UPDATE order_lines SET amount_minor = 90")  # every order is now 30 short
    [result] = run(url, tmp_path, sql=(LINES_MAKE_TOTAL,)).results
    assert result.status is Status.FAIL and result.evidence["offending"] == SAMPLE_LIMIT + 3
    assert len(result.evidence["sample"]) == SAMPLE_LIMIT
    assert result.evidence["sample"][0] == {"order_id": "o1", "order_no": 1, "total_minor": 300, "lines_minor": 270}
    assert (
        result.detail
        == f"{SAMPLE_LIMIT + 3} offending rows; first: order_id=o1, order_no=1, total_minor=300, lines_minor=270"
    )
    assert result.evidence["columns"] == ["order_id", "order_no", "total_minor", "lines_minor"]


def test_a_pass_over_tables_without_rows_says_it_holds_vacuously(tmp_path: Path) -> None:
    """No offending row among no rows is said so: an auditor never reads it as data checked."""
    url = shop(tmp_path, orders=0)
    [result] = run(url, tmp_path, sql=(LINES_MAKE_TOTAL,)).results
    assert result.status is Status.PASS
    assert (
        result.detail
        == "no offending row: An order's lines sum to its total. (vacuous: orders, order_lines hold no rows)"
    )
    assert result.evidence["empty_tables"] == ["orders", "order_lines"] and result.evidence["vacuous"] is True
    execute(url, "INSERT INTO orders VALUES ('o1', 1, 0, 'PAID', '')")  # an order with no lines, total 0
    [result] = run(url, tmp_path, sql=(LINES_MAKE_TOTAL,)).results
    assert result.status is Status.PASS and "vacuous" not in result.detail and result.evidence["vacuous"] is False
    assert result.evidence["empty_tables"] == ["order_lines"]
    execute(url, "INSERT INTO order_lines VALUES ('o1', 1, 100)")
    [result] = run(url, tmp_path, sql=(LINES_MAKE_TOTAL,)).results
    assert result.status is Status.FAIL and "vacuous" not in result.detail and result.evidence["empty_tables"] == []
    execute(url, "UPDATE orders SET total_minor = 100")
    [result] = run(url, tmp_path, sql=(LINES_MAKE_TOTAL,)).results
    assert result.status is Status.PASS and result.evidence["empty_tables"] == []


def test_a_view_is_never_read_to_say_a_pass_is_vacuous(tmp_path: Path) -> None:
    """Reading one row of a view may cost as much as the view: its emptiness is not looked at."""
    url = shop(tmp_path, orders=0)
    execute(url, "CREATE VIEW paid_orders AS SELECT * FROM orders WHERE state = 'PAID'")
    check = {
        "name": "paid_have_numbers",
        "severity": "error",
        "requires": ["paid_orders.order_no"],
        "query": "SELECT * FROM paid_orders WHERE order_no IS NULL",
    }
    [result] = run(url, tmp_path, sql=(check,)).results
    assert result.status is Status.PASS and "vacuous" not in result.detail and result.evidence["empty_tables"] == []


def test_a_warning_check_warns_and_strict_fails(tmp_path: Path) -> None:
    url = shop(tmp_path)
    execute(url, "UPDATE orders SET state = 'LOST' WHERE order_id = 'o2'")
    known = {
        "name": "known_order_states",
        "severity": "warning",
        "requires": ["orders.state"],
        "query": "SELECT order_id, state FROM orders WHERE state NOT IN ('PAID', 'VOID')",
    }
    report = run(url, tmp_path, sql=(known,))
    assert (report.results[0].status, report.verdict) == (Status.WARN, Verdict.PASS_WITH_WARNINGS)
    assert report.results[0].detail == "1 offending row; first: order_id=o2, state=LOST"
    assert run(url, tmp_path, sql=(known,), strict=True).verdict is Verdict.FAIL


def test_queries_run_verbatim_with_percent_signs_and_colons(tmp_path: Path) -> None:
    url = shop(tmp_path)
    check = {
        "name": "notes",
        "severity": "error",
        "query": "SELECT order_id, note FROM orders WHERE note LIKE '%50\\% off' ESCAPE '\\' AND note LIKE '%:desk%'",
    }
    [result] = run(url, tmp_path, sql=(check,)).results
    assert result.status is Status.FAIL and result.evidence["offending"] == 3, result.detail
    assert result.evidence["sample"][0]["note"] == "10:30 at :desk, 50% off"


def test_a_missing_table_or_column_makes_a_check_not_applicable(tmp_path: Path) -> None:
    url = shop(tmp_path)
    absent_column = {**LINES_MAKE_TOTAL, "name": "absent_column", "requires": ["orders.gross_minor", "orders"]}
    absent_table = {
        **LINES_MAKE_TOTAL,
        "name": "absent_table",
        "requires": ["sales.total", "sales.status", "order_lines.amount_minor"],
    }
    report = run(url, tmp_path, sql=(LINES_MAKE_TOTAL, absent_column, absent_table))
    statuses = {r.name: (r.status, r.detail) for r in report.results}
    assert statuses == {
        "lines_make_total": (Status.PASS, "no offending row: An order's lines sum to its total."),
        "absent_column": (Status.WARN, "not applicable: needs orders.gross_minor, absent here"),
        "absent_table": (Status.WARN, "not applicable: needs sales, absent here"),
    }
    result = report.results[2]
    assert result.evidence == {"not_applicable": True, "missing": ["sales.total", "sales.status"]}
    assert report.document["not_applicable"] == {"count": 2, "checks": ["absent_column", "absent_table"]}
    assert report.document["counts"] == {"PASS": 1, "WARN": 2, "FAIL": 0, "SKIP": 0}
    assert report.verdict is Verdict.PASS_WITH_WARNINGS and [r.name for r in report.not_applicable] == [
        "absent_column",
        "absent_table",
    ]


def test_requirements_are_compared_case_insensitively(tmp_path: Path) -> None:
    [result] = run(shop(tmp_path), tmp_path, sql=({**LINES_MAKE_TOTAL, "requires": ["ORDERS.Total_Minor"]},)).results
    assert result.status is Status.PASS


def test_a_query_that_fails_is_a_fail_with_the_reason_and_the_next_check_still_runs(tmp_path: Path) -> None:
    url = shop(tmp_path)
    undeclared = {
        "name": "undeclared",
        "severity": "error",
        "requires": ["orders"],
        "query": "SELECT receipt_id FROM receipts",
    }
    report = run(url, tmp_path, sql=(undeclared, LINES_MAKE_TOTAL))
    assert [(r.name, r.status) for r in report.results] == [
        ("undeclared", Status.FAIL),
        ("lines_make_total", Status.PASS),
    ]
    assert report.results[0].detail == "the query of undeclared failed: no such table: receipts"


def test_a_query_cannot_write(tmp_path: Path) -> None:
    url = shop(tmp_path)
    sneaky = {
        "name": "sneaky",
        "severity": "error",
        "query": "WITH gone AS (DELETE FROM orders RETURNING order_id) SELECT order_id FROM gone",
    }
    [result] = run(url, tmp_path, sql=(sneaky,)).results
    assert result.status is Status.FAIL
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (3,)


def test_a_runaway_query_is_interrupted_by_the_statement_timeout(tmp_path: Path) -> None:
    url = shop(tmp_path)
    runaway = {
        "name": "runaway",
        "severity": "error",
        "query": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
    }
    options = IntegrityOptions(
        url, tmp_path, builtin=(), sql_checks=(runaway, LINES_MAKE_TOTAL), statement_timeout_sec=0.2
    )
    report = run_integrity_check(options, artifacts_dir=tmp_path / "artifacts")
    assert [(r.name, r.status) for r in report.results] == [("runaway", Status.FAIL), ("lines_make_total", Status.PASS)]
    assert report.results[0].detail == "the query of runaway failed: interrupted"


def test_nothing_selected_is_refused(tmp_path: Path) -> None:
    url = shop(tmp_path)
    with pytest.raises(UsageError, match="no integrity check is selected"):
        run(url, tmp_path)
    with pytest.raises(UsageError, match="unknown built-in invariant set 'aris4'; known: reference"):
        run_integrity_check(IntegrityOptions(url, tmp_path, builtin=("aris4",)), artifacts_dir=tmp_path)
    assert not (tmp_path / "artifacts").exists()


def test_two_checks_with_one_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="two integrity checks are named 'lines_make_total'"):
        run(shop(tmp_path), tmp_path, sql=(LINES_MAKE_TOTAL, LINES_MAKE_TOTAL))


# --------------------------------------------------------------------------- file checks

EXPORT_FILES = FileCheck(
    name="export_files",
    severity="error",
    requires=("exports.file_name", "exports.sha256", "exports.size"),
    key_columns=("export_id",),
    path_column="file_name",
    sha256_column="sha256",
    size_column="size",
    query="SELECT export_id, file_name, sha256, size FROM exports WHERE file_name IS NOT NULL",
)


def exports(url: str, folder: Path, files: dict[str, bytes]) -> None:
    for n, (name, content) in enumerate(sorted(files.items())):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
        execute(
            url,
            f"INSERT INTO exports VALUES ('e{n}', '{name}', '{hashlib.sha256(content).hexdigest()}', {len(content)})",
        )


def test_export_files_missing_changed_or_extra_are_named(tmp_path: Path) -> None:
    url, folder = shop(tmp_path), tmp_path / "exports"
    exports(url, folder, {"a/one.csv": b"1\n", "a/two.csv": b"2\n", "three.csv": b"3\n", "four.csv": b"4\n"})
    report = run(url, tmp_path, files=(EXPORT_FILES,))
    assert report.results[0].status is Status.PASS, report.results[0].detail
    assert (
        report.results[0].detail == f"4 files present with their recorded SHA-256 and size, none extra under {folder}"
    )
    (folder / "a" / "one.csv").unlink()
    (folder / "a" / "two.csv").write_bytes(b"two\n")
    (folder / "four.csv").write_bytes(b"5\n")  # same size, other content
    (folder / "stray.csv").write_bytes(b"?\n")
    execute(url, "INSERT INTO exports VALUES ('e9', '../etc/passwd', 'x', 1)")
    [result] = run(url, tmp_path, files=(EXPORT_FILES,)).results
    assert result.status is Status.FAIL and (result.evidence["offending"], result.evidence["extra"]) == (5, 1)
    problems = {row["file_name"]: row["problem"].split(" ")[0] for row in result.evidence["sample"]}
    assert problems == {
        "a/one.csv": "file",
        "a/two.csv": "size",
        "four.csv": "SHA-256",
        "../etc/passwd": "unsafe",
        "stray.csv": "extra",
    }
    assert result.evidence["sample"][0] == {"export_id": "e0", "file_name": "a/one.csv", "problem": "file missing"}
    assert result.detail.startswith(
        "5 problems with 5 vouched-for files and 1 extra; first: export_id=e0, "
        "file_name=a/one.csv, problem=file missing"
    )


def test_a_recorded_digest_in_another_spelling_does_not_match(tmp_path: Path) -> None:
    url, folder = shop(tmp_path), tmp_path / "exports"
    exports(url, folder, {"one.csv": b"1\n"})
    execute(url, "UPDATE exports SET sha256 = upper(sha256)")
    [result] = run(url, tmp_path, files=(EXPORT_FILES,)).results
    assert result.status is Status.FAIL and result.evidence["sample"][0]["problem"].startswith("SHA-256 ")


def test_a_missing_exports_folder_names_every_file_and_the_option(tmp_path: Path) -> None:
    url = shop(tmp_path)
    exports(url, tmp_path / "exports", {"one.csv": b"1\n"})
    [result] = run(url, tmp_path, files=(EXPORT_FILES,), exports=tmp_path / "nowhere").results
    assert result.status is Status.FAIL and "does not exist; give --exports-dir" in result.detail


def test_a_file_check_whose_query_lacks_a_column_fails_naming_it(tmp_path: Path) -> None:
    check = EXPORT_FILES.model_copy(update={"query": "SELECT export_id, file_name FROM exports"})
    [result] = run(shop(tmp_path), tmp_path, files=(check,)).results
    assert result.status is Status.FAIL
    assert result.detail == "the query returns no column sha256, size (it returns export_id, file_name)"


def test_a_file_check_root_is_relative_to_the_profile(tmp_path: Path) -> None:
    entry = {**EXPORT_FILES.model_dump(), "root": "exports"}
    [check] = checks_from_toml({"files": [entry]}, base_dir=tmp_path / "target").files
    assert check.root == str((tmp_path / "target" / "exports").resolve())
    with pytest.raises(UsageError, match=r"integrity\.files\[0\]"):
        checks_from_toml({"files": [{**entry, "root": "backup.exports"}]})
