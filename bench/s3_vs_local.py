"""Backups and drills on an S3 repository against the same work done locally plus a plain transfer.

    .venv/bin/python bench/s3_vs_local.py --scale 200000 1000000 --rounds 3
    .venv/bin/python bench/s3_vs_local.py --scale 2000000 --rounds 3 --backups-only
    .venv/bin/python bench/s3_vs_local.py --engine postgresql --scale 200000 2000000 --rounds 3 \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

The script starts moto's S3 server (tests/targets/s3server.py, the tests' store) on loopback in
its own process, points the AWS variables of its children at it, and creates one bucket. For
each engine and each --scale it seeds a database (SQLite: a file; PostgreSQL: a scratch database
``aris3nb_bench_s3_<hex>``, created and dropped here), then each round measures, every one in a
fresh child process, in alternating order:

* A: ``create_remote`` (what ``OPS_ARTIFACTS_DIR=s3://... aris3nb backup create`` calls): the
  backup made through a staging folder, each file uploaded as soon as it is finished (PostgreSQL:
  each table's as pg_dump finishes it, while the dump goes on; then removed locally), hashed on
  the way, manifest last;
* B: ``create_backup`` into a local folder, then a plain ``upload_file`` of each of its files
  with the same boto3 client settings and multipart sizes (``StorageOptions``);
* C: ``restore_verify_remote`` of A's backup (the drill from the bucket: pulled, every byte
  checked against the manifest, drilled, the report uploaded);
* D: a plain ``download_file`` of each object of B's upload, then ``restore_verify`` locally.

Each child reports its wall time, its parts (create and upload, download and drill: for A and C
timed around the ``create_backup``, ``upload_file``, ``pull`` and ``restore_verify`` they call,
A's uploads inside its create;
what is left is opening and checking the repository, and removing the staging folder), its CPU
time (its own and its children's), and its memory: VmHWM (its peak RSS; ``ru_maxrss`` would
carry the parent's peak over ``exec``), and, sampled every 50 ms, its own anonymous memory and
the resident and anonymous memory of it and its descendants summed (the sqlite3 shells,
pg_dump, pg_restore; ``RUSAGE_CHILDREN`` would report a forked image of the child). Resident
memory counts the pages of the scratch copy a SQLite drill maps for reading (page cache, given
back under pressure); anonymous memory is what is allocated. A and B also report the most bytes
the backup held on local disk at once (sampled likewise). The server's own time and memory
are the parent's, in no figure. Medians of the rounds are compared: A/B (issue 13: at most 1.3)
and C/D. Objects and folders are removed after each round.

moto serves a ranged GET by reading the whole object and slicing it, so a download in 8 MiB
parts (C and D alike) takes time in the square of the object's size: at 2,000,000 SQLite rows
(1.3 GB) a pull takes two minutes or more on moto. ``--backups-only`` measures A and B alone.
``--profile A`` (B, C, D) runs that measurement once more in round 1 under cProfile and prints
its top lines (the main thread only: s3transfer's workers are not in it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "aris3nb-bench"
PARTS_UP, PARTS_DOWN = ("create", "upload"), ("download", "drill")

CHILD = r"""
import json, os, resource, sys, threading, time
from pathlib import Path
action, url, bucket, prefix, folder = sys.argv[1:6]
folder = Path(folder)
# Sampled every 50 ms: this process and its descendants (the sqlite3 shells, pg_dump, pg_restore),
# their resident and anonymous memory summed. Peaks: own anonymous, tree resident, tree anonymous.
peaks = {"anon": 0, "tree_rss": 0, "tree_anon": 0, "disk": 0}
# And the bytes on local disk the backup occupies as it is made (A: its staging folder under the
# temporary folder, whose files go up as they are finished; B: the local backup folder).
import glob, tempfile
existing = set(glob.glob(os.path.join(tempfile.gettempdir(), "aris3nb-*")))  # not this backup's
def on_disk():
    if action == "A":
        roots = set(glob.glob(os.path.join(tempfile.gettempdir(), "aris3nb-*"))) - existing
    else:
        roots = {str(folder / "backups")}
    total = 0
    for root in roots:
        for place, _, names in os.walk(root):
            for name in names:
                try:
                    total += os.lstat(os.path.join(place, name)).st_size
                except OSError:
                    pass
    return total
