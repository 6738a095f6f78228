"""aris3nb installed from its wheel, not checked out: the notebooks, the reference migrations
and their ``alembic.ini``, and the smoke suite ship inside the package, and every command
finds them from any folder.

The slow test builds the wheel from a copy of the checkout's files (``git ls-files``: what
would be committed; nothing written into the work tree, no stale ``build/``), installs it into
a fresh virtual environment (no ``--system-site-packages``, no pip of its own) and, from an
empty folder with a fresh ``HOME``, runs the main job, verifies its bundle and migrates a
database with the packaged migrations.

Dependencies. By default the wheel is installed with ``--no-deps`` and the new environment
sees this environment's installed packages through a ``.pth`` line appended after its own
site-packages (and ``JUPYTER_PATH`` pointing at their data files, nbconvert's templates) — so
``aris3nb`` itself, its data files and its console script come only from the wheel (the test
asserts so), and the checkout is on no path. ``venv --system-site-packages``
would not do this: from inside a virtual environment it exposes the base interpreter's
packages, not this environment's. What the default does not prove is that the declared
dependencies are complete (this environment holds the test extras too): set
``ARIS3NB_WHEEL_TEST_FROM_INDEX=1`` to install the wheel with its dependencies from the package
index instead. Measured on the 2-core development machine: wheel build 11-13 s, ``--no-deps``
install about 3 s, full install from the index 90 s with pip's cache warm (157 s cold), the
run 60-90 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from aris3nb import migrate, resources

ROOT = Path(__file__).resolve().parents[2]
FROM_INDEX = os.environ.get("ARIS3NB_WHEEL_TEST_FROM_INDEX") == "1"


def test_every_folder_of_the_package_is_listed_for_the_wheel() -> None:
    """pyproject.toml lists the packages (setuptools cannot find them and map the data
    package at once): a new folder of modules left out would be missing from the wheel."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "aris3nb").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert folders - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_a_checkout_reads_its_own_files() -> None:
    """In a checkout (and an editable install) the shipped files are the repository's, at its top."""
    assert not resources.PACKAGED
    assert resources.DATA_ROOT.resolve() == ROOT
    found = (
        resources.NOTEBOOKS_DIR,
        resources.ALEMBIC_INI,
        resources.MIGRATIONS_DIR,
        resources.SMOKE_SUITE,
        Path(migrate.alembic_config().config_file_name or ""),
    )
    assert [path.resolve() for path in found] == [
        ROOT / "notebooks",
        ROOT / "alembic.ini",
        ROOT / "migrations",
        ROOT / "tests/smoke/test_post_merge_readiness.py",
        ROOT / "alembic.ini",
    ]


