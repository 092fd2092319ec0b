"""Champion and challenger scored on the same holdout, and the promotion decision.

The challenger is promoted when it beats the champion by at least ``minImprovement``, an
absolute difference in the metric's own units, in the metric's better direction: the
contract's one rule, :func:`modelwatch_monitor.contract.decide_promotion`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from modelwatch_monitor import contract
from modelwatch_monitor.store.estimators import Estimator
from modelwatch_monitor.store.feature_schema import SchemaError
from modelwatch_monitor.train.automl import resolve_metric
from modelwatch_monitor.train.data import TrainingSet
from modelwatch_monitor.train.plan import Plan
from modelwatch_monitor.train.reasons import CONFIG_ERROR, NOT_ENOUGH_LABELS, RetrainError
from modelwatch_monitor.train.scoring import score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """The version the challenger must beat: none, a loaded model, or a problem."""

    version: int | None = None
    model: Estimator | None = None
    problem: str = ""


@dataclass(frozen=True)
class Comparison:
    """Both models' holdout scores and the decision between them."""

    metric: str
    greater_is_better: bool
    challenger_scores: dict[str, float]
    champion_scores: dict[str, float] | None
    champion_version: int | None
    champion_problem: str
    promotion: contract.Promotion

    @property
    def challenger_score(self) -> float:
        """The challenger's score in :attr:`metric`."""
        return self.challenger_scores[self.metric]

    @property
    def champion_score(self) -> float | None:
        """The champion's score in :attr:`metric`; None when it has none."""
        return None if self.champion_scores is None else self.champion_scores[self.metric]


def choose_metric(plan: Plan, n_classes: int) -> str:
    """Return the concrete metric both models are scored with (``auto`` resolved)."""
    try:
        return resolve_metric(plan.automl.metric, plan.task, n_classes)
    except ValueError as exc:
        raise RetrainError(CONFIG_ERROR, str(exc)) from exc


def secondary_metrics(task: str, primary: str) -> list[str]:
    """Return ``primary`` and the metrics recorded beside it for ``task``."""
    extra = ["accuracy", "log_loss"] if task == "classification" else ["rmse", "mae"]
    return [primary, *[m for m in extra if m != primary]]


def score_all(
    model: Estimator, X: pd.DataFrame, y: pd.Series, metrics: Sequence[str]
) -> dict[str, float]:
    """Score ``model`` with each metric; only the first (primary) one must be defined."""
    out: dict[str, float] = {}
    for name in metrics:
        try:
            out[name] = round(score(model, X, y, name), 6)
        except ValueError as exc:
            if name == metrics[0]:
                raise
            log.debug("metric %s undefined: %s", name, exc)
    return out


def compare(
    plan: Plan, training: TrainingSet, metric: str, challenger: Estimator, champion: Champion
) -> Comparison:
    """Score challenger and champion on the same holdout and decide the promotion.

    A champion that cannot score the holdout is unusable: the challenger replaces it.

    Raises
    ------
    RetrainError
        ``NotEnoughLabels`` when the challenger's primary metric is undefined on the
        holdout (e.g. a single class for ROC AUC).
    """
    holdout, y = training.data.holdout, training.y_holdout
    names = secondary_metrics(plan.task, metric)
    try:
        challenger_scores = score_all(challenger, holdout, y, names)
    except ValueError as exc:
        raise RetrainError(NOT_ENOUGH_LABELS, f"cannot score the holdout: {exc}") from exc
    problem = champion.problem
    champion_scores: dict[str, float] | None = None
    if champion.model is not None:
        try:
            champion_scores = score_all(champion.model, holdout, y, names)
        except (ValueError, SchemaError, KeyError, TypeError) as exc:
            problem = f"champion v{champion.version} cannot score the holdout: {exc}"
            log.error("%s", problem)
    champion_score = None if champion_scores is None else champion_scores[metric]
    promotion = contract.decide_promotion(
        version=plan.version,
        metric=metric,
        challenger_score=challenger_scores[metric],
        champion_version=champion.version,
        champion_score=champion_score,
        min_improvement=plan.min_improvement,
        champion_problem=problem,
    )
    log.info("decision: promote=%s (%s) %s", promotion.promote, promotion.reason, promotion.message)
    return Comparison(
        metric=metric,
        greater_is_better=contract.greater_is_better(metric),
        challenger_scores=challenger_scores,
        champion_scores=champion_scores,
        champion_version=champion.version,
        champion_problem=problem,
        promotion=promotion,
    )
