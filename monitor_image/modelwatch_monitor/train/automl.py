"""A thin adapter over FLAML AutoML: fit, predict, score.

Everything FLAML-specific lives here; :mod:`modelwatch_monitor.train.retrain` only sees
:class:`AutoMLSettings`, :func:`fit` and :class:`FittedModel`, and the registry only
pickles a :class:`FittedModel`.

The stored model is not FLAML's ``AutoML`` object (which keeps the training data) but
the parts needed to predict: FLAML's data transformer, the best estimator and the
label encoder, together with the feature schema of
:mod:`modelwatch_monitor.store.feature_schema`.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelwatch_monitor import contract
from modelwatch_monitor.store.feature_schema import Feature, coerce_frame

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

log = logging.getLogger(__name__)

TASKS = ("classification", "regression")

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


def cpu_limit(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """Return the number of CPUs this container may use (at least 1).

    Reads the CFS quota of the cgroup (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us``), rounds it up, and caps it by the CPUs the process may run
    on. Without a quota, that CPU count alone.

    Parameters
    ----------
    cgroup_root : str
        Where the cgroup filesystem is mounted.

    Returns
    -------
    int
    """
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        available = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is None:
        return max(1, available)
    return max(1, min(available, math.ceil(quota)))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _cgroup_quota(root: str) -> float | None:
    v2 = _read(f"{root}/cpu.max")
    if v2:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period:
            try:
                return int(quota) / int(period)
            except ValueError:
                return None
        return None
    for sub in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        q, p = _read(f"{root}/{sub}/cpu.cfs_quota_us"), _read(f"{root}/{sub}/cpu.cfs_period_us")
        if q is not None and p is not None:
            try:
                qi, pi = int(q), int(p)
            except ValueError:
                return None
            return qi / pi if qi > 0 and pi > 0 else None
    return None


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


greater_is_better = contract.greater_is_better


def _flaml_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flaml")
    except PackageNotFoundError:  # pragma: no cover - FLAML is a dependency of the monitor
        return "unknown"


def _pinned_categories(transformer: Any) -> dict[str, list[Any]]:
    """Return the categories FLAML's ``DataTransformer`` pinned at fit time, per column.

    The only place that reads FLAML's private state, so a new FLAML release breaks one
    function, and :meth:`FittedModel._check_fast_transform` notices and falls back to
    FLAML's own transform. Two layouts are known: FLAML >= 2.8 keeps an ``OrdinalEncoder``
    (``_ordinal_encoder.categories_``, one array per categorical column, ``"__NAN__"``
    appended at transform time); FLAML 2.3-2.7 a dict ``_cat_categories``.

    Raises
    ------
    LookupError
        Neither layout is present (a FLAML release this adapter does not know).
    """
    columns = list(transformer._cat_columns)
    encoder = getattr(transformer, "_ordinal_encoder", None)
    if encoder is not None:
        pinned: dict[str, list[Any]] = {}
        for col, cats in zip(columns, encoder.categories_, strict=True):
            values = list(cats)
            if "__NAN__" not in values:
                values.append("__NAN__")
            pinned[col] = values
        return pinned
    saved = getattr(transformer, "_cat_categories", None)
    if isinstance(saved, dict) and all(col in saved for col in columns):
        return {col: list(saved[col]) for col in columns}
    if not columns:
        return {}
    raise LookupError(
        f"FLAML {_flaml_version()}'s DataTransformer keeps its fitted categories in neither "
        "'_ordinal_encoder' nor '_cat_categories'"
    )


class FittedModel:
    """A trained model ready to predict on raw feature tables.

    Parameters
    ----------
    schema : sequence of Feature
        The model's input columns.
    task : {"classification", "regression"}
    transformer : object
        FLAML's fitted ``DataTransformer``.
    estimator : object
        FLAML's fitted best estimator.
    label_transformer : object or None
        FLAML's label encoder, when the labels were not ``0..k-1``.
    """

    def __init__(
        self,
        *,
        schema: Sequence[Feature],
        task: str,
        transformer: Any,
        estimator: Any,
        label_transformer: Any,
    ) -> None:
        self.schema = list(schema)
        self.task = task
        self.transformer = transformer
        self.estimator = estimator
        self.label_transformer = label_transformer

    def set_threads(self, n_jobs: int) -> None:
        """Set the threads the estimator predicts with.

        Training uses every CPU of the pod; a server answering many small requests is
        faster with one thread per prediction (no thread start-up per call).
        """
        inner = getattr(self.estimator, "estimator", None) or getattr(
            self.estimator, "_model", None
        )
        get_params = getattr(inner, "get_params", None)
        if callable(get_params) and "n_jobs" in get_params():
            inner.set_params(n_jobs=n_jobs)  # type: ignore[union-attr]

    @property
    def feature_names(self) -> list[str]:
        """The input column names, in model order."""
        return [f.name for f in self.schema]

    @property
    def classes_(self) -> npt.NDArray[Any] | None:
        """Class labels of shape (n_classes,), in the column order of ``predict_proba``."""
        import numpy as np

        if self.task != "classification":
            return None
        if self.label_transformer is not None:
            return np.asarray(self.label_transformer.classes_)
        return np.asarray(self.estimator.classes_)

    def _prepare(self, X: pd.DataFrame, *, coerce: bool) -> Any:
        if coerce:
            X = coerce_frame(X, self.schema)
        fast = getattr(self, "_fast", None)
        if fast is None:
            fast = self._fast = self._check_fast_transform()
        if fast:
            return self._fast_transform(X)
        return self.transformer.transform(X)

    def _fast_transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """FLAML's ``DataTransformer.transform`` for typed tables, without its overhead.

        FLAML's version costs milliseconds per call whatever the row count (a pandas copy,
        a ``ColumnTransformer``); a server predicting single rows spends most of its time
        there. This one does the same with numpy: categories re-coded onto FLAML's pinned
        categories (missing and unseen as ``__NAN__``), numeric NaN replaced by the
        imputer's medians. :meth:`_check_fast_transform` verifies it against FLAML's.
        """
        import numpy as np
        import pandas as pd

        t = self.transformer
        pinned = _pinned_categories(t)
        out: dict[str, Any] = {}
        for col in t._cat_columns:
            saved = pinned[col]
            values = X[col]
            if isinstance(values.dtype, pd.CategoricalDtype):
                lookup = {c: i for i, c in enumerate(saved)}
                nan_code = lookup["__NAN__"]
                remap = np.array(
                    [lookup.get(c, nan_code) for c in values.cat.categories] + [nan_code],
                    dtype=np.int64,
                )
                codes = remap[values.cat.codes.to_numpy()]  # code -1 picks the last slot
                out[col] = pd.Categorical.from_codes(codes, categories=saved)
            else:
                filled = values.astype(object).where(values.notna(), "__NAN__")
                out[col] = pd.Categorical(filled.where(filled.isin(saved), "__NAN__"), saved)
        nums = list(t._num_columns)
        if nums:
            arr = X[nums].to_numpy(dtype=np.float64, copy=True)
            mask = np.isnan(arr)
            if mask.any():
                medians = t.transformer.named_transformers_["continuous"].statistics_
                arr[mask] = np.broadcast_to(medians, arr.shape)[mask]
            for j, col in enumerate(nums):
                out[col] = arr[:, j]
        return pd.DataFrame(out, index=X.index)

    def _check_fast_transform(self) -> bool:
        """Return True when :meth:`_fast_transform` matches FLAML's on a probe table."""
        import numpy as np
        import pandas as pd

        t = self.transformer
        try:
            if (
                t._task.is_nlp()
                or t._task.is_ts_forecast()
                or t._datetime_columns
                or getattr(t, "_drop", False)
                or (t._num_columns and t.transformer is None)
            ):
                return False
            rows = 6
            data: dict[str, Any] = {}
            for i, feat in enumerate(self.schema):
                if feat.kind == "categorical":
                    cats = list(feat.categories or ())
                    vals: list[Any] = [
                        *cats[:3],
                        None,
                        "never-seen-value",
                        cats[-1] if cats else None,
                    ]
                    data[feat.name] = (vals * rows)[:rows]
                else:
                    data[feat.name] = [0.5 + i, np.nan, -3.0, 1e6, 0.0, np.nan]
            probe = coerce_frame(pd.DataFrame(data), self.schema)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = self.transformer.transform(probe)
            pd.testing.assert_frame_equal(self._fast_transform(probe), expected)
        except Exception as exc:  # any difference or surprise: use FLAML's own path
            log.warning(
                "serving with FLAML's own transform (slower per request): the fast path does "
                "not reproduce FLAML %s's DataTransformer for this model: %s",
                _flaml_version(),
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )
            return False
        return True

    def predict(self, X: pd.DataFrame, *, coerce: bool = True) -> npt.NDArray[Any]:
        """Predict labels or values.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_rows, n_columns)
            Holds at least the schema's columns.
        coerce : bool
            Type the columns with :func:`coerce_frame` first; pass False when ``X``
            comes from :func:`~modelwatch_monitor.store.feature_schema.frame_from_records`.

        Returns
        -------
        numpy.ndarray of shape (n_rows,)
        """
        import numpy as np

        y = np.asarray(self.estimator.predict(self._prepare(X, coerce=coerce)))
        if y.ndim > 1:
            y = y.ravel()
        if self.label_transformer is not None:
            return np.asarray(self.label_transformer.inverse_transform(y.astype(int)))
        return y

    def predict_proba(self, X: pd.DataFrame, *, coerce: bool = True) -> npt.NDArray[np.float64]:
        """Return class probabilities of shape (n_rows, n_classes), columns as ``classes_``."""
        import numpy as np

        if self.task != "classification":
            raise TypeError("predict_proba needs a classifier")
        return np.asarray(
            self.estimator.predict_proba(self._prepare(X, coerce=coerce)), dtype=np.float64
        )

    def predict_both(
        self, X: pd.DataFrame, *, coerce: bool = True
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64] | None]:
        """Return ``(predictions, probabilities or None)`` with one transform of ``X``."""
        import numpy as np

        prepared = self._prepare(X, coerce=coerce)
        if self.task != "classification":
            return np.asarray(self.estimator.predict(prepared)).ravel(), None
        proba = np.asarray(self.estimator.predict_proba(prepared), dtype=np.float64)
        classes = self.classes_
        assert classes is not None
        return classes[np.argmax(proba, axis=1)], proba


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns."""

    model: FittedModel
    best_estimator: str
    best_config: dict[str, Any]
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


def _plain(value: Any) -> Any:
    """Return ``value`` with numpy scalars turned into Python ones (for JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            return str(value)
    return value


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
        best_config=_plain(dict(automl.best_config or {})),
        best_loss=None if best_loss is None else float(best_loss),
        seconds=seconds,
        trials=trials,
    )