def memory(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return int(fields.get("VmRSS", "0 kB").split()[0]), int(fields.get("RssAnon", "0 kB").split()[0])
    except (OSError, ValueError):
        return 0, 0
def tree():
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    text = stat.read()
            except OSError:
                continue
            children.setdefault(int(text[text.rindex(b")") + 2 :].split()[1]), []).append(int(entry))
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found
def sample():
    while True:
        rss, anon = memory(os.getpid())
        peaks["anon"] = max(peaks["anon"], anon)
        for pid in tree():
            more = memory(pid)
            rss, anon = rss + more[0], anon + more[1]
        peaks["tree_rss"], peaks["tree_anon"] = max(peaks["tree_rss"], rss), max(peaks["tree_anon"], anon)
        if action in "AB":
            peaks["disk"] = max(peaks["disk"], on_disk())
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()
import boto3
from aris3nb.backup.create import create_backup
from aris3nb.backup.drill import restore_verify
from aris3nb.core.settings import load_settings
from aris3nb.storage.artifacts import create_remote, restore_verify_remote
from aris3nb.storage.s3 import StorageOptions
options = StorageOptions()
common = {"drill_enabled": True, "drill_timeout_sec": 3600, "timeout_sec": 3600}
local = load_settings(artifacts={"dir": folder}, backup=common)
remote = load_settings(artifacts={"repository_url": f"s3://{bucket}/{prefix}"}, backup=common)
def client():
    return boto3.session.Session().client("s3", config=options.client_config())
# The parts of A and C, timed by wrapping what create_remote and restore_verify_remote call.
import aris3nb.storage.artifacts as on_store
from aris3nb.storage.s3 import Repository
timed = {}
def timing(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            timed[label] = timed.get(label, 0.0) + time.perf_counter() - started
    setattr(owner, name, wrapper)
# A's uploads run inside its create, each file as soon as it is finished (PostgreSQL: while
# pg_dump goes on): "upload" is the time spent in them, overlapping "create".
for owner, name, label in ((on_store, "create_backup", "create"), (Repository, "upload_file", "upload"),
                           (on_store, "pull", "download"), (on_store, "restore_verify", "drill")):
    timing(owner, name, label)
def cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
def run():
    parts = {}
    if action == "A":
        result, _ = create_remote(remote, url, "bench", exports_dir=folder / "no-exports")
        parts["bytes"] = sum(f["size"] for f in result.manifest["files"])
    elif action == "B":
        started = time.perf_counter()
        result = create_backup(url, "bench", settings=local, exports_dir=folder / "no-exports")
        parts["create"] = time.perf_counter() - started
        started = time.perf_counter()
        s3, transfer = client(), options.transfer_config()
        names = sorted(str(p.relative_to(result.path)) for p in result.path.rglob("*") if p.is_file())
        names.sort(key=lambda n: n == "manifest.json")  # manifest last, as aris3nb does
        for relative in names:
            s3.upload_file(str(result.path / relative), bucket, f"{prefix}/backups/bench/{relative}", Config=transfer)
        parts["upload"] = time.perf_counter() - started
        parts["bytes"] = sum(f["size"] for f in result.manifest["files"])
    elif action == "C":
        report, _, _ = restore_verify_remote(f"s3://{bucket}/{prefix}/backups/bench", remote, server_url=url)
        parts["status"] = report.status
    else:
        started = time.perf_counter()
        s3, transfer = client(), options.transfer_config()
        below = f"{prefix}/backups/bench/"
        target = folder / "backups" / "bench"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=below):
            for entry in page.get("Contents", []):
                path = target / entry["Key"][len(below):]
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, entry["Key"], str(path), Config=transfer)
        parts["download"] = time.perf_counter() - started
        started = time.perf_counter()
        report, _ = restore_verify(target / "manifest.json", settings=local, server_url=url)
        parts["drill"], parts["status"] = time.perf_counter() - started, report.status
    return {**timed, **parts}
load = os.getloadavg()[0]
started, cpu_started = time.perf_counter(), cpu()
if os.environ.get("BENCH_PROFILE") == action:
    import cProfile, pstats
    profiler = cProfile.Profile()
    parts = profiler.runcall(run)
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
else:
    parts = run()
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
status = {k: int(v.split()[0]) for k, v in (l.split(":", 1) for l in open("/proc/self/status")) if k == "VmHWM"}
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "load": load, **parts,
                  "peak_rss_mib": status["VmHWM"] / 1024, "peak_anon_mib": peaks["anon"] / 1024,
                  "tree_rss_mib": peaks["tree_rss"] / 1024, "tree_anon_mib": peaks["tree_anon"] / 1024,
                  "disk_peak_bytes": peaks["disk"]}))
