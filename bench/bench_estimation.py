"""Estimated performance without labels, against realized metrics and NannyML's CBPE.

Synthetic binary classification with a known truth: ``P(y = 1 | x) = sigmoid(f(x))``;
a gradient-boosting model is trained on 20,000 rows and logs ``proba_1`` and a
prediction; 20,000 more labelled rows with the model's probabilities are the reference
(the calibration set, for both estimators). Windows of ``BENCH_ESTIMATION_WINDOW`` rows
(default 2,000):

- ``none``: drawn like the reference (5 windows);
- ``covariate``: ``x0`` moved by 0.25..2.5 and ``x1`` widened (10 windows);
  ``P(y | x)`` unchanged, so a calibrated estimate should follow the realized metric;
- ``concept``: ``f`` changed (5 windows); the inputs and the probabilities look alike,
  so no estimate without labels can see it -- the realized metric must, once labels
  arrive, and override the estimate.

Figures, per window kind: the mean absolute error of the estimated vs the realized
accuracy and ROC AUC, for modelwatch and for NannyML's CBPE on the same windows; the
share of windows whose realized value falls in modelwatch's band; the time per window
(modelwatch: :func:`modelwatch_monitor.check.estimation.estimate_metrics`, after one untimed
call; NannyML: the cheaper of one ``estimate`` call over all windows divided by their
number and one call per window, both after its fit) and the
band width against the window size. Targets: MAE no worse than NannyML's; time per
window at most 1/10 of NannyML's.

NannyML is never a dependency of modelwatch: it runs in its own virtual environment,
created on first use under ``BENCH_NANNYML_VENV`` (default
``~/.cache/modelwatch-bench/nannyml-venv``) with ``pip install nannyml==0.13.1
statsmodels`` (0.13.1 imports statsmodels without declaring it). When that cannot be
built, the NannyML figures are None with the reason.
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

WINDOW = int(os.environ.get("BENCH_ESTIMATION_WINDOW", 2000))
NANNYML = os.environ.get("BENCH_NANNYML_VENV", "~/.cache/modelwatch-bench/nannyml-venv")
NANNYML_PIN = "nannyml==0.13.1"
MAX_DEGRADATION = 0.1

NANNYML_SCRIPT = """
import json, sys, time
import pandas as pd
import nannyml as nml
ref = pd.read_parquet(sys.argv[1])
ana = pd.read_parquet(sys.argv[2])
window = int(sys.argv[3])
t0 = time.perf_counter()
est = nml.CBPE(
    y_pred_proba="proba_1", y_pred="prediction", y_true="y",
    problem_type="classification_binary", metrics=["roc_auc", "accuracy"], chunk_size=window,
)
est.fit(ref)
t1 = time.perf_counter()
res = est.estimate(ana.drop(columns=["y"]))
t2 = time.perf_counter()
df = res.to_df()
out = {
    "fit_s": t1 - t0,
    "calibrated": bool(est.needs_calibration),
    "estimate_s": t2 - t1,
    "roc_auc": df[("roc_auc", "value")].tolist(),
    "accuracy": df[("accuracy", "value")].tolist(),
}
# one call per window, as one check per window would do
t3 = time.perf_counter()
for start in range(0, len(ana), window):
    est.estimate(ana.iloc[start:start + window].drop(columns=["y"]))
