import subprocess
import sys

import aris3nb


def test_all_is_unique_and_every_name_resolves() -> None:
    assert len(set(aris3nb.__all__)) == len(aris3nb.__all__)
    for name in aris3nb.__all__:
        assert getattr(aris3nb, name) is not None
    public = {n for n in dir(aris3nb) if not n.startswith("_")} - {"annotations", "importlib", "Any", "TYPE_CHECKING"}
    modules = {n for n in public if type(getattr(aris3nb, n)).__name__ == "module"}
    assert set(aris3nb.__all__) == (public - modules) | {"__version__"}


def test_unknown_names_raise_attribute_error() -> None:
    try:
        aris3nb.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_stays_light() -> None:
    code = "import sys, aris3nb; print(sorted(m for m in ('httpx', 'numpy', 'pandas', 'psycopg') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_the_main_job_needs_no_extra() -> None:
    """The README's first line installs aris3nb without extras, and `aris3nb run` runs the smoke
    target with pytest (under a configuration of its own: no plugin of the test extra)."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    required = {dependency.split(">")[0].split("=")[0].strip() for dependency in project["dependencies"]}
    assert {"pytest", "papermill", "nbconvert", "ipykernel", "cryptography"} <= required
