"""The trained model as the registry stores it: FLAML's fitted parts, ready to predict.

Not FLAML's ``AutoML`` object (which keeps the training data) but the parts needed to
predict: FLAML's data transformer, the best estimator and the label encoder, together
with the feature schema of :mod:`modelwatch_monitor.store.feature_schema`.

Artifacts published before this module existed pickled the class as
``modelwatch_monitor.train.automl.FittedModel``; :mod:`~modelwatch_monitor.train.automl`
imports it, so they still load.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

from modelwatch_monitor.store.feature_schema import Feature, coerce_frame

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    from flaml.automl.data import DataTransformer
    from sklearn.preprocessing import LabelEncoder

    from modelwatch_monitor.store.estimators import Estimator, Labels, Probabilities

log = logging.getLogger(__name__)


def _flaml_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flaml")
    except PackageNotFoundError:  # pragma: no cover - FLAML is a dependency of the monitor
        return "unknown"


def _pinned_categories(transformer: DataTransformer) -> dict[str, list[Hashable]]:
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
        pinned: dict[str, list[Hashable]] = {}
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
        transformer: DataTransformer,
        estimator: Estimator,
        label_transformer: LabelEncoder | None,
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
    def classes_(self) -> Labels | None:
        """Class labels of shape (n_classes,), in the column order of ``predict_proba``."""
        import numpy as np

        if self.task != "classification":
            return None
        if self.label_transformer is not None:
            return np.asarray(self.label_transformer.classes_)
        return np.asarray(self.estimator.classes_)

    def _prepare(self, X: pd.DataFrame, *, coerce: bool) -> pd.DataFrame:
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
        out: dict[str, pd.Categorical | npt.NDArray[np.float64]] = {}
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
            data: dict[str, list[str | None] | list[float]] = {}
            for i, feat in enumerate(self.schema):
                if feat.kind == "categorical":
                    cats = list(feat.categories or ())
                    vals: list[str | None] = [
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

    def predict(self, X: pd.DataFrame, *, coerce: bool = True) -> Labels:
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

    def predict_proba(self, X: pd.DataFrame, *, coerce: bool = True) -> Probabilities:
        """Return class probabilities of shape (n_rows, n_classes), columns as ``classes_``."""
        import numpy as np

        if self.task != "classification":
            raise TypeError("predict_proba needs a classifier")
        return np.asarray(
            self.estimator.predict_proba(self._prepare(X, coerce=coerce)), dtype=np.float64
        )

    def predict_both(
        self, X: pd.DataFrame, *, coerce: bool = True
    ) -> tuple[Labels, Probabilities | None]:
        """Return ``(predictions, probabilities or None)`` with one transform of ``X``."""
        import numpy as np

        prepared = self._prepare(X, coerce=coerce)
        if self.task != "classification":
            return np.asarray(self.estimator.predict(prepared)).ravel(), None
        proba = np.asarray(self.estimator.predict_proba(prepared), dtype=np.float64)
        classes = self.classes_
        assert classes is not None
        return classes[np.argmax(proba, axis=1)], proba