def score(model: Any, X: pd.DataFrame, y: pd.Series, metric: str) -> float:
    """Score ``model`` on a holdout with one of :data:`METRICS`.

    Champion and challenger go through this same function, so their scores compare.

    Parameters
    ----------
    model : FittedModel
        Anything with ``predict`` / ``predict_proba`` / ``classes_`` of the same shape.
    X : pandas.DataFrame of shape (n_rows, n_columns)
        Raw holdout features; the model types them with its own schema.
    y : pandas.Series of shape (n_rows,)
    metric : str

    Returns
    -------
    float

    Raises
    ------
    ValueError
        The metric is undefined on this holdout (e.g. a single class for ROC AUC).
    """
    import numpy as np
    from sklearn import metrics as skm

    y_true = np.asarray(y)
    if METRICS[metric][0] == "regression":
        pred = np.asarray(model.predict(X), dtype=np.float64)
        if metric == "r2":
            return float(skm.r2_score(y_true, pred))
        if metric == "rmse":
            return float(np.sqrt(skm.mean_squared_error(y_true, pred)))
        if metric == "mse":
            return float(skm.mean_squared_error(y_true, pred))
        if metric == "mae":
            return float(skm.mean_absolute_error(y_true, pred))
        return float(skm.mean_absolute_percentage_error(y_true, pred))

    classes = np.asarray(model.classes_)
    if metric in ("accuracy", "f1", "macro_f1", "micro_f1"):
        pred = np.asarray(model.predict(X))
        if metric == "accuracy":
            return float(skm.accuracy_score(y_true, pred))
        if metric == "f1":
            positive = _positive_class(y_true, classes)
            return float(skm.f1_score(y_true == positive, pred == positive))
        average = "macro" if metric == "macro_f1" else "micro"
        return float(skm.f1_score(y_true, pred, average=average))
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    if metric == "log_loss":
        return float(skm.log_loss(y_true, proba, labels=list(classes)))
    present = np.unique(y_true)
    if len(present) < 2:
        raise ValueError(f"{metric} is undefined: the holdout holds one class only")
    if metric == "roc_auc" and len(present) == 2:
        positive = _positive_class(y_true, classes)
        return float(skm.roc_auc_score(y_true == positive, _column(proba, classes, positive)))
    # One-vs-rest, macro-averaged over the classes present in the holdout.
    aucs = [skm.roc_auc_score(y_true == c, _column(proba, classes, c)) for c in present]
    return float(np.mean(aucs))


def _positive_class(y_true: npt.NDArray[Any], classes: npt.NDArray[Any]) -> Any:
    import numpy as np

    # scikit-learn's convention: the greater of the two labels is the positive one.
    present = np.unique(y_true)
    if len(present) == 2 or len(classes) == 0:
        return present[-1]
    return np.unique(classes)[-1]


def _column(proba: npt.NDArray[np.float64], classes: npt.NDArray[Any], label: Any) -> Any:
    import numpy as np

    idx = np.flatnonzero(classes == label)
    if idx.size == 0:  # the model never saw this class: it scores 0 for it
        return np.zeros(proba.shape[0])
    return proba[:, idx[0]]
