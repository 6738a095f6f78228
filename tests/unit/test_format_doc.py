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
