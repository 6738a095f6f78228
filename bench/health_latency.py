"""Latency of GET /health on loopback: the reference service over a seeded SQLite database,
served by uvicorn in this process's background thread, measured with one keep-alive client.

    .venv/bin/python bench/health_latency.py --requests 200

Percentiles are linear interpolation between closest ranks (Hyndman-Fan type 7, numpy's
default), over the samples after the warm-up.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from aris3nb import migrate
from aris3nb.core.settings import load_settings
from aris3nb.reference.seed import seed_database
from aris3nb.reference.server import running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--path", default="/health")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrate.upgrade(url)
        seed_database(url, scale=3000, exports_dir=Path(tmp) / "exports")
        settings = load_settings(target={"exports_dir": Path(tmp) / "exports"})
        with running_server(url, settings) as base, httpx.Client(base_url=base, timeout=5) as client:
            for _ in range(args.warmup):
                client.get(args.path).raise_for_status()
            samples = []
            for _ in range(args.requests):
                started = time.perf_counter()
                client.get(args.path).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    print(
        json.dumps(
            {
                "path": args.path,
                "samples": len(samples),
                "p50_ms": round(p50, 2),
                "p95_ms": round(p95, 2),
                "p99_ms": round(p99, 2),
                "max_ms": round(max(samples), 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
