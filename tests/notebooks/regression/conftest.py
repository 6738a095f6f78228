"""nbval, run on the executed copies here: the phase result each notebook carries as an output
(application/vnd.aris3nb.phase-result+json) is machine data full of run ids, durations and
digests; the regression compares what a reader sees (the sanitized text and HTML), not it."""

from __future__ import annotations

RESULT_MIME = "application/vnd.aris3nb.phase-result+json"


def pytest_collection_modifyitems(items: list) -> None:
    for item in items:
        notebook = getattr(item, "parent", None)
        skip = getattr(notebook, "skip_compare", None)
        if isinstance(skip, tuple) and RESULT_MIME not in skip:
            notebook.skip_compare = (*skip, RESULT_MIME)