@dataclass(frozen=True)
class Installed:
    source: Path  # the copy of the checkout's files the wheel was built from
    wheel: Path
    venv: Path
    site_packages: Path
    timings: dict[str, float]
    extra_env: dict[str, str]  # what the shared dependencies need (their data files) in the default mode

    def command(self, *args: str, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "aris3nb"), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _timed(timings: dict[str, float], name: str, command: list[str], **kwargs: object) -> None:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    timings[name] = round(time.perf_counter() - started, 1)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout (its file list is what the wheel is built from)")
    base = tmp_path_factory.mktemp("wheel")
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    source = base / "source"
    for name in filter(None, files):
        if (ROOT / name).is_file() and not name.startswith("artifacts/"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    timings: dict[str, float] = {}
    _timed(
        timings,
        "wheel_build_sec",
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "dist"), str(source)],
    )
    (wheel,) = (base / "dist").glob("aris3nb-*.whl")

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)]
    extra_env: dict[str, str] = {}
    if not FROM_INDEX:
        install.insert(-1, "--no-deps")
        # After the new site-packages: the wheel's aris3nb is found first, the dependencies here;
        # their data files (nbconvert's templates, the kernel spec) under this environment's prefix.
        (site_packages / "zz_aris3nb_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
        extra_env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    _timed(timings, "install_sec", install)
    return Installed(source, wheel, venv, site_packages, timings, extra_env)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_wheel_carries_the_notebooks_migrations_and_smoke_suite(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    data = "aris3nb/_data/"
    expected = {
        data + "alembic.ini",
        data + "migrations/env.py",
        data + "migrations/script.py.mako",
        data + "tests/smoke/conftest.py",
        data + "tests/smoke/test_post_merge_readiness.py",
        "aris3nb/evidence/templates/offline.html.j2",
    }
    expected |= {data + "notebooks/" + p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    expected |= {data + "migrations/versions/" + p.name for p in (ROOT / "migrations" / "versions").glob("*.py")}
    # Every file of the package as the wheel was built from it: modules, templates, any data.
    expected |= {
        p.relative_to(installed.source).as_posix()
        for p in (installed.source / "aris3nb").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    }
    assert len([n for n in expected if n.startswith(data + "notebooks/")]) == 5
    assert expected - names == set()
    assert {n for n in names if n.startswith(data)} - expected == set(), "nothing else of the repository's top"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_installed_aris3nb_runs_the_playbook_from_an_empty_folder(
    installed: Installed, tmp_path: Path, record_property
) -> None:
    """The main job, its bundle verified, and the packaged migrations, from an empty folder
    with a fresh HOME and nothing of this environment's but PATH."""
    empty, home, out = tmp_path / "empty", tmp_path / "home", tmp_path / "art"
    empty.mkdir()
    home.mkdir()
    env = {
        "PATH": f"{installed.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        **installed.extra_env,
    }

    where = subprocess.run(
        [
            str(installed.venv / "bin" / "python"),
            "-c",
            "import aris3nb, aris3nb.resources as r; print(aris3nb.__file__); print(r.DATA_ROOT)",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where == [
        str(installed.site_packages / "aris3nb" / "__init__.py"),
        str(installed.site_packages / "aris3nb" / "_data"),
    ], "aris3nb must come from the wheel"

    started = time.perf_counter()
    run = installed.command("run", "--out", str(out), "--json", cwd=empty, env=env, timeout=600)
    installed.timings["run_sec"] = round(time.perf_counter() - started, 1)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(run.stdout)
    assert summary["decision"] == "GO", summary
    bundle = Path(summary["bundle"])
    gate_summary = json.loads(next((bundle / "pre_deploy").glob("gate_summary_*.json")).read_text(encoding="utf-8"))
    smoke = next(check for check in gate_summary["checks"] if check["name"] == "smoke")
    assert smoke["status"] == "PASS", smoke
    assert smoke["evidence"]["target"] == str(
        installed.site_packages / "aris3nb/_data/tests/smoke/test_post_merge_readiness.py"
    )

    verified = installed.command("evidence", "verify", str(bundle), cwd=empty, env=env, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "VALID" in verified.stdout

    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgraded = installed.command("db", "upgrade", "--database-url", url, "--json", cwd=empty, env=env, timeout=120)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert json.loads(upgraded.stdout) == {"database": url, "revision": migrate.head_revision()}

    # aris3nb's own checkout, the package installed from it without -e: the checkout's
    # alembic.ini and migrations/ are the history the wheel ships, not another ARIS3 to refuse.
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "migrations", checkout / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(ROOT / "alembic.ini", checkout / "alembic.ini")
    created = installed.command(
        "backup", "create", "--name", "from_checkout", "--database-url", url, cwd=checkout, env=env, timeout=120
    )
    assert created.returncode == 0, created.stdout + created.stderr
    (checkout / "migrations" / "versions" / "9999_theirs.py").write_text("revision = 'theirs'\n")
    refused = installed.command(
        "backup", "create", "--name", "x", "--database-url", url, cwd=checkout, env=env, timeout=120
    )
    assert refused.returncode == 2 and "no profile for" in refused.stderr, refused.stderr
    for name, seconds in installed.timings.items():  # wheel build, install and run times, in the JUnit report
        record_property(name, seconds)
    print(installed.timings)
