"""`aris3nb run` under two settings, side by side in one run (A/B), optionally beside a load.

    .venv/bin/python bench/run_ab.py --b OPS_FORK_KERNELS=false [--rounds 3] [--busy 1]

Each round runs ``aris3nb run --out DIR`` (the README's main job, on the embedded default) with
the environment as it is (A) and with the ``--b`` settings (B), alternating which goes first,
each a fresh process timed by wall clock from outside, with the CPU seconds it and its children
used (``RUSAGE_CHILDREN``: the runner, its kernels and their fork server, the target's server,
the smoke runs). ``--busy N`` keeps N processes spinning on the CPU for the whole bench: a load
that is the same in every round, unlike other jobs' (a CI run's pytest workers, say).

Prints one JSON line per run (with the stage breakdown of ``run_vs_naive.stage_breakdown``) and a
summary: the median wall and CPU of each side, the median of the per-round ratios B / A, and each
side's median stages.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_vs_naive import BIN, stage_breakdown, stage_medians  # noqa: E402

SPIN = "while True: pass"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(env: dict[str, str], scale: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aris3nb-bench-ab-") as out:
        cpu_before, started_at, clock = children_cpu(), time.time(), time.perf_counter()
        done = subprocess.run(
            [str(BIN / "aris3nb"), "run", "--out", out, "--scale", str(scale)], env=env, capture_output=True
        )
        wall, ended_at = time.perf_counter() - clock, time.time()
        line: dict[str, Any] = {"wall_sec": round(wall, 2), "cpu_sec": round(children_cpu() - cpu_before, 2)}
        line["exit"] = done.returncode
        runs = sorted((Path(out) / "runs").glob("*/evidence.json"))
        if runs:
            line["stages"] = stage_breakdown(runs[-1].parent, started_at, ended_at)
        return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--b", action="append", default=[], metavar="NAME=VALUE", help="B's settings (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=3000)
    parser.add_argument("--busy", type=int, default=0, help="processes spinning on the CPU beside the runs")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPS_ENABLE_BACKUP_DRILL")}
    sides = {"A": base, "B": {**base, **dict(item.split("=", 1) for item in args.b)}}
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    lines: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    try:
        for round_number in range(args.rounds):
            order = ("A", "B") if round_number % 2 == 0 else ("B", "A")
            for side in order:
                line = {"round": round_number + 1, "side": side, **one_run(sides[side], args.scale)}
                line["load_1min"] = round(os.getloadavg()[0], 2)
                lines[side].append(line)
                print(json.dumps(line), flush=True)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    ratios = [b["wall_sec"] / a["wall_sec"] for a, b in zip(lines["A"], lines["B"], strict=True)]
    summary: dict[str, Any] = {"b": args.b, "busy": args.busy, "rounds": args.rounds, "scale": args.scale}
    for side in ("A", "B"):
        runs = lines[side]
        staged = [r["stages"] for r in runs if "stages" in r]
        summary[side] = {
            "median_wall_sec": round(statistics.median(r["wall_sec"] for r in runs), 2),
            "median_cpu_sec": round(statistics.median(r["cpu_sec"] for r in runs), 2),
            "failed_runs": sum(r["exit"] != 0 for r in runs),  # a failed run did not do the work
            "median_stages_sec": stage_medians(staged) if staged else None,
        }
    summary["wall_ratios_b_over_a"] = [round(r, 3) for r in ratios]
    summary["median_wall_ratio_b_over_a"] = round(statistics.median(ratios), 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