out["estimate_per_call_s"] = (time.perf_counter() - t3) / (len(ana) // window)
print(json.dumps(out))
"""


def _truth(x: np.ndarray[Any, Any], concept: bool) -> np.ndarray[Any, Any]:
    if concept:
        f = -0.4 * x[:, 0] - x[:, 1] + 0.8 * x[:, 2] - 0.8 * x[:, 2] * x[:, 3] + 0.3
    else:
        f = 1.2 * x[:, 0] - x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + 0.5 * np.sin(2 * x[:, 0])
    return 1 / (1 + np.exp(-f))


def _draw(
    rng: np.random.Generator, n: int, *, shift: float = 0.0, concept: bool = False
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x = rng.normal(size=(n, 4))
    x[:, 0] += shift
    x[:, 1] *= 1 + shift / 3
    y = (rng.random(n) < _truth(x, concept)).astype(np.int64)
    return x, y


def _frame(model: Any, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> Any:
    import pandas as pd

    p1 = model.predict_proba(x)[:, 1]
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    df["proba_1"] = p1
    df["prediction"] = (p1 > 0.5).astype(np.int64)
    df["y"] = y
    return df


def _nannyml_python() -> tuple[str | None, str | None]:
    venv = pathlib.Path(os.path.expanduser(NANNYML))
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import nannyml, statsmodels"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return str(python), None
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", NANNYML_PIN, "statsmodels"],
            check=True,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        return None, f"cannot build the NannyML environment: {exc} {str(detail)[-300:]}"
    return str(python), None


def _mae(a: list[float], b: list[float]) -> float:
    return round(float(np.mean(np.abs(np.asarray(a) - np.asarray(b)))), 4)


def main() -> dict[str, Any]:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelwatch_monitor.check import estimation
    from modelwatch_monitor.check.performance import compute_metrics, evaluate

    rng = np.random.default_rng(42)
    x_train, y_train = _draw(rng, 20_000)
    model = HistGradientBoostingClassifier(max_iter=150, random_state=0).fit(x_train, y_train)
    reference = _frame(model, *_draw(rng, 20_000))

    kinds: list[str] = []
    windows = []
    for _ in range(5):
        kinds.append("none")
        windows.append(_frame(model, *_draw(rng, WINDOW)))
    for shift in np.linspace(0.25, 2.5, 10):
        kinds.append("covariate")
        windows.append(_frame(model, *_draw(rng, WINDOW, shift=float(shift))))
    for _ in range(5):
        kinds.append("concept")
        windows.append(_frame(model, *_draw(rng, WINDOW, concept=True)))

    t0 = time.perf_counter()
    calibration = estimation.fit_calibration(reference["y"], {"1": reference["proba_1"]})
    fit_s = time.perf_counter() - t0
    base = compute_metrics(
        reference["y"], reference["prediction"], "classification", proba={"1": reference["proba_1"]}
    )

    ours: dict[str, list[float]] = {"accuracy": [], "roc_auc": []}
    bands: dict[str, list[tuple[float, float]]] = {"accuracy": [], "roc_auc": []}
    realized: dict[str, list[float]] = {"accuracy": [], "roc_auc": []}
    seconds = []
    overrides = []
    # One untimed call first: NannyML's timed calls follow its fit, warm too.
    estimation.estimate_metrics(
        calibration, {"1": windows[0]["proba_1"].to_numpy()}, windows[0]["prediction"].to_numpy()
    )
    for kind, w in zip(kinds, windows, strict=True):
        proba = {"1": w["proba_1"].to_numpy()}
        pred = w["prediction"].to_numpy()
        start = time.perf_counter()
        found = estimation.estimate_metrics(calibration, proba, pred)
        seconds.append(time.perf_counter() - start)
        real = compute_metrics(w["y"], pred, "classification", proba=proba)
        for name in ours:
            ours[name].append(found[name].value)
            bands[name].append((found[name].lower, found[name].upper))
            value = real[name].value
            assert value is not None
            realized[name].append(value)
        if kind == "concept":
            # What the check does once labels cover the window: the realized metric
            # decides (degraded), the estimate is marked overridden.
            metric = evaluate(real, "roc_auc", baseline=base["roc_auc"].value, labeled_rows=len(w))
            entry = estimation.evaluate_estimate(
                found["roc_auc"],
                "roc_auc",
                baseline=base["roc_auc"].value,
                baseline_source="reference",
                max_degradation=MAX_DEGRADATION,
                rows=len(w),
                realized=metric,
            )
            overrides.append(
                {
                    "realized": round(float(metric["value"]), 4),
                    "realizedDegraded": metric["degraded"],
                    "estimated": round(found["roc_auc"].value, 4),
                    "estimatedDegraded": entry["degraded"],
                    "overridden": entry["overridden"],
                }
            )

    widths = {}
    for n in (250, 1000, 4000, 16000):
        w = _frame(model, *_draw(rng, n))
        f = estimation.estimate_metrics(
            calibration, {"1": w["proba_1"].to_numpy()}, w["prediction"].to_numpy()
        )
        widths[str(n)] = {k: round(f[k].upper - f[k].lower, 4) for k in ("accuracy", "roc_auc")}

    nanny: dict[str, Any] | None = None
    nanny_error = None
    python, nanny_error = _nannyml_python()
    if python:
        with tempfile.TemporaryDirectory(prefix="mw-bench-est-") as tmp:
            ref_path, ana_path = f"{tmp}/ref.parquet", f"{tmp}/ana.parquet"
            reference.to_parquet(ref_path, index=False)
            pd.concat(windows, ignore_index=True).to_parquet(ana_path, index=False)
            run = subprocess.run(
                [python, "-c", NANNYML_SCRIPT, ref_path, ana_path, str(WINDOW)],
                capture_output=True,
                text=True,
            )
            if run.returncode == 0:
                nanny = json.loads(run.stdout.strip().splitlines()[-1])
            else:
                nanny_error = run.stderr[-500:]

    figures: dict[str, Any] = {
        "window_rows": WINDOW,
        "reference_rows": len(reference),
        "windows": {k: kinds.count(k) for k in ("none", "covariate", "concept")},
        "modelwatch": {
            "calibration_fit_ms": round(fit_s * 1000, 2),
            "ms_per_window": round(float(np.mean(seconds)) * 1000, 3),
            "ms_per_window_median": round(float(np.median(seconds)) * 1000, 3),
        },
        "band_width_by_rows": widths,
        "concept_shift_once_labels_arrive": overrides,
    }
    groups = {
        "none": ["none"],
        "covariate": ["covariate"],
        "none_and_covariate": ["none", "covariate"],
        "concept": ["concept"],
    }
    for kind, members in groups.items():
        idx = [i for i, k in enumerate(kinds) if k in members]
        block: dict[str, Any] = {}
        for name in ("accuracy", "roc_auc"):
            r = [realized[name][i] for i in idx]
            o = [ours[name][i] for i in idx]
            inside = sum(bands[name][i][0] <= realized[name][i] <= bands[name][i][1] for i in idx)
            block[name] = {
                "realized_mean": round(float(np.mean(r)), 4),
                "modelwatch_mae": _mae(o, r),
                "modelwatch_in_band": f"{inside}/{len(idx)}",
            }
            if nanny:
                block[name]["nannyml_mae"] = _mae([nanny[name][i] for i in idx], r)
        figures[kind] = block
    if nanny:
        batched = nanny["estimate_s"] / len(windows)
        per_window = min(batched, nanny["estimate_per_call_s"])  # NannyML's cheapest
        figures["nannyml"] = {
            "version": NANNYML_PIN,
            "fit_ms": round(nanny["fit_s"] * 1000, 2),
            "calibrated": nanny["calibrated"],
            "ms_per_window_batched": round(batched * 1000, 3),
            "ms_per_window_one_call_each": round(nanny["estimate_per_call_s"] * 1000, 3),
        }
        figures["time_ratio_modelwatch_over_nannyml"] = round(
            float(np.mean(seconds)) / per_window, 4
        )
    else:
        figures["nannyml"] = {"error": nanny_error}
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
