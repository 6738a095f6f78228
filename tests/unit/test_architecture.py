"""The dependency rules of docs/ARCHITECTURE.md that are checked by reading the imports.

Library code reads the ARIS3 contract (``aris3nb.contract``) and never imports the reference
double (``aris3nb.reference``: app, seed, server): a check that imported the double would judge a
target by the service aris3nb ships rather than by the contract, and would drag FastAPI and the
seed into every command. The double is started in one place only — the embedded target's
provisioning and the CLI's ``db`` and ``serve`` commands. Every import counts, lazy ones inside a
function and ``TYPE_CHECKING`` ones too, and so does a module named by a string
(``importlib.import_module("aris3nb.reference.app")``, ``"aris3nb.reference.app:create_app"``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "aris3nb"

#: The modules that may start the double, besides the double itself.
STARTS_THE_DOUBLE = frozenset({"aris3nb.targets.embedded", "aris3nb.cli.db", "aris3nb.cli.serve"})

#: A string that is nothing but a module name (or a ``module:attribute`` reference) of aris3nb.
MODULE_NAME = re.compile(r"aris3nb(\.\w+)+(:\w+)?")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every aris3nb module ``path`` imports or names as a module, absolute, wherever in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            # ``from aris3nb import reference`` imports the submodule by its attribute's name.
            found.update(f"{source}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
            found.add(node.value.partition(":")[0])
    return {module for module in found if module == "aris3nb" or module.startswith("aris3nb.")}


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


LIBRARY = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if not is_within(module_name(path), "aris3nb.reference") and module_name(path) not in STARTS_THE_DOUBLE
)


def test_the_walk_sees_the_library() -> None:
    names = {module_name(path) for path in LIBRARY}
    assert {"aris3nb.schema", "aris3nb.gate.migrations", "aris3nb.integrity.reference", "aris3nb.contract"} <= names
    assert not STARTS_THE_DOUBLE & names


@pytest.mark.parametrize("path", LIBRARY, ids=lambda path: module_name(path))
def test_library_code_never_imports_the_reference_double(path: Path) -> None:
    forbidden = sorted(module for module in imported_modules(path) if is_within(module, "aris3nb.reference"))
    assert forbidden == [], (
        f"{module_name(path)} imports the reference double ({', '.join(forbidden)}); read the contract from "
        f"aris3nb.contract instead (only {', '.join(sorted(STARTS_THE_DOUBLE))} start the double)"
    )


def test_the_contract_stands_on_its_own() -> None:
    """The contract is what both aris3nb and the double depend on: it imports neither."""
    for path in sorted((PACKAGE / "contract").rglob("*.py")):
        assert {m for m in imported_modules(path) if not is_within(m, "aris3nb.core")} == set(), module_name(path)


def test_the_walk_finds_every_spelling_of_an_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: absolute, relative, lazy, attribute and string imports are all seen."""
    fake = tmp_path / "aris3nb"
    (fake / "gate").mkdir(parents=True)
    module = fake / "gate" / "example.py"
    module.write_text(
        "from aris3nb import reference\n"
        "from ..reference.seed import seed_database\n"
        "def lazy():\n"
        "    import aris3nb.reference.server\n"
        "    return importlib.import_module('aris3nb.reference.app')\n"
        "FACTORY = 'aris3nb.reference.views:router'\n"
        '"""A docstring naming ``aris3nb.reference.models`` is not an import."""\n',
        encoding="utf-8",
    )
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert imported_modules(module) == {
        "aris3nb",
        "aris3nb.reference",
        "aris3nb.reference.seed",
        "aris3nb.reference.seed.seed_database",
        "aris3nb.reference.server",
        "aris3nb.reference.app",
        "aris3nb.reference.views",
    }


def test_the_command_line_starts_without_the_library_behind_its_commands() -> None:
    """``aris3nb --help`` or a usage error answers at once: the CLI imports a command's library
    (databases, object storage, kernels, Alembic) only when that command runs."""
    import subprocess
    import sys

    heavy = ("sqlalchemy", "alembic", "boto3", "nbformat", "papermill", "pandas", "aris3nb.backup", "aris3nb.evidence")
    probe = f"import sys, aris3nb.cli; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == [], f"imported when the CLI starts: {done.stdout}"


@pytest.mark.parametrize(
    ("module", "heavy"),
    [
        # Every backup command reads the target profile: not the integrity runner, the schema
        # comparison (Alembic) or the contract's ORM models behind it.
        ("aris3nb.targets.profile", ("aris3nb.integrity.runner", "aris3nb.contract.models", "alembic")),
        # A local repository's commands: no boto3 (an s3:// one loads it), no psycopg for SQLite.
        ("aris3nb.storage.artifacts", ("boto3", "aris3nb.storage.s3")),
        ("aris3nb.storage", ("boto3", "aris3nb.storage.s3")),
        ("aris3nb.core.db", ("psycopg",)),
        # The runner learns the phases (which import the gate's HTTP checks) before its target is
        # up: numpy, which only the kernels' latency checks use, is not on that path.
        ("aris3nb.evidence.runner", ("numpy", "pandas", "matplotlib")),
    ],
)
def test_a_library_module_loads_only_what_its_callers_need(module: str, heavy: tuple[str, ...]) -> None:
    import subprocess
    import sys

    probe = f"import sys, {module}; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == [], f"imported with {module}: {done.stdout}"


def test_the_lazy_packages_still_give_every_public_name() -> None:
    import aris3nb.integrity as integrity
    import aris3nb.storage as storage

    for package in (integrity, storage):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
        with pytest.raises(AttributeError):
            package.no_such_name  # noqa: B018
    assert integrity.INTEGRITY_CHECKS.names()[0] and "INTEGRITY_CHECKS" in dir(integrity)


def test_the_smoke_suite_starts_without_the_seed() -> None:
    """The gate runs the smoke suite twice a playbook run, live against the target: its
    ``conftest.py`` imports the seed, SQLAlchemy and the service only for the in-process mode."""
    import subprocess
    import sys

    from aris3nb.resources import SMOKE_DIR

    heavy = ("sqlalchemy", "alembic", "fastapi", "aris3nb.reference.seed", "aris3nb.reference.app")
    probe = f"import sys, conftest; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=SMOKE_DIR, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == [], f"imported when the smoke suite starts: {done.stdout}"


def test_the_program_ends_without_collecting_what_it_loaded() -> None:
    """The ``aris3nb`` program freezes the garbage collector once its command is done: the
    interpreter's last collections over a run's imports took 1–3 s after its last line."""
    import subprocess
    import sys
    from importlib.metadata import entry_points

    [script] = [point for point in entry_points(group="console_scripts") if point.name == "aris3nb"]
    assert script.value == "aris3nb.cli:console"
    probe = (
        "import atexit, gc, sys; atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0)); "
        "sys.argv = ['aris3nb', '--help']; from aris3nb.cli import console; console()"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.rstrip().endswith("frozen True"), done
