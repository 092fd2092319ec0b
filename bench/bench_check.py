"""In-memory check: 1,000,000 rows x 50 numeric features, reference profile prebuilt.

Measured in the same run, each in a fresh process (wall time and peak RSS from
``wait4``):

- ``raw``: read the current Parquet with pyarrow and ``np.sort`` every column;
- ``check``: ``modelwatch check --reference PROFILE --current CUR --output DIR``;
- ``naive``: read both files and call ``scipy.stats.ks_2samp`` per column.

Targets: check wall <= 1.5 x raw, check peak RSS <= 2 x the data's in-memory size
(rows x features x 8 bytes).
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

ROWS = int(os.environ.get("BENCH_CHECK_ROWS", 1_000_000))
FEATURES = int(os.environ.get("BENCH_CHECK_FEATURES", 50))

RAW = """
import sys, numpy as np, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
for c in t.columns:
    np.sort(c.to_numpy())
"""

NAIVE = """
import sys, pyarrow.parquet as pq, scipy.stats as st
ref = pq.read_table(sys.argv[1]).to_pandas()
cur = pq.read_table(sys.argv[2]).to_pandas()
p = [st.ks_2samp(ref[c].to_numpy(), cur[c].to_numpy()).pvalue for c in ref.columns]
print(sum(x < 0.05 / len(p) for x in p))
"""


# Peak RSS is read from the child's own /proc/self/status (VmHWM) at exit: the
# ``ru_maxrss`` that wait4 reports carries over the parent's peak across fork + exec.
WRAP = """
import atexit, runpy, sys
def _hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                sys.stderr.write("\\nVMHWM_KB " + line.split()[1] + "\\n")
atexit.register(_hwm)
kind, target, *rest = sys.argv[1:]
if kind == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(compile(target, "<bench>", "exec"), {"__name__": "__main__"})
"""


def run_measured(cmd: list[str]) -> dict[str, Any]:
    """Run ``[python, -m|-c, target, *args]``; return wall time, peak RSS, last stdout line."""
    py, kind, target, *rest = cmd
    start = time.perf_counter()
    proc = subprocess.run(
        [py, "-c", WRAP, kind, target, *rest], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    hwm = [ln for ln in proc.stderr.splitlines() if ln.startswith("VMHWM_KB ")]
    lines = proc.stdout.strip().splitlines()
    return {
        "wall_s": round(wall, 3),
        "peak_rss_mb": round(int(hwm[-1].split()[1]) / 1024, 1) if hwm else None,
        "last": lines[-1] if lines else "",
    }


def write_data(folder: pathlib.Path, rows: int, features: int) -> tuple[str, str]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    ref, cur = folder / "reference.parquet", folder / "current.parquet"
    rng = np.random.default_rng(0)
    names = [f"f{i:02d}" for i in range(features)]
    for path, shift in ((ref, 0.0), (cur, 0.1)):
        cols = {}
        for i, n in enumerate(names):
            x = rng.normal(size=rows)
            if i < 3:  # three drifted features
                x += shift
            cols[n] = x
        pq.write_table(pa.table(cols), path, row_group_size=262_144)
        del cols
    return str(ref), str(cur)


def write_profile(folder: pathlib.Path, ref: str) -> str:
    """Profile ``ref`` with ``modelwatch profile`` into ``folder/profile.json``; return its path."""
    profile = str(folder / "profile.json")
    subprocess.run(
        [sys.executable, "-m", "modelwatch_monitor", "profile", ref, "--output", profile],
        check=True,
        capture_output=True,
    )
    return profile


def main() -> dict[str, Any]:
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="mw-bench-") as tmp:
        folder = pathlib.Path(tmp)
        ref, cur = write_data(folder, ROWS, FEATURES)
        profile = write_profile(folder, ref)
        raw = run_measured([py, "-c", RAW, cur])
        check = run_measured(
            [
                py, "-m", "modelwatch_monitor", "check", "--reference", profile,
                "--current", cur, "--output", str(folder / "report"),
                "--result-path", str(folder / "result.json"),
            ]
        )  # fmt: skip
        # Warm page cache effects cancel out: measure raw again after the check.
        raw2 = run_measured([py, "-c", RAW, cur])
        naive = run_measured([py, "-c", NAIVE, ref, cur])
        result = json.loads(check["last"])
    data_mb = ROWS * FEATURES * 8 / 2**20
    raw_wall = min(raw["wall_s"], raw2["wall_s"])
    return {
        "rows": ROWS,
        "features": FEATURES,
        "data_in_memory_mb": round(data_mb, 1),
        "raw_pass": {"wall_s": raw_wall, "peak_rss_mb": raw["peak_rss_mb"]},
        "check": {"wall_s": check["wall_s"], "peak_rss_mb": check["peak_rss_mb"]},
        "naive_scipy_loop": {"wall_s": naive["wall_s"], "peak_rss_mb": naive["peak_rss_mb"]},
        "check_over_raw": round(check["wall_s"] / raw_wall, 3),
        "check_rss_over_data": round(check["peak_rss_mb"] / data_mb, 3),
        "targets_met": {
            "wall_le_1_5x_raw": check["wall_s"] <= 1.5 * raw_wall,
            "rss_le_2x_data": check["peak_rss_mb"] <= 2 * data_mb,
        },
        "drifted": result.get("nDrifted"),
        "dataset_drift": result.get("datasetDrift"),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
