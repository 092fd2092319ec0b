"""The one promotion rule: applied by the retrain Job, recorded by the operator verbatim."""

from __future__ import annotations

import math
from typing import NamedTuple

from modelwatch_monitor.contract.metrics import greater_is_better
from modelwatch_monitor.contract.vocabulary import (
    PROMOTE_BELOW_MIN_IMPROVEMENT,
    PROMOTE_CHALLENGER_BETTER,
    PROMOTE_CHAMPION_UNUSABLE,
    PROMOTE_FIRST_VERSION,
    PROMOTE_SCORE_UNDEFINED,
)


class Promotion(NamedTuple):
    """Whether a challenger replaces the champion, why, and by how much it won."""

    promote: bool
    reason: str
    message: str
    improvement: float | None


def _finite(value: float | None) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def decide_promotion(
    *,
    version: int,
    metric: str,
    challenger_score: float | None,
    champion_version: int | None,
    champion_score: float | None,
    min_improvement: float,
    champion_problem: str = "",
) -> Promotion:
    """Decide whether challenger ``version`` replaces the champion.

    Both were scored on one holdout. The improvement is ``challenger - champion`` for a
    metric where greater is better and ``champion - challenger`` otherwise
    (:data:`METRICS`); the challenger wins when it is at least ``min_improvement``.

    >>> decide_promotion(version=3, metric="rmse", challenger_score=0.2,
    ...     champion_version=2, champion_score=0.3, min_improvement=0.05).reason
    'ChallengerBetter'
    """
    if not _finite(challenger_score):
        return Promotion(
            False,
            PROMOTE_SCORE_UNDEFINED,
            f"challenger v{version} has no finite {metric} on the holdout "
            f"({challenger_score!r}); it is kept unpromoted",
            None,
        )
    assert challenger_score is not None
    if champion_version is None:
        return Promotion(
            True,
            PROMOTE_FIRST_VERSION,
            f"v{version} is the first version: {metric} {challenger_score:.4f}",
            None,
        )
    if not _finite(champion_score):
        problem = champion_problem or f"champion v{champion_version} has no finite {metric}"
        return Promotion(
            True,
            PROMOTE_CHAMPION_UNUSABLE,
            f"{problem}; promoting v{version} ({metric} {challenger_score:.4f})",
            None,
        )
    assert champion_score is not None
    gain = challenger_score - champion_score
    improvement = gain if greater_is_better(metric) else -gain
    promote = improvement >= min_improvement
    verdict = "clears" if promote else "is below"
    return Promotion(
        promote,
        PROMOTE_CHALLENGER_BETTER if promote else PROMOTE_BELOW_MIN_IMPROVEMENT,
        f"challenger v{version} {metric} {challenger_score:.4f} vs champion "
        f"v{champion_version} {champion_score:.4f}: improvement {improvement:+.4f} "
        f"{verdict} minImprovement {min_improvement}",
        improvement,
    )


__all__ = [
    "Promotion",
    "decide_promotion",
]
