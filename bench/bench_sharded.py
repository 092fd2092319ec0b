"""Sharded checks: 20,000,000 rows x 20 features, split across N = 1, 2, 4 processes.

The current data is a prediction log of 20 Parquet files (1M rows each, row groups of
250,000 rows: 80 row groups to deal), with a ``model_version`` column: 5% of the rows
were served by version 1 (shifted), 95% by version 2, the judged one (the serving-version
filter runs in every shard). The reference (2M rows) is profiled once in sketch mode.

Measured, each process a fresh interpreter (peak RSS from its own VmHWM):

- ``single``: ``modelwatch check --mode sketch`` (one process streams the window);
- ``sharded N``: N processes ``modelwatch check --shards N --shard-index i`` started
  together on the file store, as the pods of an Indexed Job; wall time until the last
  exits, each shard's peak RSS, and the merge time shard 0 logs.

Agreement: the drifted features of every run equal the single process's, and each
drift statistic differs from it by at most the two runs' stated KLL error bounds.

The machine has 2 cores (shared): N = 4 cannot run faster than N = 2 here; on a cluster
each shard is a pod on its own core.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.bench_check import WRAP, run_measured

ROWS = int(os.environ.get("BENCH_SHARD_ROWS", 20_000_000))
FEATURES = int(os.environ.get("BENCH_SHARD_FEATURES", 20))
FILES = int(os.environ.get("BENCH_SHARD_FILES", 20))
REF_ROWS = int(os.environ.get("BENCH_SHARD_REF_ROWS", 2_000_000))
SHARDS = [int(n) for n in os.environ.get("BENCH_SHARDS", "1,2,4").split(",")]
ROW_GROUP = 250_000
MERGE_RE = re.compile(r"merged \d+ shards in ([0-9.]+)s")


def write_file(
    path: pathlib.Path,
    rows: int,
    *,
    seed: int,
    shift: float,
    v1_share: float,
    float_type: str = "float64",
    timestamps: bool = False,
) -> None:
    """``rows`` x FEATURES normal columns of ``float_type`` (the first two shifted by
    ``shift`` in the judged version's rows), and a ``model_version`` column; with
    ``timestamps``, a ``timestamp`` column too, within the last day (as a server logs)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modelwatch_monitor import contract

    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}" for i in range(FEATURES)]
    fields = [
        *((n, pa.from_numpy_dtype(np.dtype(float_type))) for n in names),
        (contract.LOG_MODEL_VERSION, pa.int64()),
    ]
    if timestamps:
        fields.append((contract.LOG_TIMESTAMP, pa.timestamp("us", tz="UTC")))
    schema = pa.schema(fields)
    now_us = int(time.time() * 1e6)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            v1 = rng.random(n) < v1_share
            cols = [
                (rng.normal(size=n) + (np.where(v1, 1.0, shift) if i < 2 else 0.0)).astype(
                    float_type
                )
                for i in range(FEATURES)
            ]
            version = np.where(v1, 1, 2).astype(np.int64)
            extra = [now_us - rng.integers(0, 86_400_000_000, size=n)] if timestamps else []
            writer.write_table(
                pa.table([*cols, version, *extra], schema=schema), row_group_size=ROW_GROUP
            )


def run_shards(py: str, shards: int, common: list[str], folder: pathlib.Path) -> dict[str, Any]:
    """Start ``shards`` processes at once; wall time to the last exit, each peak RSS."""
    start = time.perf_counter()

    def command(i: int) -> list[str]:
        return [py, "-c", WRAP, "-m", "modelwatch_monitor", "check", *common,
                "--shards", str(shards), "--shard-index", str(i),
                "--shard-run", f"bench-{shards}", "--shard-dir", str(folder / f"shards-{shards}"),
                "--output", str(folder / f"report-{shards}"),
                "--result-path", str(folder / f"result-{shards}-{i}.json")]  # fmt: skip

    procs = [
        subprocess.Popen(command(i), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(shards)
    ]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - start
    rss, merge = [], None
    for i, (p, (_, err)) in enumerate(zip(procs, outs, strict=True)):
        if p.returncode != 0:
            raise RuntimeError(f"shard {i} of {shards} failed ({p.returncode}): {err[-2000:]}")
        hwm = [ln for ln in err.splitlines() if ln.startswith("VMHWM_KB ")]
        rss.append(round(int(hwm[-1].split()[1]) / 1024, 1) if hwm else None)
        found = MERGE_RE.search(err)
        if found:
            merge = float(found.group(1))
    return {"wall_s": round(wall, 2), "peak_rss_mb": rss, "merge_s": merge}


def agreement(single: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    one = {f["name"]: f for f in single["features"]}
    diffs = [
        (abs(f["statistic"] - one[f["name"]]["statistic"]), f["error_bound"], f["name"])
        for f in other["features"]
    ]
    worst = max(diffs, key=lambda d: d[0] / max(d[1], 1e-12))
    return {
        "same_drifted": {f["name"] for f in other["features"] if f["drift"]}
        == {f["name"] for f in single["features"] if f["drift"]},
        "rows_equal": other["rows"] == single["rows"],
        "max_abs_statistic_diff": round(max(d[0] for d in diffs), 6),
        "worst_diff_over_bound": round(worst[0] / max(worst[1], 1e-12), 3),
        "within_bound": all(d <= b + one[n]["error_bound"] for d, b, n in diffs),
    }


def main() -> dict[str, Any]:
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="mw-bench-shard-") as tmp:
        folder = pathlib.Path(tmp)
        started = time.perf_counter()
        write_file(folder / "reference.parquet", REF_ROWS, seed=1, shift=0.0, v1_share=0.0)
        log = folder / "log"
        log.mkdir()
        for k in range(FILES):
            write_file(
                log / f"part-{k:03d}.parquet", ROWS // FILES, seed=100 + k, shift=0.1,
                v1_share=0.05,
            )  # fmt: skip
        data_s = time.perf_counter() - started
        profile = str(folder / "profile.json")
        run_measured(
            [py, "-m", "modelwatch_monitor", "profile", str(folder / "reference.parquet"),
             "--output", profile, "--mode", "sketch"]
        )  # fmt: skip
        common = ["--reference", profile, "--current", str(log), "--serving-version", "2"]
        single = run_measured(
            [py, "-m", "modelwatch_monitor", "check", *common, "--mode", "sketch",
             "--output", str(folder / "report-single"),
             "--result-path", str(folder / "result-single.json")]
        )  # fmt: skip
        single_report = json.loads((folder / "report-single" / "report.json").read_text())
        runs: dict[str, Any] = {}
        for n in SHARDS:
            figures = run_shards(py, n, common, folder)
            report = json.loads((folder / f"report-{n}" / "report.json").read_text())
            figures["agreement"] = agreement(single_report, report)
            figures["rows_per_second"] = round(ROWS / figures["wall_s"])
            runs[str(n)] = figures
    return {
        "rows": ROWS,
        "features": FEATURES,
        "files": FILES,
        "row_groups": ROWS // ROW_GROUP,
        "judged_rows": single_report["rows"]["current"],
        "drifted": sorted(f["name"] for f in single_report["features"] if f["drift"]),
        "data_write_s": round(data_s, 1),
        "single": {
            "wall_s": single["wall_s"],
            "peak_rss_mb": single["peak_rss_mb"],
            "rows_per_second": round(ROWS / single["wall_s"]),
        },
        "sharded": runs,
        "cores": os.cpu_count(),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
