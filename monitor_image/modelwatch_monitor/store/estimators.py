"""The shapes of the models the monitor scores, stores and serves, as Protocols.

:class:`Estimator` is the part of scikit-learn's estimator API the holdout scoring calls
(FLAML's best estimator has it, and so has a whole model); :class:`StoredModel` is what
``model.joblib`` holds: :class:`~modelwatch_monitor.train.fitted.FittedModel`'s surface,
which the registry loads and the server predicts with. Declared once, here, so that
neither side names the other's class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from modelwatch_monitor.store.feature_schema import Feature

#: Labels or values of shape (n_rows,) (or class labels of shape (n_classes,)), any dtype.
Labels: TypeAlias = "npt.NDArray[np.generic]"
#: Class probabilities of shape (n_rows, n_classes).
Probabilities: TypeAlias = "npt.NDArray[np.float64]"


class Estimator(Protocol):
    """A fitted scikit-learn-style estimator: ``predict``, ``predict_proba``, ``classes_``."""

    @property
    def classes_(self) -> Labels | None:
        """Class labels in the column order of ``predict_proba``; None for a regressor."""
        ...

    def predict(self, X: pd.DataFrame) -> Labels:
        """Predict labels or values of shape (n_rows,)."""
        ...

    def predict_proba(self, X: pd.DataFrame) -> Probabilities:
        """Return class probabilities of shape (n_rows, n_classes)."""
        ...


class StoredModel(Estimator, Protocol):
    """What a version's ``model.joblib`` holds: an estimator over raw feature tables."""

    @property
    def schema(self) -> Sequence[Feature]:
        """The model's input columns."""
        ...

    def predict_both(
        self, X: pd.DataFrame, *, coerce: bool = True
    ) -> tuple[Labels, Probabilities | None]:
        """Return ``(predictions, probabilities or None)`` with one transform of ``X``."""
        ...

    def set_threads(self, n_jobs: int) -> None:
        """Set the threads the model predicts with."""
        ...
