"""The whole playbook, as its users run it, on a target that is not aris3nb's reference: the
foreign ARIS3-like target of tests/targets/foreign (its own code, venv, migrations with revision
ids over 32 characters, login and health shapes), served by its own uvicorn on loopback, on
real SQLite and PostgreSQL. ``aris3nb run --target … --base-url … --database-url …`` gives GO on
clean data after a backup and a drill; every phase ran; the evidence names the profile and the
target's code revision; the bundle verifies. On PostgreSQL the gate's round trip runs on the
target's own server (a scratch database, dropped), and latency sampled below the minimum is
judged inconclusive in both gates, never a PASS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import clifork
import foreign_target as ft  # tests/targets/foreign_target.py (tests/conftest.py puts it on sys.path)
import pytest
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.slow  # the target's venv (once per machine) and two whole runs

TARGETS = Path(__file__).resolve().parents[1] / "targets"
VENV_CACHE = ft.VENV_CACHE
ARIS3NB = str(Path(sys.executable).with_name("aris3nb"))
SCALE = 8


@pytest.fixture(scope="module")
def python() -> Path:
    return ft.ensure_venv(VENV_CACHE)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    name = f"aris3nb_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(str(admin.url)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_whole_playbook_is_go_on_a_foreign_target(python: Path, engine_url: str, tmp_path: Path) -> None:
    postgres = engine_url.startswith("postgresql")
    ft.migrate(python, engine_url, widen_version_table=postgres)
    exports = tmp_path / "exports"
    ft.seed(python, engine_url, scale=SCALE, exports_dir=exports)
    profile = tmp_path / "aris3nb.toml"
    text = ft.PROFILE.read_text(encoding="utf-8")
    text = text.replace('root = "."', f'root = "{ft.ROOT}"', 1).replace(
        'python = ".venv/bin/python"', f'python = "{python}"', 1
    )
    if postgres:  # the team widened alembic_version.version_num, and says so
        text = text.replace("version_num_width = 32", "version_num_width = 128", 1)
    profile.write_text(text, encoding="utf-8")
    artifacts = tmp_path / "artifacts"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREIGN_", "DATABASE_URL", "ARIS3_"))}
    env.update(
        ft.smoke_env(None),
        OPS_ARTIFACTS_DIR=str(artifacts),
        OPS_ENABLE_BACKUP_DRILL="true",
        FOREIGN_EXPORTS_DIR=str(exports),
        # On SQLite latency is sampled as its users sample it (200 each: judged PASS); on
        # PostgreSQL 20 each, which must be judged inconclusive (a WARN, never a PASS), the run still GO.
        OPS_GATE_LATENCY_SAMPLES="20" if postgres else "200",
        OPS_GATE_LATENCY_WARMUP="2",
    )

    def aris3nb(*args: str) -> subprocess.CompletedProcess[str]:
        return clifork.run(list(args), cwd=tmp_path, env=env, timeout=600)

    with ft.serve(python, engine_url, exports_dir=exports) as base_url:
        made = aris3nb("backup", "create", "--target", str(profile), "--name", "manual_1", "--database-url", engine_url)
        assert made.returncode == 0, made.stdout + made.stderr
        manifest = artifacts / "backups" / "manual_1" / "manifest.json"
        drilled = aris3nb(
            "backup", "restore-verify", "--target", str(profile), str(manifest), "--database-url", engine_url
        )
        assert drilled.returncode == 0, drilled.stdout + drilled.stderr
        run = aris3nb("run", "--target", str(profile), "--base-url", base_url, "--database-url", engine_url, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert summary["decision"] == "GO", summary
    assert [(p["phase"], p["status"]) for p in summary["phases"]] == [
        ("pre_deploy", "completed"),
        ("deploy", "completed"),
        ("post_deploy", "completed"),
        ("drill", "completed"),
    ]
    evidence = json.loads(Path(summary["evidence"]).read_text(encoding="utf-8"))
    assert evidence["profile"]["name"] == "foreign" and evidence["profile"]["sha256"].startswith("sha256:")
    assert evidence["profile"]["code_revision"]["alembic_head"] == ft.HEAD
    checks = {c["name"]: c for p in evidence["phases"] for c in p["checks"]}
    assert checks["migrations.single_head"]["detail"] == f"one head: {ft.HEAD}"
    if postgres:  # the round trip ran on the target's server, in a scratch database
        assert checks["migrations.round_trip.postgresql"]["status"] in ("PASS", "WARN")
    latency = {name: check for name, check in checks.items() if name.startswith("latency.")}
    assert set(latency) >= {"latency.stock", "latency.pos"}
    for phase in ("pre_deploy", "post_deploy"):
        judged = [c for p in evidence["phases"] if p["phase"] == phase for c in p["checks"] if c["name"] in latency]
        assert len(judged) == len(latency), phase
        for check in judged:
            if postgres:
                assert check["status"] == "WARN" and check["detail"].startswith("inconclusive: 20 samples"), check
            else:
                assert check["status"] == "PASS" and check["detail"].endswith("; 200 samples)"), check
    if postgres:
        assert summary["verdict"] == "PASS_WITH_WARNINGS", summary
    verified = aris3nb("evidence", "verify", summary["bundle"])
    assert verified.returncode == 0, verified.stdout + verified.stderr
