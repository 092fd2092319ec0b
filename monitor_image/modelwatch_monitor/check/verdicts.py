"""The one place that turns per-feature test results into drift verdicts.

Three decisions live here and nowhere else (alibi-detect's shape):

1. **Multiple-testing correction** across the features whose test has a p-value:
   ``holm`` (default; controls the family-wise error rate), ``bonferroni``,
   ``fdr_bh`` (Benjamini-Hochberg; controls the false discovery rate; ``bh`` is read
   as an alias) or ``none``.
2. **Effect-size floor**: a feature with a significant p-value drifts only if its
   effect is at least ``min_effect_size``, so that millions of rows do not flag
   practically irrelevant shifts. The effect of ``ks`` is ``D`` and the effect of
   ``chi2`` is the total variation distance; both are "the largest difference in
   probability that the two distributions give to one event", so one floor fits
   both. The default 0.02 (:class:`modelwatch_monitor.contract.DriftSpec`, the CRD's
   default too) corresponds to a mean shift of about 0.05 standard deviations of a
   normal feature (``D = 2 Phi(delta / 2) - 1``).
   Distance tests (``psi``, ``jensenshannon``, ``wasserstein``) have no p-value;
   a feature drifts when the statistic reaches the test's threshold
   (``statistic_threshold`` or the test's default: PSI 0.2, JS 0.1, W1/std 0.1).
3. **Dataset verdict**: the dataset drifts when the share of drifted features is
   at least ``drift_share_threshold`` (default 0.5, Evidently's choice). With Holm
   at ``alpha = 0.05`` the chance that *any* feature of unchanged data is flagged is
   at most 5%, so the dataset alarm on unchanged data is rarer still.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelwatch_monitor import contract
from modelwatch_monitor.check.drift import DriftResult, DriftTest
from modelwatch_monitor.contract import CORRECTION_ALIASES, CORRECTIONS, Correction, DriftSpec

_DEFAULTS: Final = DriftSpec()
DEFAULT_P_VALUE_THRESHOLD: Final = _DEFAULTS.p_value_threshold
DEFAULT_CORRECTION: Final = _DEFAULTS.correction
DEFAULT_MIN_EFFECT_SIZE: Final = _DEFAULTS.min_effect_size
DEFAULT_DRIFT_SHARE_THRESHOLD: Final = _DEFAULTS.drift_share_threshold


def adjust_pvalues(pvalues: ArrayLike, method: Correction = "holm") -> NDArray[np.float64]:
    """Return multiplicity-adjusted p-values, same order as the input.

    Parameters
    ----------
    pvalues : array_like of shape (m,)
    method : {"holm", "bonferroni", "fdr_bh", "none"}
        Matches ``statsmodels.stats.multitest.multipletests`` (``holm``,
        ``bonferroni``, ``fdr_bh``; ``bh`` is read as ``fdr_bh``). A feature is
        significant when its adjusted p-value is below ``alpha``.

    Returns
    -------
    ndarray of shape (m,)
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.shape[0]
    method = CORRECTION_ALIASES.get(method, method)  # type: ignore[assignment]
    if method not in CORRECTIONS:
        raise ValueError(
            f"The 'correction' parameter must be one of {CORRECTIONS}. Got {method!r} instead."
        )
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.asarray(np.minimum(p * m, 1.0), dtype=np.float64)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    if method == "holm":
        adj = np.maximum.accumulate(ps * (m - np.arange(m)))
    else:  # fdr_bh
        adj = np.minimum.accumulate((ps * m / np.arange(1, m + 1))[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


@dataclass(frozen=True)
class DriftSettings:
    """The verdict settings, ``spec.drift`` in the job config."""

    numeric_test: str = "ks"
    categorical_test: str = "chi2"
    p_value_threshold: float = DEFAULT_P_VALUE_THRESHOLD
    correction: Correction = DEFAULT_CORRECTION
    min_effect_size: float = DEFAULT_MIN_EFFECT_SIZE
    drift_share_threshold: float = DEFAULT_DRIFT_SHARE_THRESHOLD
    statistic_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.correction in CORRECTION_ALIASES:
            object.__setattr__(self, "correction", CORRECTION_ALIASES[self.correction])
        if not 0.0 < self.p_value_threshold < 1.0:
            raise ValueError(
                "The 'pValueThreshold' parameter must be in (0, 1). "
                f"Got {self.p_value_threshold!r} instead."
            )
        if self.correction not in CORRECTIONS:
            raise ValueError(
                f"The 'correction' parameter must be one of {CORRECTIONS}. "
                f"Got {self.correction!r} instead."
            )
        if self.min_effect_size < 0:
            raise ValueError(
                f"The 'minEffectSize' parameter must be >= 0. Got {self.min_effect_size!r} instead."
            )
        if not 0.0 < self.drift_share_threshold <= 1.0:
            raise ValueError(
                "The 'driftShareThreshold' parameter must be in (0, 1]. "
                f"Got {self.drift_share_threshold!r} instead."
            )

    @classmethod
    def from_spec(cls, spec: DriftSpec | Mapping[str, object] | None) -> DriftSettings:
        """Read ``spec.drift``: the typed :class:`DriftSpec`, or its camelCase mapping
        (every key optional), parsed by the contract."""
        if not isinstance(spec, DriftSpec):
            spec = contract.parse_section(DriftSpec, spec or {}, "spec.drift")
        return cls(
            numeric_test=spec.numeric_test,
            categorical_test=spec.categorical_test,
            p_value_threshold=spec.p_value_threshold,
            correction=spec.correction,
            min_effect_size=spec.min_effect_size,
            drift_share_threshold=spec.drift_share_threshold,
        )


class FeatureVerdict(NamedTuple):
    """One feature's verdict.

    ``p_value`` is the raw p-value, ``adjusted_p_value`` the corrected one (both None
    for distance tests); ``threshold`` is what the statistic (distance tests) or the
    effect (p-value tests) was compared to.
    """

    name: str
    type: str
    test: str
    statistic: float
    p_value: float | None
    adjusted_p_value: float | None
    effect: float
    threshold: float
    drift: bool
    error_bound: float


class DatasetVerdict(NamedTuple):
    """The dataset verdict over every tested feature."""

    dataset_drift: bool
    drift_share: float
    n_drifted: int
    n_features: int
    features: list[FeatureVerdict]


def decide(
    results: Sequence[tuple[str, str, DriftTest, DriftResult]],
    settings: DriftSettings,
) -> DatasetVerdict:
    """Apply correction, effect-size floor and drift share to per-feature results.

    Parameters
    ----------
    results : sequence of (name, feature type, test, result)
    settings : DriftSettings

    Returns
    -------
    DatasetVerdict
        ``features`` is sorted most drifted first (drifted, then by effect).
    """
    with_p = [i for i, r in enumerate(results) if r[2].has_pvalue and r[3].pvalue is not None]
    adjusted = adjust_pvalues(
        [float(results[i][3].pvalue or 0.0) for i in with_p], settings.correction
    )
    adj_by_index = dict(zip(with_p, adjusted.tolist(), strict=True))
    verdicts: list[FeatureVerdict] = []
    for i, (name, ftype, test, res) in enumerate(results):
        if i in adj_by_index:
            adj: float | None = adj_by_index[i]
            threshold = settings.min_effect_size
            drift = bool(adj is not None and adj < settings.p_value_threshold) and (
                res.effect >= threshold
            )
        else:
            adj = None
            threshold = (
                settings.statistic_threshold
                if settings.statistic_threshold is not None
                else float(test.default_threshold or 0.0)
            )
            drift = res.statistic >= threshold
        verdicts.append(
            FeatureVerdict(
                name=name,
                type=ftype,
                test=test.name,
                statistic=float(res.statistic),
                p_value=None if res.pvalue is None else float(res.pvalue),
                adjusted_p_value=adj,
                effect=float(res.effect),
                threshold=float(threshold),
                drift=bool(drift),
                error_bound=float(res.error_bound),
            )
        )
    verdicts.sort(key=lambda v: (not v.drift, -v.effect))
    n = len(verdicts)
    n_drifted = sum(v.drift for v in verdicts)
    share = n_drifted / n if n else 0.0
    return DatasetVerdict(
        dataset_drift=bool(n and share >= settings.drift_share_threshold),
        drift_share=share,
        n_drifted=n_drifted,
        n_features=n,
        features=verdicts,
    )
