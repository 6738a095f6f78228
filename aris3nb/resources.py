"""Where aris3nb's shipped files are: the phase notebooks, the reference schema's Alembic
history and its ``alembic.ini``, and the reference smoke suite.

The repository keeps them at its top, as the project was specified (``notebooks/``,
``migrations/``, ``alembic.ini``, ``tests/smoke/``). A wheel carries the same tree inside the
package, under ``aris3nb/_data/`` (``pyproject.toml`` maps the repository root to the package
``aris3nb._data``), so relative paths are the same in both and ``alembic.ini``'s
``%(here)s/migrations`` holds in both. An installed wheel reads its own copy, found with
``importlib.resources``; a checkout — and an editable install, which reads the checkout — has
no ``aris3nb/_data`` and reads the repository's files.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from aris3nb.core.errors import Aris3nbError


def _data_root() -> tuple[Path, bool]:
    package = files("aris3nb")
    # Alembic, papermill and pytest need real files: aris3nb is only ever installed unpacked
    # (a wheel, an editable install or a checkout), never imported from a zip.
    if not isinstance(package, Path):
        raise Aris3nbError(f"aris3nb is loaded from {package!r}, not from a folder; install it with pip")
    packaged = package / "_data"
    return (packaged, True) if packaged.is_dir() else (package.parent, False)


#: The folder the shipped files are in: ``<site-packages>/aris3nb/_data`` installed, else the checkout.
DATA_ROOT, PACKAGED = _data_root()
#: The playbook's phase notebooks (``notebooks/*.ipynb``).
NOTEBOOKS_DIR = DATA_ROOT / "notebooks"
#: The reference schema's Alembic script directory (``env.py``, ``versions/``) and its config.
MIGRATIONS_DIR = DATA_ROOT / "migrations"
ALEMBIC_INI = DATA_ROOT / "alembic.ini"
#: The reference target's smoke suite (with its ``conftest.py``) and its one test module.
SMOKE_DIR = DATA_ROOT / "tests" / "smoke"
SMOKE_SUITE = SMOKE_DIR / "test_post_merge_readiness.py"
#: The pytest configuration the playbook's smoke suite runs under, installed or in a checkout
#: (``aris3nb.gate.smoke``): its ``area`` marker registered, strictly, and the one deprecation
#: Starlette's TestClient raises about plain httpx (used on purpose) silenced.
SMOKE_PYTEST_INI = """\
[pytest]
addopts = --strict-markers
markers =
    area(name): the playbook smoke area a smoke test belongs to (auth, stock, transfers, pos, reports, exports)
filterwarnings =
    ignore:Using `httpx` with `starlette.testclient` is deprecated
"""
