"""Drift tests, one module each, behind a registry.

Each test is a pure function ``test(reference, current) -> DriftResult`` over two
samples or their summaries (:class:`Distribution` for numeric, :class:`Counts` for
categorical features). Thresholds, multiple-testing correction and the dataset
verdict live in :mod:`modelwatch_monitor.check.verdicts`, not here.
"""

from modelwatch_monitor.check.drift._base import (
    Counts,
    Distribution,
    DriftResult,
    DriftTest,
    FeatureType,
)
from modelwatch_monitor.check.drift.chi2 import chi2
from modelwatch_monitor.check.drift.jensenshannon import jensenshannon
from modelwatch_monitor.check.drift.ks import ks
from modelwatch_monitor.check.drift.psi import psi
from modelwatch_monitor.check.drift.registry import available, get_test, register
from modelwatch_monitor.check.drift.wasserstein import wasserstein

__all__ = [
    "Counts",
    "Distribution",
    "DriftResult",
    "DriftTest",
    "FeatureType",
    "available",
    "chi2",
    "get_test",
    "jensenshannon",
    "ks",
    "psi",
    "register",
    "wasserstein",
]
