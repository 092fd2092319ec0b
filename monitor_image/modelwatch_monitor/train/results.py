"""The retrain Job's result documents (the contract's ``kind: retrain``), built from state.

Pure functions: the orchestrator hands them what happened; they return the mapping that
:func:`modelwatch_monitor.contract.write_result` writes.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from modelwatch_monitor.train.automl import FitResult
from modelwatch_monitor.train.comparison import Comparison
from modelwatch_monitor.train.data import TrainingSet
from modelwatch_monitor.train.metadata import VersionMetadata
from modelwatch_monitor.train.plan import Plan


class ChallengerScore(TypedDict):
    score: float | None


class ChampionScore(TypedDict):
    version: int | None
    score: float | None


class RowCounts(TypedDict):
    train: int | None
    holdout: int | None


class RetrainFailedDoc(TypedDict):
    """A retrain that wrote nothing, as :class:`modelwatch_monitor.contract.RetrainFailed`."""

    kind: Literal["retrain"]
    ok: Literal[False]
    version: int
    reason: str
    message: str
    reportId: str
    seconds: NotRequired[float]


class RetrainOkDoc(TypedDict):
    """A retrain that published version N, as :class:`modelwatch_monitor.contract.RetrainOk`
    (with the extra fields ``libraries`` and, for a rerun, ``reused``)."""

    kind: Literal["retrain"]
    ok: Literal[True]
    version: int
    sha256: str
    metric: str
    greaterIsBetter: bool
    challenger: ChallengerScore
    champion: ChampionScore | None
    improvement: NotRequired[float | None]
    minImprovement: float | None
    promote: bool
    reason: str
    message: str
    reportId: str
    bestEstimator: str | None
    rows: RowCounts
    uri: str
    libraries: dict[str, str] | None
    reused: NotRequired[Literal[True]]
    seconds: NotRequired[float]


#: What a retrain Job writes as its result.
RetrainDoc = RetrainOkDoc | RetrainFailedDoc


def failure(version: int, trigger: str, reason: str, message: str) -> RetrainFailedDoc:
    """Return the result of a retrain that wrote nothing (``ok: false``)."""
    return {
        "kind": "retrain",
        "ok": False,
        "version": version,
        "reason": reason,
        "message": message,
        "reportId": trigger,
    }


def success(
    plan: Plan,
    meta: VersionMetadata,
    outcome: Comparison,
    fitted: FitResult,
    training: TrainingSet,
    uri: str,
) -> RetrainOkDoc:
    """Return the result of a retrain that published version N (its metadata ``meta``)."""
    promotion = outcome.promotion
    improvement = promotion.improvement
    return {
        "kind": "retrain",
        "ok": True,
        "version": plan.version,
        "sha256": meta["sha256"],
        "metric": outcome.metric,
        "greaterIsBetter": outcome.greater_is_better,
        "challenger": {"score": outcome.challenger_score},
        "champion": None
        if outcome.champion_version is None
        else {"version": outcome.champion_version, "score": outcome.champion_score},
        "improvement": None if improvement is None else round(improvement, 6),
        "minImprovement": plan.min_improvement,
        "promote": promotion.promote,
        "reason": promotion.reason,
        "message": promotion.message,
        "reportId": plan.trigger_report,
        "bestEstimator": fitted.best_estimator,
        "rows": {"train": len(training.X_train), "holdout": len(training.data.holdout)},
        "uri": uri,
        "libraries": meta["libraries"],
    }


NEEDED = ("sha256", "metric", "promote", "reason", "metrics")


def published(plan: Plan, meta: VersionMetadata, uri: str) -> RetrainOkDoc | None:
    """Return the result of the earlier run that published ``plan.version`` (``meta``).

    None when ``meta`` is not the metadata a retrain writes. ``meta`` was read from the
    store unvalidated, so every field but the :data:`NEEDED` ones may be missing.
    """
    if any(meta.get(key) is None for key in NEEDED):
        return None
    metric = str(meta["metric"])
    scores = meta.get("metrics")
    challenger = (scores.get("challenger") if scores else None) or {}
    champion = meta.get("champion") or None
    flaml = meta.get("flaml")
    training, holdout = meta.get("training"), meta.get("holdout")
    return {
        "kind": "retrain",
        "ok": True,
        "version": plan.version,
        "sha256": meta["sha256"],
        "metric": metric,
        "greaterIsBetter": bool(meta.get("greaterIsBetter", True)),
        "challenger": {"score": challenger.get(metric)},
        "champion": None
        if not champion
        else {"version": champion.get("version"), "score": champion.get("score")},
        "minImprovement": meta.get("minImprovement"),
        "promote": bool(meta["promote"]),
        "reason": meta["reason"],
        "message": f"{meta.get('message') or ''} (published by an earlier run of this Job)",
        "reportId": plan.trigger_report or meta.get("triggerReport") or "",
        "bestEstimator": flaml.get("bestEstimator") if flaml else None,
        "rows": {
            "train": training.get("rows") if training else None,
            "holdout": holdout.get("rows") if holdout else None,
        },
        "uri": uri,
        "libraries": meta.get("libraries"),
        "reused": True,
    }
