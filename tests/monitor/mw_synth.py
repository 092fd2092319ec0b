"""Synthetic data and helpers for the retrain, registry and server tests."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd

from modelwatch_monitor import contract

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYTHON = sys.executable
FEATURES = ["x1", "x2", "x3", "color"]


def frame(n: int, *, concept: str = "a", seed: int = 0, start_id: int = 0) -> pd.DataFrame:
    """Return ``n`` rows of features, an id, a timestamp and a binary target ``y``.

    Concept ``a``: ``y = x1 + color effect + noise > 0``, easy enough that even FLAML's
    first trial comes close to the best AUC (so the no-drift comparison does not hinge
    on how many trials a busy machine allows). Concept ``b`` flips the sign of ``x1``
    and of the colour effect and brings in ``x3``: the same inputs, a different
    relation (concept drift).
    """
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    x3 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    effect = np.select([color == "red", color == "green"], [0.8, -0.8], 0.0)
    noise = rng.normal(scale=0.15 if concept == "a" else 0.3, size=n)
    score = x1 + effect if concept == "a" else -x1 + 0.3 * x3 - effect
    ts = pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(
        np.arange(start_id, start_id + n), unit="min"
    )
    return pd.DataFrame(
        {
            "id": np.arange(start_id, start_id + n),
            "ts": ts,
            "x1": x1,
            "x2": x2,
            "x3": x3,
            "color": color,
            "y": (score + noise > 0).astype(int),
        }
    )


def write_prediction_log(store: str, model: str, rows: pd.DataFrame) -> None:
    """Write ``rows`` (without target) as the model server would log them."""
    part = pathlib.Path(contract.predictions_partition(store, model, "2026-11-02"))
    part.mkdir(parents=True, exist_ok=True)
    log = rows[["id", *FEATURES]].copy()
    log[contract.LOG_PREDICTION] = 0
    log[contract.LOG_REQUEST_ID] = "r"
    log[contract.LOG_TIMESTAMP] = rows["ts"]
    log[contract.LOG_MODEL_VERSION] = 1
    log.to_parquet(part / f"{len(list(part.iterdir()))}.parquet", index=False)


#: spec.data.reference is required (CRD and contract); a profile JSON is never read as
#: training data, so configs that train on recent data only name this one.
UNUSED_REFERENCE = "file:///nonexistent/reference-profile.json"


def job_config(store: str, **retrain: Any) -> dict[str, Any]:
    """Return a job config document for model ``churn`` in ``store``."""
    spec: dict[str, Any] = {
        "model": {
            "name": "churn",
            "task": "classification",
            "target": "y",
            "idColumn": "id",
            "timestampColumn": "ts",
        },
        "data": {},
        "store": {"uri": store},
        "retrain": {
            "trainingData": "both",
            "holdoutFraction": 0.3,
            "minLabeledRows": 50,
            "minImprovement": 0.01,
            "automl": {"timeBudgetSeconds": 2, "estimators": ["lgbm", "rf"], "seed": 0},
            **retrain,
        },
    }
    return contract.build_job_config(name="churn", namespace="default", spec=spec)


def write_config(path: pathlib.Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def run_cli(*args: str, timeout: float = 120) -> tuple[int, dict[str, Any], str]:
    """Run ``modelwatch ARGS`` in a subprocess; return (exit code, result, stderr)."""
    proc = subprocess.run(
        [PYTHON, "-m", "modelwatch_monitor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
    )
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    return proc.returncode, result, proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
