"""`aris3nb run` against the naive chain doing the same notebooks, side by side in one run.

    .venv/bin/python bench/run_vs_naive.py [--rounds 3] [--scale 3000]

* aris3nb:  ``aris3nb run --out DIR`` (all phases but rollback, on the embedded default), as the
            README runs it: papermill in-process, the next kernel started while a phase runs,
            HTML rendered in-process, the bundle sealed and the index written.
* naive:    the same embedded target (the runner's own ``open_target``), then for each of the
            same four notebooks ``papermill IN OUT -f PARAMS.yaml`` and
            ``jupyter nbconvert --to html OUT`` as separate commands (no bundle, no index).

Rounds alternate (aris3nb, naive, aris3nb, ...) so both see the same machine; each is a
fresh process timed by wall clock from outside. Prints one JSON line per measurement (for
aris3nb with its per-stage breakdown, ``stages``) and a summary with medians, the median of
each stage and the ratio aris3nb / naive.

The breakdown is read from the run's own evidence, nothing instrumented: the timestamps of
``evidence.json`` and of each phase, papermill's per-cell start times and durations in the
executed notebooks, the gate summaries' per-check durations, and the files' modification times
(the HTML pages, ``evidence.json``, ``index.html``). Its stages, in seconds:

* ``runner_start``: the command started → the run started (imports, options);
* ``target_up``: → the first phase started (the embedded default migrated, seeded, served;
  the first kernel boots meanwhile);
* ``kernel_start``: each phase's start → its first cell running (the kernel still booting
  and warming, papermill's set-up), summed over the phases (``kernel_start_by_phase``);
* ``gate``: the two gate runs (pre-deploy, post-deploy), each with its checks' durations
  (``smoke``, ``round_trip``, ``latency``: summed over the endpoints);
* ``backup``: the deploy phase's backup cell; ``drill``: the drill cell; ``integrity``;
  ``charts``: the latency charts' cells; ``other_cells``: every other cell;
* ``between_phases``: a phase's end → the next one's start (its notebook written; before a
  phase that measures latency, the HTML pages still rendering are awaited);
* ``render_tail``: the last phase's end → the last HTML page written; ``seal``: → evidence.json
  written; ``index_and_exit``: → the command's exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
settings = load_settings(artifacts={"dir": out})
run_dir = out / "naive"
run_dir.mkdir(parents=True)
with open_target(RunOptions(scale=scale), settings) as target:
    env = {**os.environ, "ARIS3NB_RUN_DIR": str(run_dir), "OPS_ARTIFACTS_DIR": str(out),
           "OPS_ENABLE_BACKUP_DRILL": "true"}
    common = {"base_url": target.base_url, "database_url": target.database_url, "exports_dir": str(target.exports_dir),
              "pytest_target": "tests/smoke/test_post_merge_readiness.py", "strict": False, "budgets_ms": {},
              "backup_name": "pre_deploy_naive", "server_url": None,
              "manifest": str(backups_dir(settings) / "pre_deploy_naive" / "manifest.json"), "profile": None}
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


def timed(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, int, float, float]:
    """Wall seconds, exit code, and the epoch seconds the command started and ended at."""
    started_at, started = time.time(), time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0,):
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
    return elapsed, done.returncode, started_at, started_at + elapsed


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _code_cells(notebook: Path) -> list[tuple[float, float, str]]:
    """(start epoch, duration, source) of each executed code cell, as papermill recorded them."""
    cells = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        timing = cell.get("metadata", {}).get("papermill", {})
        if cell["cell_type"] == "code" and timing.get("start_time") and timing.get("duration") is not None:
            cells.append((_epoch(timing["start_time"]), float(timing["duration"]), "".join(cell["source"])))
    return cells


#: A cell's stage, by what it calls (the first that matches).
CELL_STAGES = (
    ("aris3nb.run_gate(", "gate_cell"),
    ("aris3nb.deploy(", "backup"),
    ("aris3nb.drill(", "drill"),
    ("post_deploy_integrity(", "integrity"),
    ("show_latency(", "charts"),
)


def stage_breakdown(run_dir: Path, command_started: float, command_ended: float) -> dict[str, Any]:
    """Where one ``aris3nb run`` spent its wall time, read from its evidence (see the module doc)."""
    evidence = json.loads((run_dir / "evidence.json").read_text(encoding="utf-8"))
    stages: dict[str, Any] = {"runner_start": _epoch(evidence["started_at"]) - command_started}
    phases = [p for p in evidence["phases"] if p.get("started_at")]
    stages["target_up"] = _epoch(phases[0]["started_at"]) - _epoch(evidence["started_at"])
    kernel: dict[str, float] = {}
    cells: dict[str, float] = {"gate_cell": 0.0, "backup": 0.0, "drill": 0.0, "integrity": 0.0, "charts": 0.0}
    other = between = 0.0
    previous_end = None
    for phase in phases:
        start = _epoch(phase["started_at"])
        if previous_end is not None:
            between += start - previous_end
        previous_end = start + float(phase["duration_sec"])
        executed = run_dir / Path(phase.get("notebook") or "").name
        code = _code_cells(executed) if executed.is_file() else []
        if code:
            kernel[phase["phase"]] = code[0][0] - start
        for _, duration, source in code:
            stage = next((name for marker, name in CELL_STAGES if marker in source), None)
            if stage is None:
                other += duration
            else:
                cells[stage] += duration
    stages["kernel_start"] = sum(kernel.values())
    stages["kernel_start_by_phase"] = kernel
    gates = []
    for summary in sorted((run_dir).glob("*/gate_summary_*.json")):
        document = json.loads(summary.read_text(encoding="utf-8"))
        checks = {c["name"]: float(c["duration_sec"]) for c in document["checks"]}
        smoke = next((c for c in document["checks"] if c["name"] == "smoke"), None)
        gates.append(
            {
                "phase": summary.parent.name,
                "started": document["started_at"],
                "total": _epoch(document["finished_at"]) - _epoch(document["started_at"]),
                "smoke": float((smoke or {}).get("evidence", {}).get("duration_sec") or checks.get("smoke", 0.0)),
                "round_trip": checks.get("migrations.round_trip.sqlite", 0.0),
                "latency": sum(v for k, v in checks.items() if k.startswith("latency")),
            }
        )
    gates.sort(key=lambda gate: gate.pop("started"))
    stages["gate"] = sum(g["total"] for g in gates)
    stages["gates"] = gates
    stages.update({name: value for name, value in cells.items() if name != "gate_cell"})
    stages["other_cells"] = other + cells["gate_cell"] - stages["gate"]
    stages["between_phases"] = between
    pages = [page.stat().st_mtime for page in run_dir.glob("*.html")]
    sealed = (run_dir / "evidence.json").stat().st_mtime
    index = run_dir.parent.parent / "index.html"
    assert previous_end is not None
    stages["render_tail"] = max(0.0, max(pages, default=previous_end) - previous_end)
    stages["seal"] = sealed - max(pages + [previous_end])
    stages["index_and_exit"] = command_ended - sealed
    stages["index_written_after_seal"] = index.stat().st_mtime - sealed if index.is_file() else None
    return _rounded(stages)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


#: The stages the summary gives the median of.
SUMMARY_STAGES = (
    "runner_start",
    "target_up",
    "kernel_start",
    "gate",
    "backup",
    "drill",
    "integrity",
    "charts",
    "other_cells",
    "between_phases",
    "render_tail",
    "seal",
    "index_and_exit",
)


def stage_medians(breakdowns: list[dict[str, Any]]) -> dict[str, float]:
    return {name: round(statistics.median(b[name] for b in breakdowns), 3) for name in SUMMARY_STAGES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=3000)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPS_ENABLE_BACKUP_DRILL")}
    results: dict[str, list[float]] = {"aris3nb": [], "naive": []}
    failed: dict[str, int] = {"aris3nb": 0, "naive": 0}
    breakdowns: list[dict[str, Any]] = []
    for round_number in range(args.rounds):
        for kind in ("aris3nb", "naive"):
            line: dict[str, Any] = {"round": round_number + 1, "kind": kind}
            with tempfile.TemporaryDirectory(prefix=f"aris3nb-bench-{kind}-") as out:
                if kind == "aris3nb":
                    command = [str(BIN / "aris3nb"), "run", "--out", out, "--scale", str(args.scale)]
                else:
                    command = [sys.executable, "-c", NAIVE, out, str(args.scale), str(BIN)]
                elapsed, code, started_at, ended_at = timed(command, env)
                line.update(wall_sec=round(elapsed, 2), exit=code, load_1min=round(os.getloadavg()[0], 2))
                runs = sorted((Path(out) / "runs").glob("*/evidence.json"))
                if kind == "aris3nb" and runs:
                    line["stages"] = stage_breakdown(runs[-1].parent, started_at, ended_at)
                    breakdowns.append(line["stages"])
            results[kind].append(elapsed)
            failed[kind] += code != 0
            print(json.dumps(line), flush=True)
    ours, naive = statistics.median(results["aris3nb"]), statistics.median(results["naive"])
    print(
        json.dumps(
            {
                "median_sec": {"aris3nb": round(ours, 2), "naive": round(naive, 2)},
                "ratio_aris3nb_over_naive": round(ours / naive, 3),
                "median_stages_sec": stage_medians(breakdowns) if breakdowns else None,
                "failed_runs": failed,  # a run that failed did not do the work: its time means nothing
                "rounds": args.rounds,
                "scale": args.scale,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
