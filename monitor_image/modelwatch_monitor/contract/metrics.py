"""The one table of metric directions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from modelwatch_monitor.contract.errors import ContractError
from modelwatch_monitor.contract.vocabulary import Task

#: Every metric any part of modelwatch scores: its task and whether greater is better.
#: The check's ``spec.performance.metric`` takes ``PERFORMANCE_METRICS``; the
#: retrain's ``spec.retrain.automl.metric`` any key here (or ``auto``).
METRICS: Final[Mapping[str, tuple[Task, bool]]] = {
    "accuracy": ("classification", True),
    "precision": ("classification", True),
    "recall": ("classification", True),
    "f1": ("classification", True),
    "macro_f1": ("classification", True),
    "micro_f1": ("classification", True),
    "roc_auc": ("classification", True),
    "roc_auc_ovr": ("classification", True),
    "log_loss": ("classification", False),
    "r2": ("regression", True),
    "rmse": ("regression", False),
    "mae": ("regression", False),
    "mse": ("regression", False),
    "mape": ("regression", False),
}


def greater_is_better(metric: str) -> bool:
    """Return True when a larger value of ``metric`` is better.

    >>> greater_is_better("accuracy"), greater_is_better("rmse")
    (True, False)
    """
    try:
        return METRICS[metric][1]
    except KeyError:
        raise ContractError(
            f"The metric must be one of {sorted(METRICS)}. Got {metric!r} instead."
        ) from None


__all__ = [
    "METRICS",
    "greater_is_better",
]
