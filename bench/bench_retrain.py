"""Retrain wall time against the FLAML time budget.

Each case runs the real ``modelwatch retrain`` (convenience form) in a fresh process on
synthetic classification data (10 numeric features and one categorical) and reports:

- ``wall_s``: the whole process, from exec to exit (imports, reading data, FLAML search,
  FLAML's final refit of the best config on all training rows, holdout scoring of
  challenger and champion, writing the version);
- ``search_s``: FLAML's ``fit`` call, as recorded in the version's metadata;
- ``overhead_s``: ``wall_s - budget``; ``wall_over_budget``: ``wall_s / budget``.

The Job's ``activeDeadlineSeconds`` must leave room for this overhead on top of the
budget. Cases: ``BENCH_RETRAIN_CASES`` as ``rows:budget`` pairs.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

CASES = os.environ.get("BENCH_RETRAIN_CASES", "5000:2,5000:5,5000:10,50000:5")


def _data(n: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
    frame["segment"] = rng.choice(list("abcdef"), size=n)
    score = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - np.abs(x[:, 3]) + (frame["segment"] == "a") * 0.7
    frame["y"] = (score + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return frame


def _case(root: pathlib.Path, rows: int, budget: float, version: int) -> dict[str, Any]:
    from modelwatch_monitor.store.registry import Registry

    data = _data(rows, seed=version)
    train = root / f"train-{version}.parquet"
    data.to_parquet(train)
    cmd = [
        sys.executable, "-m", "modelwatch_monitor", "--log-level", "WARNING", "retrain",
        "--train", str(train), "--target", "y", "--task", "classification",
        "--time-budget", str(budget), "--store", str(root / "store"), "--model", "bench",
        "--version", str(version), "--termination-log", str(root / "termination"),
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget * 10 + 120)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"retrain failed: {proc.stdout[-500:]} {proc.stderr[-1500:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    meta = Registry(str(root / "store"), "bench").metadata(version)
    return {
        "rows": rows,
        "budget_s": budget,
        "wall_s": round(wall, 2),
        "search_s": meta["flaml"]["seconds"],
        "overhead_s": round(wall - budget, 2),
        "wall_over_budget": round(wall / budget, 2),
        "trials": meta["flaml"]["trials"],
        "best_estimator": meta["flaml"]["bestEstimator"],
        "n_jobs": meta["flaml"]["nJobs"],
        "metric": result["metric"],
        "challenger": result["challenger"]["score"],
        "champion": result["champion"],
    }


def main() -> dict[str, Any]:
    cases = [(int(r), float(b)) for r, b in (c.split(":") for c in CASES.split(","))]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        for version, (rows, budget) in enumerate(cases, start=1):
            results.append(_case(pathlib.Path(tmp), rows, budget, version))
    return {
        "cases": results,
        "max_overhead_s": max(r["overhead_s"] for r in results),
        "max_wall_over_budget": max(r["wall_over_budget"] for r in results),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