"""


def load_store_helper() -> Any:
    """The tests' S3 server helper, loaded by path (``tests/`` is not a package on the path)."""
    spec = importlib.util.spec_from_file_location("s3server", ROOT / "tests" / "targets" / "s3server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # registered first, as an import would (dataclasses look it up)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Plan:
    """What each database is measured by: rounds, which of A-D, one of them again under cProfile."""

    rounds: int
    client: Any  # the parent's own client of the store, for removing each round's objects
    actions: str = "ABCD"
    profile: str | None = None


def measure(action: str, url: str, prefix: str, folder: Path, profile: bool = False) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_PROFILE": action if profile else ""}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, action, url, BUCKET, prefix, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if profile:
        print(done.stderr, file=sys.stderr)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise SystemExit(f"{action} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def remove_prefix(client: Any, prefix: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/"):
        for entry in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=entry["Key"])


def one_round(url: str, folder: Path, number: int, plan: Plan) -> dict[str, dict[str, Any]]:
    """A and B in alternating order, then C (of A's backup) and D (of B's upload) likewise."""
    prefixes = {"A": f"r{number}-a", "B": f"r{number}-b", "C": f"r{number}-a", "D": f"r{number}-b"}
    flip = number % 2 == 1
    got: dict[str, dict[str, Any]] = {}
    try:
        for pair in (("A", "B"), ("C", "D")):
            for action in reversed(pair) if flip else pair:
                if action not in plan.actions:
                    continue
                got[action] = measure(action, url, prefixes[action], folder / f"r{number}-{action}")
                if action == "B":  # its local copy is not needed any more (1.3 GB at 2 M SQLite rows)
                    shutil.rmtree(folder / f"r{number}-B", ignore_errors=True)
                print(f"  round {number + 1} {action}: {describe(got[action])}", file=sys.stderr)
        if plan.profile and number == 0:  # a new backup (A, B) under a prefix of its own
            prefixes["profile"] = prefixes[plan.profile] if plan.profile in "CD" else f"r{number}-p"
            measure(plan.profile, url, prefixes["profile"], folder / f"r{number}-profile", profile=True)
    finally:
        for prefix in set(prefixes.values()):
            remove_prefix(plan.client, prefix)
        for action in prefixes:
            shutil.rmtree(folder / f"r{number}-{action}", ignore_errors=True)
    return got


def describe(run: dict[str, Any]) -> str:
    parts = ", ".join(f"{k} {run[k]:.2f} s" for k in ("create", "upload", "download", "drill") if k in run)
    return (
        f"{run['seconds']:.2f} s ({parts}), CPU {run['cpu_seconds']:.2f} s, load {run['load']:.1f}, "
        f"VmHWM {run['peak_rss_mib']:.0f} MiB, anon {run['peak_anon_mib']:.0f} MiB, "
        f"with its children: RSS {run['tree_rss_mib']:.0f} MiB, anon {run['tree_anon_mib']:.0f} MiB"
        + (f", on disk at most {run['disk_peak_bytes'] / 1e6:.1f} MB" if run.get("disk_peak_bytes") else "")
    )


def compare(url: str, folder: Path, plan: Plan) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in plan.actions}
    for number in range(plan.rounds):
        for action, run in one_round(url, folder, number, plan).items():
            runs[action].append(run)
    median = {k: statistics.median(r["seconds"] for r in runs[k]) for k in runs}
    parts = {"A": PARTS_UP, "B": PARTS_UP, "C": PARTS_DOWN, "D": PARTS_DOWN}
    return {
        "backup_bytes": runs["A"][0]["bytes"],
        "seconds": {k: [round(r["seconds"], 2) for r in runs[k]] for k in runs},
        "median_sec": {k: round(v, 2) for k, v in median.items()},
        "parts_median_sec": {
            k: {part: round(statistics.median(r[part] for r in runs[k]), 2) for part in parts[k]} for k in runs
        },
        "A_over_B": round(median["A"] / median["B"], 3),
        "C_over_D": round(median["C"] / median["D"], 3) if "C" in median else None,
        "cpu_median_sec": {k: round(statistics.median(r["cpu_seconds"] for r in runs[k]), 2) for k in runs},
        "peak_rss_mib": {k: round(max(r["peak_rss_mib"] for r in runs[k]), 1) for k in runs},
        "peak_anon_mib": {k: round(max(r["peak_anon_mib"] for r in runs[k]), 1) for k in runs},
        "tree_rss_mib": {k: round(max(r["tree_rss_mib"] for r in runs[k]), 1) for k in runs},
        "tree_anon_mib": {k: round(max(r["tree_anon_mib"] for r in runs[k]), 1) for k in runs},
        "disk_peak_bytes": {k: max(r["disk_peak_bytes"] for r in runs[k]) for k in runs if k in "AB"},
        "drill_status": sorted({r["status"] for k in "CD" if k in runs for r in runs[k]}),
        "load_average": [round(r["load"], 1) for k in runs for r in runs[k]],
    }


