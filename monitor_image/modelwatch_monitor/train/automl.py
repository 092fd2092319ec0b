"""A thin adapter over FLAML AutoML: what it may search, and the search itself.

Everything FLAML-specific lives here and in :mod:`modelwatch_monitor.train.fitted`; the
retrain only sees :class:`AutoMLSettings`, :func:`fit` and
:class:`~modelwatch_monitor.train.fitted.FittedModel`, and the registry only pickles a
``FittedModel``. Holdout scores are :mod:`modelwatch_monitor.train.scoring`'s.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import joblib

from modelwatch_monitor import contract
from modelwatch_monitor.store.feature_schema import Feature

# Imported here also for the artifacts published before FittedModel had its own module:
# their pickles name it modelwatch_monitor.train.automl.FittedModel.
from modelwatch_monitor.train.fitted import FittedModel

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import JsonValue

__all__ = [
    "ESTIMATORS",
    "METRICS",
    "AutoMLSettings",
    "FitResult",
    "FittedModel",
    "TrainingError",
    "cpu_limit",
    "fit",
    "resolve_metric",
]

log = logging.getLogger(__name__)

#: Metrics the holdout comparison understands: task, and whether greater is better
#: (the one table, in the contract).
METRICS: Mapping[str, tuple[str, bool]] = contract.METRICS

#: FLAML estimator names accepted in ``spec.retrain.automl.estimators``.
ESTIMATORS = frozenset(
    {
        "lgbm",
        "rf",
        "extra_tree",
        "xgboost",
        "xgb_limitdepth",
        "catboost",
        "histgb",
        "kneighbor",
        "lrl1",
        "lrl2",
        "sgd",
        "enet",
        "lassolars",
        "svc",
    }
)


class TrainingError(RuntimeError):
    """FLAML could not produce a model."""


def cpu_limit() -> int:
    """Return the number of CPUs this process may use (at least 1): ``joblib.cpu_count()``.

    joblib (through loky) takes the smallest of the CPU count, the process's CPU affinity,
    the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``,
    rounded up) and ``LOKY_MAX_CPU_COUNT`` when set: a container's CPU limit.
    """
    return max(1, int(joblib.cpu_count()))


@dataclass(frozen=True)
class AutoMLSettings:
    """What FLAML may search and for how long.

    Parameters
    ----------
    time_budget : float
        Seconds FLAML may search; must be > 0.
    metric : str
        A key of :data:`METRICS`, or ``"auto"`` (see :func:`resolve_metric`).
    estimators : tuple of str
        FLAML estimator names.
    seed : int
        Random seed, for a reproducible search.
    n_jobs : int
        Threads per trial; :func:`cpu_limit` by default.
    """

    time_budget: float = 60.0
    metric: str = "auto"
    estimators: tuple[str, ...] = ("lgbm", "rf", "extra_tree")
    seed: int = 0
    n_jobs: int = field(default_factory=cpu_limit)

    def __post_init__(self) -> None:
        if not isinstance(self.time_budget, int | float) or not self.time_budget > 0:
            raise ValueError(
                "The 'timeBudgetSeconds' parameter must be a number > 0. "
                f"Got {self.time_budget!r} instead."
            )
        if self.metric != "auto" and self.metric not in METRICS:
            raise ValueError(
                f"The 'metric' parameter must be 'auto' or one of {sorted(METRICS)}. "
                f"Got {self.metric!r} instead."
            )
        if not self.estimators:
            raise ValueError("The 'estimators' parameter must name at least one estimator.")
        unknown = [e for e in self.estimators if e not in ESTIMATORS]
        if unknown:
            raise ValueError(
                f"The 'estimators' parameter must hold names from {sorted(ESTIMATORS)}. "
                f"Got {unknown!r} instead."
            )
        if not isinstance(self.seed, int):
            raise ValueError(f"The 'seed' parameter must be an integer. Got {self.seed!r} instead.")


def resolve_metric(metric: str, task: str, n_classes: int) -> str:
    """Return the concrete metric for ``metric`` (which may be ``"auto"``).

    ``auto`` is ``roc_auc`` for binary classification, ``roc_auc_ovr`` for multiclass
    and ``r2`` for regression: all bounded and greater-is-better, so an absolute
    ``minImprovement`` such as 0.01 means the same thing for every model.
    """
    if metric == "auto":
        if task == "regression":
            return "r2"
        return "roc_auc" if n_classes <= 2 else "roc_auc_ovr"
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    if METRICS[metric][0] != task:
        raise ValueError(f"metric {metric!r} does not apply to a {task} task")
    if metric == "roc_auc" and n_classes > 2:
        return "roc_auc_ovr"
    return metric


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns."""

    model: FittedModel
    best_estimator: str
    best_config: dict[str, JsonValue]
    best_loss: float | None
    seconds: float
    trials: int


