"""How a value read from a document is shown in a one-line message."""

from __future__ import annotations

import pytest

from aris3nb.core.words import recorded


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("ab12", "ab12"),
        (876544, "876544"),
        ("\n", "'\\n'"),
        ("a\x00b", "'a\\x00b'"),
        (None, "None"),
        (True, "True"),
        (["x"], "['x']"),
    ],
)
def test_a_recorded_value_is_shown_on_one_line(value: object, shown: str) -> None:
    assert recorded(value) == shown and "\n" not in recorded(value)