def seed(url: str, scale: int, folder: Path) -> None:
    from aris3nb import migrate
    from aris3nb.reference.seed import seed_database

    migrate.upgrade(url)
    seed_database(url, scale=scale, exports_dir=folder / "seed-exports")
    # The seeded file's dirty pages (1.3 GB at 2,000,000 SQLite rows) would otherwise be written
    # back during round 1's first measurement, always A, and slow it down.
    os.sync()


def bench_sqlite(scale: int, plan: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aris3nb-bench-s3-") as tmp:
        url = f"sqlite:///{tmp}/source.db"
        seed(url, scale, Path(tmp))
        return compare(url, Path(tmp), plan)


def bench_postgres(scale: int, plan: Plan, server: str) -> dict[str, Any]:
    admin = sa.create_engine(
        make_url(server).set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
    )
    name = f"aris3nb_bench_s3_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory(prefix="aris3nb-bench-s3-") as tmp:
            seed(url, scale, Path(tmp))
            return compare(url, Path(tmp), plan)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def table(results: dict[str, Any]) -> str:
    lines = [
        "| engine | rows | backup bytes | A: s3 create (create + upload) | B: create + upload | A/B "
        "| C: s3 drill (pull + drill) | D: download + drill | C/D "
        "| VmHWM A / C | anon A / C | with children: RSS A / C | anon A / C |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for engine in ("sqlite", "postgresql"):
        for scale, r in results.get(engine, {}).items():
            m, rss, anon = r["median_sec"], r["peak_rss_mib"], r["peak_anon_mib"]
            tree, tree_anon = r["tree_rss_mib"], r["tree_anon_mib"]
            cell = {k: f"{m[k]:.2f} s ({' + '.join(f'{v:.2f}' for v in r['parts_median_sec'][k].values())})" for k in m}
            c_over_d = f"**{r['C_over_D']:.2f}**" if r["C_over_D"] is not None else "—"

            def mib(figures: dict[str, float]) -> str:
                return " / ".join(f"{figures[k]:.0f}" if k in figures else "—" for k in "AC") + " MiB"

            lines.append(
                f"| {engine} | {scale:,} | {r['backup_bytes']:,} | {cell['A']} | {cell['B']} | **{r['A_over_B']:.2f}** "
                f"| {cell.get('C', '—')} | {cell.get('D', '—')} | {c_over_d} "
                f"| {mib(rss)} | {mib(anon)} | {mib(tree)} | {mib(tree_anon)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, nargs="+", default=[200_000, 1_000_000], help="one or more scales")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--postgres-url", help="a PostgreSQL server to measure on")
    parser.add_argument("--backups-only", action="store_true", help="measure A and B only, not the drills")
    parser.add_argument("--profile", choices=["A", "B", "C", "D"], help="also run it once under cProfile")
    args = parser.parse_args()
    if args.engine in ("postgresql", "both") and not args.postgres_url:
        parser.error("--postgres-url is needed to measure PostgreSQL")
    if args.rounds < 1 or any(scale < 1 for scale in args.scale):
        parser.error("--rounds and --scale must be 1 or more")
    helper = load_store_helper()
    results: dict[str, Any] = {"rounds": args.rounds, "cpus": os.cpu_count()}
    with helper.MotoS3() as store:
        os.environ.update(store.environment())  # the children's client finds the store this way
        plan = Plan(args.rounds, store.client(), "AB" if args.backups_only else "ABCD", args.profile)
        plan.client.create_bucket(Bucket=BUCKET)
        for engine in ("sqlite", "postgresql"):
            if args.engine not in (engine, "both"):
                continue
            results[engine] = {}
            for scale in args.scale:
                print(f"{engine} at {scale:,}:", file=sys.stderr)
                if engine == "sqlite":
                    results[engine][scale] = bench_sqlite(scale, plan)
                else:
                    results[engine][scale] = bench_postgres(scale, plan, args.postgres_url)
    print(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
