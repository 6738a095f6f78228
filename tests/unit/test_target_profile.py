"""Target profiles: read into a typed model, typos named with their line, found upward or in
pyproject.toml, and the false green refused: inside another ARIS3 repository without a
profile, nothing is judged with the bundled reference's checks."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import clifork
import pytest

from aris3nb.core.errors import UsageError
from aris3nb.targets.init import init_profile, next_steps
from aris3nb.targets.profile import find_profile, load_profile, parse_profile, resolve_profile

FOREIGN = Path(__file__).resolve().parents[1] / "targets" / "foreign" / "aris3nb.toml"
ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))


def test_the_foreign_targets_profile_reads_into_the_model() -> None:
    loaded = load_profile(FOREIGN)
    profile = loaded.profile
    assert profile.name == "foreign" and loaded.sha256 and len(loaded.sha256) == 64
    assert profile.service.health.pointer == "/ok" and profile.service.health.expect is True
    assert profile.service.login is not None and profile.service.login.body["username_or_email"] == "{username}"
    assert {e.name for e in profile.service.endpoints} >= {"stock", "reports", "exports"}
    assert profile.smoke is not None and {a.area for a in profile.smoke.areas} == {
        "auth",
        "stock",
        "transfers",
        "pos",
        "reports",
        "exports",
    }
    assert len(profile.integrity.sql) >= 10 and profile.integrity.files[0].path_column == "file_name"
    assert loaded.root == FOREIGN.parent


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (
            'token_pointer = "/access_token"',
            'token_pionter = "/access_token"',
            "service.login.token_pionter: unknown key",
        ),
        ("p95_ms = 250", 'p95_ms = "fast"', "service.endpoints[1].p95_ms"),
        ('severity = "warning"', 'severity = "warn"', "integrity.sql[2].severity"),
        ("profile_version = 1", "profile_version = 7", "profile_version 7 is not supported"),
    ],
)
def test_a_typo_is_bad_input_naming_the_key_and_its_line(old: str, new: str, named: str) -> None:
    changed = FOREIGN.read_text().replace(f"\n{old}", f"\n{new}", 1)  # a setting's line, not a comment
    with pytest.raises(UsageError, match=re.escape(named)) as refused:
        parse_profile(changed, "aris3nb.toml")
    if "version" not in named:
        line = int(str(refused.value).split(":")[1])
        assert new in changed.splitlines()[line - 1], (line, str(refused.value))


def test_a_budget_that_cannot_be_exceeded_is_refused() -> None:
    with pytest.raises(UsageError, match="finite"):
        parse_profile(FOREIGN.read_text().replace("p95_ms = 250", "p95_ms = inf", 1), "aris3nb.toml")


def test_profiles_are_found_upward_and_in_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.aris3nb]\nprofile_version = 1\nname = "from-pyproject"\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_profile(deep) == tmp_path / "pyproject.toml"
    assert resolve_profile(None, cwd=deep).profile.name == "from-pyproject"
    (tmp_path / "a" / "aris3nb.toml").write_text('profile_version = 1\nname = "nearer"\n')
    assert resolve_profile(None, cwd=deep).profile.name == "nearer"


def test_inside_another_aris3_repository_without_a_profile_every_judging_command_refuses(tmp_path: Path) -> None:
    repo = tmp_path / "other-aris3"
    (repo / "migrations").mkdir(parents=True)
    (repo / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    with pytest.raises(UsageError, match="aris3nb init"):
        resolve_profile(None, cwd=repo)
    assert resolve_profile(None, cwd=repo, embedded=True).profile.name == "reference"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"OPS_ARTIFACTS_DIR": str(tmp_path / "art")}
    for args in (
        ["gate"],
        ["integrity"],
        ["run"],
        ["backup", "create", "--name", "x"],
        ["backup", "validate", str(tmp_path / "m.json")],
    ):
        done = clifork.run(args, cwd=repo, env=env, timeout=120)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("FAILED: ") and "aris3nb init" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "art").exists(), "nothing ran"


def test_a_copy_of_aris3nbs_own_history_is_not_foreign_but_one_changed_file_makes_it_so(tmp_path: Path) -> None:
    """aris3nb's checkout with the package installed from it without ``-e``: its top-level
    ``alembic.ini`` and ``migrations/`` are the history the package ships, not another
    ARIS3's, wherever the package itself lies (``OWN_ROOT`` is then site-packages)."""
    import shutil

    from aris3nb.resources import ALEMBIC_INI, MIGRATIONS_DIR

    checkout = tmp_path / "aris3nb-checkout"
    shutil.copytree(MIGRATIONS_DIR, checkout / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(ALEMBIC_INI, checkout / "alembic.ini")
    (checkout / "migrations" / "__pycache__").mkdir(exist_ok=True)
    (checkout / "migrations" / "__pycache__" / "env.cpython-311.pyc").write_bytes(b"compiled, not history")
    assert resolve_profile(None, cwd=checkout / "migrations").profile.name == "reference"

    [first, *_] = sorted((checkout / "migrations" / "versions").glob("*.py"))
    first.write_text(first.read_text() + "\n# edited\n")
    with pytest.raises(UsageError, match="aris3nb init"):
        resolve_profile(None, cwd=checkout)
    first.unlink()
    with pytest.raises(UsageError, match="aris3nb init"):
        resolve_profile(None, cwd=checkout)


def test_init_describes_the_repository_and_never_overwrites(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    (repo / "migrations" / "versions").mkdir(parents=True)
    (repo / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    (repo / "migrations" / "env.py").write_text("from shop.models import Base\ntarget_metadata = Base.metadata\n")
    (repo / "shop").mkdir()
    (repo / "shop" / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    path, found = init_profile(repo)
    profile = load_profile(path).profile
    assert profile.name == "shop" and profile.target.metadata == "shop.models:Base.metadata"
    assert found.app == "shop.main:app" and not found.upstream and found.notes  # no venv found: said
    with pytest.raises(UsageError, match="never overwrites"):
        init_profile(repo)
    upstream = tmp_path / "aris-cloud-3"
    (upstream / "app" / "aris3").mkdir(parents=True)
    (upstream / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    path, found = init_profile(upstream)
    profile = load_profile(path).profile
    assert found.upstream and profile.name == "aris3"
    assert profile.service.health.pointer == "/ok" and profile.service.ready.revision_pointer == ""
    assert profile.service.login is not None and "username_or_email" in profile.service.login.body
    assert 'extends = "aris3"' in path.read_text() and load_profile(path).extends[0] == "aris3"
    steps = next_steps(found, profile.service.smoke_account)
    assert any("export ARIS3_SMOKE_USERNAME and ARIS3_SMOKE_PASSWORD" in step for step in steps), steps
    assert not any("[service.health]" in step for step in steps), "upstream's contract is built in"


def test_init_writes_how_env_py_takes_its_database_url_or_says_it_found_none(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    (repo / "migrations").mkdir(parents=True)
    (repo / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    (repo / "migrations" / "env.py").write_text(
        "import os\nfrom alembic import context\n"
        "url = context.get_x_argument(as_dictionary=True).get('dburl') or os.environ['SHOP_DATABASE_URL']\n"
    )
    path, found = init_profile(repo)
    target = load_profile(path).profile.target
    assert (target.alembic_x_url, target.database_url_env) == ("dburl", "SHOP_DATABASE_URL")
    assert not [note for note in found.notes if "env.py" in note]
    path.unlink()
    (repo / "migrations" / "env.py").write_text("from shop.settings import url\n")
    path, found = init_profile(repo)
    target = load_profile(path).profile.target
    assert (target.alembic_x_url, target.database_url_env) == (None, "DATABASE_URL")
    assert [note for note in found.notes if "names no `-x` argument" in note]
    assert "# NOTE: env.py names no `-x` argument" in path.read_text()
    # Comments, strings and names that do not speak of a database are not read; several are not guessed among.
    path.unlink()
    (repo / "migrations" / "env.py").write_text(
        '"""Reads os.environ["EXAMPLE_DATABASE_URL"]."""\nimport os\nimport sentry_sdk\n'
        "# url = os.environ['OLD_DB_URL']\nsentry_sdk.init(os.getenv('SENTRY_DSN'))\n"
        "data = context.get_x_argument(as_dictionary=True).get('data')\n"
        "url = os.environ['TEST_DATABASE_URL'] if os.getenv('TESTING') else os.environ['DATABASE_URL']\n"
    )
    path, found = init_profile(repo)
    target = load_profile(path).profile.target
    assert (target.alembic_x_url, target.database_url_env) == (None, "DATABASE_URL")
    assert [
        n for n in found.notes if "several names that may hold its database URL (DATABASE_URL, TEST_DATABASE_URL)" in n
    ]


def test_init_says_what_is_left_to_do_and_the_written_profile_runs_the_targets_migrations(tmp_path: Path) -> None:
    """On a copy of the foreign target (its env.py reads ``-x database_url``), the profile init
    writes is enough for the gate's migration round trip, which runs the target's own Alembic;
    the command lists the next steps, the service contract it could not read among them."""
    repo = tmp_path / "foreign"
    shutil.copytree(FOREIGN.parent, repo, ignore=shutil.ignore_patterns("aris3nb.toml", ".venv", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREIGN_", "DATABASE_URL"))}
    env["OPS_ARTIFACTS_DIR"] = str(tmp_path / "artifacts")
    done = clifork.run(["init", "--python", sys.executable], cwd=repo, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = [line for line in done.stdout.splitlines() if line.startswith("next ")]
    assert steps[0].startswith("next 1: review aris3nb.toml") and "[[service.endpoints]]" in steps[1], steps
    order = [
        next(i for i, step in enumerate(steps) if word in step)
        for word in ("aris3nb backup create", "aris3nb gate", "aris3nb run")
    ]
    assert order == sorted(order), steps  # the gate judges the backup's and the drill's freshness
    gate = clifork.run(
        ["gate", "--check", "migrations.round_trip.sqlite", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"]
        + ["--json"],
        cwd=repo,
        env=env,
        timeout=120,
    )
    checks = {c["name"]: c for c in json.loads(gate.stdout)["checks"]}
    assert checks["migrations.round_trip.sqlite"]["status"] == "PASS", checks


def test_extends_lays_a_file_on_a_builtin_profile_and_names_both(tmp_path: Path) -> None:
    path = tmp_path / "aris3nb.toml"
    path.write_text(
        'profile_version = 1\nextends = "aris3"\nname = "shop-eu"\n[migrations]\nversion_num_width = 128\n'
        '[target]\npython = "/opt/shop/bin/python"\n'
    )
    loaded = load_profile(path)
    profile = loaded.profile
    assert profile.name == "shop-eu" and profile.migrations.version_num_width == 128
    assert profile.target.python == "/opt/shop/bin/python"  # merged key by key:
    assert profile.target.metadata == "app.aris3.db.models:Base.metadata"  # the rest of [target] kept
    assert profile.service.login is not None and len(profile.integrity.sql) > 20 and profile.rpo.sources
    evidence = loaded.as_evidence()
    assert evidence["extends"]["name"] == "aris3" and evidence["extends"]["sha256"].startswith("sha256:")
    assert evidence["sha256"] != evidence["extends"]["sha256"]
    path.write_text('profile_version = 1\nextends = "aris4"\nname = "x"\n')
    with pytest.raises(UsageError, match="unknown built-in profile 'aris4'; known: aris3"):
        load_profile(path)
    path.write_text('profile_version = 1\nextends = "aris3"\n[service.health]\npointr = "/ok"\n')
    with pytest.raises(UsageError, match=r"aris3nb.toml:4: service.health.pointr: unknown key"):
        load_profile(path)


def test_the_builtin_aris3_profile_is_valid_and_its_checks_are_well_formed() -> None:
    from aris3nb.integrity import IntegrityOptions
    from aris3nb.targets.profile import builtin_profile_text, parse_profile

    profile = parse_profile(builtin_profile_text("aris3"), "aris3")
    assert {e.name for e in profile.service.endpoints} == {"health", "stock", "reports", "exports"}
    assert {rule.area for rule in profile.smoke.areas} == {"auth", "stock", "transfers", "pos", "reports", "exports"}
    names = [c.name for c in (*profile.integrity.sql, *profile.integrity.files)]
    assert len(names) == len(set(names)) and all(n.startswith("aris3.") for n in names)
    assert all(check.requires for check in profile.integrity.sql), "each check names what it needs"
    IntegrityOptions(database_url="sqlite://", exports_dir=Path(".")).with_selection(profile.integrity).selection()