def _flaml_logging() -> None:
    """Send FLAML's progress log to stderr (stdout's last line is the job result)."""
    flog = logging.getLogger("flaml.automl.logger")
    if not any(getattr(h, "_modelwatch", False) for h in flog.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s INFO flaml: %(message)s"))
        handler._modelwatch = True  # type: ignore[attr-defined]
        flog.addHandler(handler)


def _plain(value: object) -> JsonValue:
    """Return ``value`` with numpy scalars turned into Python ones (for JSON).

    Anything else that is not JSON is written as its ``str`` (as ``json.dumps`` with
    ``default=str`` writes it).
    """
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            scalar: JsonValue = item()  # a numpy scalar's Python value
        except (TypeError, ValueError):
            return str(value)
        return scalar
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def fit(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    schema: Sequence[Feature],
    task: str,
    metric: str,
    settings: AutoMLSettings,
) -> FitResult:
    """Search models with FLAML and return the best one, refit on all of ``X``.

    Parameters
    ----------
    X : pandas.DataFrame of shape (n_rows, n_features)
        Training features, already typed with :func:`coerce_frame`.
    y : pandas.Series of shape (n_rows,)
        Targets.
    schema : sequence of Feature
    task : {"classification", "regression"}
    metric : str
        A concrete metric (see :func:`resolve_metric`).
    settings : AutoMLSettings

    Returns
    -------
    FitResult

    Raises
    ------
    TrainingError
        FLAML failed or found no model within the budget.
    """
    from flaml.automl.automl import AutoML

    _flaml_logging()
    automl = AutoML()  # type: ignore[no-untyped-call]
    log.info(
        "training: FLAML %s, %d rows, %d features, metric %s, budget %ss, estimators %s, "
        "n_jobs %d, seed %d",
        task,
        len(X),
        X.shape[1],
        metric,
        settings.time_budget,
        ",".join(settings.estimators),
        settings.n_jobs,
        settings.seed,
    )
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # FLAML 2.7 still passes inplace=True, which pandas 3.1 deprecates; harmless.
            warnings.filterwarnings("ignore", message="The inplace keyword")
            automl.fit(
                X,
                y,
                task=task,
                metric=metric,
                time_budget=settings.time_budget,
                estimator_list=list(settings.estimators),
                seed=settings.seed,
                n_jobs=settings.n_jobs,
                verbose=3,
                log_file_name="",
                mlflow_logging=False,
                model_history=False,
                retrain_full=True,
            )
    except Exception as exc:  # FLAML raises many kinds; all mean "no model"
        raise TrainingError(f"FLAML failed: {type(exc).__name__}: {exc}") from exc
    seconds = time.perf_counter() - start
    estimator = getattr(automl, "_trained_estimator", None)
    if estimator is None or automl.best_estimator is None:
        raise TrainingError(
            f"FLAML found no model within {settings.time_budget}s; raise timeBudgetSeconds"
        )
    per_learner = getattr(automl, "_iter_per_learner", None) or {}
    trials = int(sum(per_learner.values())) if per_learner else 0
    log.info(
        "training done in %.1fs: best %s after %d trials, %s loss %.4g",
        seconds,
        automl.best_estimator,
        trials,
        metric,
        automl.best_loss,
    )
    model = FittedModel(
        schema=schema,
        task=task,
        transformer=automl._transformer,
        estimator=estimator,
        label_transformer=getattr(automl, "_label_transformer", None) or None,
    )
    best_loss = automl.best_loss
    return FitResult(
        model=model,
        best_estimator=str(automl.best_estimator),
        best_config={str(k): _plain(v) for k, v in dict(automl.best_config or {}).items()},
        best_loss=None if best_loss is None else float(best_loss),
        seconds=seconds,
        trials=trials,
    )
