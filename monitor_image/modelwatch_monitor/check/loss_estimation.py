"""Estimated regression error before labels arrive: direct loss estimation (DLE).

A second model, trained on the reference (features and the model's prediction in,
the model's absolute and squared error out), predicts how wrong each logged prediction
is. The mean of those predictions over a window estimates its ``mae`` and (square root)
``rmse``. Each row's error is a random variable with the predicted ``E|e|`` and
``E[e^2]``, so ``Var|e| = E[e^2] - E|e|^2``, and ``Var(e^2) = 2 E[e^2]^2`` if the error
is normal; independent rows give the band ``value +- z * sqrt(sum of variances) / n``
(for ``rmse`` on the mean squared error, then the square root), narrowing as
``1 / sqrt(rows)`` and widening where the model is less sure. ``r2`` needs the
variance of the labels and is not estimated.

The loss model is scikit-learn's ``HistGradientBoostingRegressor`` (categorical
features native). It is written with joblib next to the reference profile
(``profiles/loss-model.joblib``), its sha256 recorded in the profile
(``performance.lossModel``) and checked before it is unpickled, like a model version.
Like the calibration of a classifier, it is learned where labels exist and is sound
under covariate shift, blind to concept shift until labels arrive.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelwatch_monitor.check.documents import EstimateEntry, LossModelEntry, ReferencePerformance
from modelwatch_monitor.check.estimation import DEFAULT_LEVEL, Estimate, EstimateTerms
from modelwatch_monitor.check.profile_format import Profile
from modelwatch_monitor.store.dataio import DataError, Source

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

ESTIMABLE_METRICS: Final = ("mae", "rmse")
LOSS_MODEL_FILE: Final = "loss-model.joblib"
MIN_ROWS: Final = 200
MAX_ROWS: Final = 50_000
PREDICTION: Final = "__prediction__"
REASON_NO_LOSS_MODEL: Final = "NoLossModel"


class Regressor(Protocol):
    """A fitted regressor of the error (scikit-learn's ``predict``)."""

    def predict(self, X: pd.DataFrame) -> NDArray[np.float64]: ...


def model_input(
    features: pd.DataFrame,
    prediction: ArrayLike,
    names: Sequence[str],
    categorical: Sequence[str],
) -> pd.DataFrame:
    """The loss model's input: the features ``names``, then the prediction."""
    import pandas as pd  # deferred: pandas is heavy, and only an estimate needs it here

    X = pd.DataFrame({f: features[f] for f in names})
    for c in categorical:
        X[c] = X[c].astype(str).astype("category")
    X[PREDICTION] = np.asarray(prediction, dtype=np.float64)
    return X


@dataclass
class LossModel:
    """Two fitted regressors: the absolute and the squared error of the model."""

    features: list[str]
    categorical: list[str]
    abs_model: Regressor
    sq_model: Regressor

    def frame(self, features: pd.DataFrame, prediction: ArrayLike) -> pd.DataFrame:
        """The model input: the features, then the prediction (pandas in and out)."""
        return model_input(features, prediction, self.features, self.categorical)

    def estimate(
        self, features: pd.DataFrame, prediction: ArrayLike, *, level: float = DEFAULT_LEVEL
    ) -> dict[str, Estimate]:
        """Estimate ``mae`` and ``rmse`` of a window of shape (n rows)."""
        X = self.frame(features, prediction)
        n = len(X)
        if n == 0:
            raise ValueError("the window has no rows")
        z = NormalDist().inv_cdf(0.5 + level / 2)
        abs_err = np.clip(self.abs_model.predict(X), 0.0, None)
        sq_err = np.clip(self.sq_model.predict(X), 0.0, None)
        sq_err = np.maximum(sq_err, abs_err**2)  # E[e^2] >= E|e|^2
        mae = float(abs_err.mean())
        mae_sd = math.sqrt(float(np.sum(sq_err - abs_err**2))) / n
        mse = float(sq_err.mean())
        mse_sd = math.sqrt(float(np.sum(2 * sq_err**2))) / n
        return {
            "mae": Estimate("mae", mae, max(mae - z * mae_sd, 0.0), mae + z * mae_sd),
            "rmse": Estimate(
                "rmse",
                math.sqrt(mse),
                math.sqrt(max(mse - z * mse_sd, 0.0)),
                math.sqrt(mse + z * mse_sd),
            ),
        }


def fit_loss_model(
    features: pd.DataFrame,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    categorical: Sequence[str] = (),
    seed: int = 0,
) -> LossModel:
    """Fit the loss model on labelled rows (a pandas frame of the features), at most
    :data:`MAX_ROWS` of them drawn at random.

    Raises
    ------
    ValueError
        Fewer than :data:`MIN_ROWS` rows with a label and a prediction.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    keep = ~(np.isnan(yt) | np.isnan(yp))
    if keep.sum() < MIN_ROWS:
        raise ValueError(
            f"the loss model needs at least {MIN_ROWS} rows with a target and a prediction;"
            f" got {int(keep.sum())}"
        )
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(keep)
    if len(rows) > MAX_ROWS:
        rows = np.sort(rng.choice(rows, MAX_ROWS, replace=False))
    # HistGradientBoosting takes at most 255 categories per feature: an id-like column
    # (thousands of values) says nothing about the error anyway, so it is left out.
    too_many = {c for c in categorical if c in features and features[c].nunique() > 255}
    names = [str(c) for c in features.columns if c not in too_many]
    kept = [c for c in categorical if c in names]
    X = model_input(features.iloc[rows].reset_index(drop=True), yp[rows], names, kept)
    err = yt[rows] - yp[rows]
    fitted: list[Regressor] = []
    for target in (np.abs(err), err**2):
        reg = HistGradientBoostingRegressor(
            max_iter=200, learning_rate=0.05, random_state=seed, categorical_features="from_dtype"
        )
        fitted.append(reg.fit(X, target))
    abs_model, sq_model = fitted
    return LossModel(names, kept, abs_model, sq_model)


def dump(model: LossModel) -> bytes:
    """The joblib bytes of ``model``."""
    import joblib

    buf = io.BytesIO()
    joblib.dump(model, buf, compress=3)
    return buf.getvalue()


def save(model: LossModel, uri: str) -> LossModelEntry:
    """Write ``model`` to ``uri``; return the profile's ``performance.lossModel`` entry."""
    import fsspec

    data = dump(model)
    fs, path = fsspec.core.url_to_fs(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as fh:
        fh.write(data)
    return {"uri": uri, "sha256": hashlib.sha256(data).hexdigest()}


def load(entry: LossModelEntry) -> LossModel:
    """Read the loss model the profile names; refuse one whose sha256 differs.

    Raises
    ------
    DataError
        Missing, unreadable, or not the file the profile recorded.
    """
    import fsspec
    import joblib

    uri, want = str(entry.get("uri", "")), str(entry.get("sha256", ""))
    try:
        with fsspec.open(uri, "rb") as fh:
            data = fh.read()
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the loss model {uri!r}: {exc}") from exc
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise DataError(
            f"the loss model {uri!r} has sha256 {got[:12]}..., the profile recorded "
            f"{want[:12]}...; refusing to unpickle it"
        )
    model = joblib.load(io.BytesIO(data))
    if not isinstance(model, LossModel):
        raise DataError(f"{uri!r} is not a modelwatch loss model")
    return model


def attach(
    profile: Profile,
    source: Source,
    *,
    target: str | None,
    prediction: str | None,
    uri: str,
) -> None:
    """For a regression reference with target and prediction, fit the loss model,
    save it to ``uri`` and record it in ``profile.performance['lossModel']``.

    Never fails the check: a reference that cannot train it leaves a log line.
    """
    perf = profile.performance
    if not perf or perf.get("task") != "regression" or not target or not prediction:
        return
    if not {target, prediction} <= set(source.columns):
        return
    features = [f for f in profile.features if f in source.columns]
    categorical = [f for f in features if profile.columns[f].type == "categorical"]
    try:
        frame = source.table([*features, target, prediction]).to_pandas()
        model = fit_loss_model(
            frame[features], frame[target], frame[prediction], categorical=categorical
        )
        perf["lossModel"] = save(model, uri)
        perf["lossModel"]["rows"] = len(frame)
    except (ValueError, TypeError, OSError) as exc:
        log.info("no loss model for estimated regression error: %s", exc)


def estimate_window(
    source: Source,
    performance: ReferencePerformance | None,
    terms: EstimateTerms,
    *,
    prediction_column: str | None,
) -> EstimateEntry:
    """The ``estimatedMetric`` entry of a regression window (see
    :func:`modelwatch_monitor.check.estimation.evaluate_estimate`)."""
    metric, level, entry = terms.metric, terms.level, terms.entry
    if metric not in ESTIMABLE_METRICS:
        return entry(None, 0, f"NotEstimable: {metric} is not estimated without labels")
    doc = (performance or {}).get("lossModel")
    if not doc:
        return entry(
            None,
            0,
            f"{REASON_NO_LOSS_MODEL}: the reference needs the features, the target and the "
            "model's prediction column to train the loss model",
        )
    try:
        model = load(doc)
    except DataError as exc:
        return entry(None, 0, f"{REASON_NO_LOSS_MODEL}: {exc}")
    if not prediction_column or prediction_column not in source.columns:
        return entry(None, 0, f"{REASON_NO_LOSS_MODEL}: no prediction column in the window")
    missing = [f for f in model.features if f not in source.columns]
    if missing:
        return entry(None, 0, f"{REASON_NO_LOSS_MODEL}: feature {missing[0]!r} is not logged")
    frame = source.table([*model.features, prediction_column]).to_pandas()
    frame = frame[frame[prediction_column].notna()]
    if not len(frame):
        return entry(None, 0, f"{REASON_NO_LOSS_MODEL}: no prediction in the window")
    found = model.estimate(frame, frame[prediction_column].to_numpy(), level=level)
    return entry(found[metric], len(frame), None)
