"""The last line of a run that did not end GO names its outcome without a FAIL it did not earn."""

from aris3nb.cli._common import run_outcome


def test_an_interrupted_run_is_only_interrupted() -> None:
    assert run_outcome("INTERRUPTED", "FAIL") == "INTERRUPTED"


def test_a_no_go_names_its_verdict() -> None:
    assert run_outcome("NO-GO", "FAIL") == "NO-GO (FAIL)"
