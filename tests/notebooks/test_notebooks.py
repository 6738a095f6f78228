"""The phase notebooks themselves: their parameters are what the runner passes, literals
only; they are stored without outputs (JupyterLab opens them clean, never with stale
results); and they regress (nbval) against executed copies kept here, under
``regression/`` — executed on the embedded default, with volatile values (times, digests,
ids, durations, ports, paths) sanitized by ``regression/nbval_sanitize.cfg``.

Refresh the executed copies after changing a notebook or what it shows:
``ARIS3NB_REFRESH_NOTEBOOKS=1 .venv/bin/pytest tests/notebooks -k regress`` (on a clean tree:
the gate's git check is part of the output).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from aris3nb.core.settings import load_settings
from aris3nb.evidence.marks import NOTEBOOKS_DIR, notebook_parameters
from aris3nb.evidence.runner import RunOptions, open_target
from aris3nb.phases import PHASES

REGRESSION_DIR = Path(__file__).with_name("regression")
SANITIZE = REGRESSION_DIR / "nbval_sanitize.cfg"


@pytest.mark.parametrize("phase", PHASES, ids=lambda phase: phase.name)
def test_parameters_are_the_runners_and_literals_only(phase) -> None:
    assert notebook_parameters(phase) == list(phase.parameters)
    notebook = nbformat.read(NOTEBOOKS_DIR / phase.notebook, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one parameters cell"
    for statement in ast.parse(tagged[0].source).body:
        assert isinstance(statement, ast.Assign), ast.dump(statement)
        ast.literal_eval(statement.value)  # raises on anything but a literal


@pytest.mark.parametrize("phase", PHASES, ids=lambda phase: phase.name)
def test_notebooks_are_stored_without_outputs(phase) -> None:
    notebook = nbformat.read(NOTEBOOKS_DIR / phase.notebook, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.source[:80]


@pytest.mark.parametrize("phase", PHASES, ids=lambda phase: phase.name)
def test_the_regression_copies_are_of_the_notebooks_as_they_are(phase) -> None:
    """An executed copy whose cells are not the notebook's would regress something else."""
    sources = [(c.cell_type, c.source) for c in nbformat.read(NOTEBOOKS_DIR / phase.notebook, as_version=4).cells]
    copy = [(c.cell_type, c.source) for c in nbformat.read(REGRESSION_DIR / phase.notebook, as_version=4).cells]
    assert copy == sources, f"refresh tests/notebooks/regression/{phase.notebook} (see this module's docstring)"


@pytest.fixture
def embedded_environment(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The embedded default, and the environment a notebook opened by hand would be given."""
    settings = load_settings(artifacts={"dir": tmp_path / "artifacts"})
    with open_target(RunOptions(), settings) as target:
        yield {
            **{k: v for k, v in os.environ.items() if k != "OPS_REVERT_COMMAND"},
            "DATABASE_URL": target.database_url,
            "ARIS3_BASE_URL": target.base_url,
            "ARIS3_EXPORTS_DIR": str(target.exports_dir),
            "OPS_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
            "ARIS3NB_RUN_DIR": str(tmp_path / "run"),
            "OPS_ENABLE_BACKUP_DRILL": "true",
            "MPLBACKEND": "Agg",
        }


def _refresh(env: dict[str, str]) -> None:
    from nbclient import NotebookClient

    os.environ.update(env)  # the kernel inherits this process's environment
    for phase in PHASES:
        notebook = nbformat.read(NOTEBOOKS_DIR / phase.notebook, as_version=4)
        NotebookClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            record_timing=False,
            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        ).execute()
        nbformat.write(notebook, REGRESSION_DIR / phase.notebook)


@pytest.mark.slow
def test_notebooks_regress_against_their_stored_outputs(embedded_environment: dict[str, str]) -> None:
    if os.environ.get("ARIS3NB_REFRESH_NOTEBOOKS"):
        _refresh(embedded_environment)
        pytest.skip("executed copies refreshed; run again (without ARIS3NB_REFRESH_NOTEBOOKS) to compare")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "nbval",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:pytest_alembic",  # as pyproject's addopts, which this run drops: it breaks collection
            "-o",
            "addopts=",
            "--nbval",
            "--nbval-current-env",
            f"--nbval-sanitize-with={SANITIZE}",
            "--nbval-cell-timeout=600",
            *(str(REGRESSION_DIR / phase.notebook) for phase in PHASES),
        ],
        cwd=NOTEBOOKS_DIR,
        env=embedded_environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    cells = sum(
        1
        for p in PHASES
        for c in nbformat.read(REGRESSION_DIR / p.notebook, as_version=4).cells
        if c.cell_type == "code"
    )
    assert f"{cells} passed" in done.stdout
