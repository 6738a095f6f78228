"""`aris3nb run` against the naive chain doing the same notebooks, side by side in one run.

    .venv/bin/python bench/run_vs_naive.py [--rounds 3] [--scale 3000]

* aris3nb:  ``aris3nb run --out DIR`` (all phases but rollback, on the embedded default), as the
            README runs it: papermill in-process, the next kernel started while a phase runs,
            HTML rendered in-process, the bundle sealed and the index written.
* naive:    the same embedded target (the runner's own ``open_target``), then for each of the
            same four notebooks ``papermill IN OUT -f PARAMS.yaml`` and
            ``jupyter nbconvert --to html OUT`` as separate commands (no bundle, no index).

Rounds alternate (aris3nb, naive, aris3nb, ...) so both see the same machine; each is a
fresh process timed by wall clock from outside. Prints one JSON line per measurement and a
summary with medians and the ratio aris3nb / naive.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAIVE = r"""
import json, os, subprocess, sys
from pathlib import Path
from aris3nb.backup.create import backups_dir
from aris3nb.core.settings import load_settings
from aris3nb.evidence.marks import NOTEBOOKS_DIR
from aris3nb.evidence.runner import RunOptions, open_target
from aris3nb.phases import PHASES

out, scale, bindir = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
settings = load_settings(ops_artifacts_dir=out)
run_dir = out / "naive"
run_dir.mkdir(parents=True)
with open_target(RunOptions(scale=scale), settings) as target:
    env = {**os.environ, "ARIS3NB_RUN_DIR": str(run_dir), "OPS_ARTIFACTS_DIR": str(out),
           "OPS_ENABLE_BACKUP_DRILL": "true"}
    common = {"base_url": target.base_url, "database_url": target.database_url, "exports_dir": str(target.exports_dir),
              "pytest_target": "tests/smoke/test_post_merge_readiness.py", "strict": False, "budgets_ms": {},
              "backup_name": "pre_deploy_naive", "server_url": None,
              "manifest": str(backups_dir(settings) / "pre_deploy_naive" / "manifest.json")}
    for phase in PHASES[:4]:
        params = {name: common[name]
                  for name in __import__("papermill").inspect_notebook(str(NOTEBOOKS_DIR / phase.notebook))}
        params_file = run_dir / f"{phase.name}.yaml"
        params_file.write_text(json.dumps(params))
        executed = run_dir / phase.notebook
        subprocess.run([str(bindir / "papermill"), str(NOTEBOOKS_DIR / phase.notebook), str(executed), "-f",
                        str(params_file), "--no-progress-bar"], env=env, check=True, capture_output=True)
        subprocess.run([str(bindir / "jupyter"), "nbconvert", "--to", "html", str(executed)], env=env, check=True,
                       capture_output=True)
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0,):
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
    return elapsed, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=3000)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPS_ENABLE_BACKUP_DRILL")}
    results: dict[str, list[float]] = {"aris3nb": [], "naive": []}
    for round_number in range(args.rounds):
        for kind in ("aris3nb", "naive"):
            with tempfile.TemporaryDirectory(prefix=f"aris3nb-bench-{kind}-") as out:
                if kind == "aris3nb":
                    command = [str(BIN / "aris3nb"), "run", "--out", out, "--scale", str(args.scale)]
                else:
                    command = [sys.executable, "-c", NAIVE, out, str(args.scale), str(BIN)]
                elapsed, code = timed(command, env)
            results[kind].append(elapsed)
            print(
                json.dumps({"round": round_number + 1, "kind": kind, "wall_sec": round(elapsed, 2), "exit": code}),
                flush=True,
            )
    ours, naive = statistics.median(results["aris3nb"]), statistics.median(results["naive"])
    print(
        json.dumps(
            {
                "median_sec": {"aris3nb": round(ours, 2), "naive": round(naive, 2)},
                "ratio_aris3nb_over_naive": round(ours / naive, 3),
                "rounds": args.rounds,
                "scale": args.scale,
            }
        )
    )


if __name__ == "__main__":
    main()
