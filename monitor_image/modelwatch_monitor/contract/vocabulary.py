"""Every word the Jobs and the operator share: enums, result reasons, promotion words.

One table of each. The CRD spells the same enums (``tests/test_contract_crd.py`` holds it
to the models); a reason a Job can emit is accepted by the result models because the
models take their choices from here (``tests/test_contract_vocabulary.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

Task = Literal["classification", "regression"]
FeatureType = Literal["numeric", "categorical"]
NumericTest = Literal["ks", "psi", "wasserstein", "jensenshannon"]
CategoricalTest = Literal["chi2", "psi", "jensenshannon"]
Correction = Literal["holm", "bonferroni", "fdr_bh", "none"]
PerformanceMetric = Literal[
    "accuracy", "f1", "precision", "recall", "roc_auc", "log_loss", "rmse", "mae", "r2"
]
TrainingData = Literal["reference", "recent", "both"]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
BaselineSource = Literal["spec", "reference", "holdout"]
ResultKind = Literal["check", "retrain"]

TASKS: Final[tuple[str, ...]] = get_args(Task)
FEATURE_TYPES: Final[tuple[str, ...]] = get_args(FeatureType)
NUMERIC_TESTS: Final[tuple[str, ...]] = get_args(NumericTest)
CATEGORICAL_TESTS: Final[tuple[str, ...]] = get_args(CategoricalTest)
CORRECTIONS: Final[tuple[str, ...]] = get_args(Correction)
PERFORMANCE_METRICS: Final[tuple[str, ...]] = get_args(PerformanceMetric)
TRAINING_DATA: Final[tuple[str, ...]] = get_args(TrainingData)
PULL_POLICIES: Final[tuple[str, ...]] = get_args(PullPolicy)
RESULT_KINDS: Final[tuple[str, ...]] = get_args(ResultKind)

#: Older spellings still read: ``bh`` was the command line's name of ``fdr_bh``.
CORRECTION_ALIASES: Final[Mapping[str, str]] = {"bh": "fdr_bh"}

# --- check results ----------------------------------------------------------------------
#: The window held no predictions: a check result, not a failure (ok = true, exit 0).
REASON_NO_DATA: Final = "NoData"
#: The serving version has not yet served spec.data.current.minRows rows in the window:
#: no verdict yet. A check result, not a failure (ok = true, exit 0).
REASON_AWAITING_TRAFFIC: Final = "AwaitingTraffic"
CheckNoVerdictReason = Literal["NoData", "AwaitingTraffic"]
CHECK_NO_VERDICT_REASONS: Final = frozenset(get_args(CheckNoVerdictReason))

REASON_CHECK_FAILED: Final = "CheckFailed"
REASON_CONFIG_ERROR: Final = "ConfigError"
REASON_DATA_ERROR: Final = "DataError"
CheckFailureReason = Literal["CheckFailed", "ConfigError", "DataError", "NoData"]
#: ``NoData`` stays accepted on a failed check: images before NoData exited 0 wrote it so.
CHECK_FAILURE_REASONS: Final = frozenset(get_args(CheckFailureReason))

# --- retrain results --------------------------------------------------------------------
REASON_NOT_ENOUGH_LABELS: Final = "NotEnoughLabels"
REASON_STORE_ERROR: Final = "StoreError"
REASON_TRAINING_FAILED: Final = "TrainingFailed"
REASON_VERSION_EXISTS: Final = "VersionExists"
#: The champion's artifact in the store is not the one whose sha256 status holds.
REASON_CHAMPION_HASH_MISMATCH: Final = "ChampionHashMismatch"
RetrainFailureReason = Literal[
    "ChampionHashMismatch",
    "ConfigError",
    "DataError",
    "NotEnoughLabels",
    "StoreError",
    "TrainingFailed",
    "VersionExists",
]
RETRAIN_FAILURE_REASONS: Final = frozenset(get_args(RetrainFailureReason))

# --- promotion: the words of decide_promotion, used verbatim by the Job and the operator -
PROMOTE_FIRST_VERSION: Final = "FirstVersion"
PROMOTE_CHALLENGER_BETTER: Final = "ChallengerBetter"
PROMOTE_BELOW_MIN_IMPROVEMENT: Final = "BelowMinImprovement"
PROMOTE_CHAMPION_UNUSABLE: Final = "ChampionUnusable"
PROMOTE_SCORE_UNDEFINED: Final = "ChallengerScoreUndefined"
PromotionReason = Literal[
    "BelowMinImprovement",
    "ChallengerBetter",
    "ChallengerScoreUndefined",
    "ChampionUnusable",
    "FirstVersion",
]
PROMOTION_REASONS: Final = frozenset(get_args(PromotionReason))

#: The operator's reason when a Job's result breaks the contract.
REASON_INVALID_RESULT: Final = "InvalidResult"

# --- live evaluation (shadow, canary): the words of evidence.decide ----------------------
#: What an evaluation does next.
EvaluationAction = Literal["Promote", "Abort", "Continue"]
EVALUATION_ACTIONS: Final[tuple[str, ...]] = get_args(EvaluationAction)
ACTION_PROMOTE: Final = "Promote"
ACTION_ABORT: Final = "Abort"
ACTION_CONTINUE: Final = "Continue"
#: What ``maxDuration`` without a decision does.
OnTimeout = Literal["abort", "promote"]
ON_TIMEOUT: Final[tuple[str, ...]] = get_args(OnTimeout)
#: The metrics a live evaluation compares: each is a mean over rows, so it has a
#: confidence sequence (paired on the same rows, or unpaired).
LiveMetric = Literal["accuracy", "log_loss", "mae", "mse", "rmse"]
LIVE_METRICS: Final[tuple[str, ...]] = get_args(LiveMetric)

#: Promote: the challenger is better on labeled live rows by at least minImprovement.
EVALUATION_CHALLENGER_BETTER: Final = "LiveChallengerBetter"
#: Abort: the challenger is worse on labeled live rows by more than maxDegradation.
EVALUATION_CHALLENGER_WORSE: Final = "LiveChallengerWorse"
#: Abort: before labels, the estimated metric is worse by more than maxDegradation.
EVALUATION_ESTIMATED_WORSE: Final = "EstimatedChallengerWorse"
#: Abort: the challenger's error rate exceeds the champion's beyond the bound.
EVALUATION_ERROR_RATE: Final = "ErrorRateAboveChampion"
#: Abort: the challenger's p99 latency exceeds the champion's beyond the bound.
EVALUATION_LATENCY: Final = "LatencyAboveChampion"
#: Abort: maxDuration passed without a decision (onTimeout: abort).
EVALUATION_TIMED_OUT: Final = "EvaluationTimedOut"
#: Promote: maxDuration passed without a decision and onTimeout is promote.
EVALUATION_TIMED_OUT_PROMOTED: Final = "TimedOutPromoted"
#: Continue: no labeled row yet, and the estimate does not show the challenger worse.
EVALUATION_AWAITING_LABELS: Final = "AwaitingLabels"
#: Continue: the interval still holds both a win and a loss.
EVALUATION_UNDECIDED: Final = "Undecided"
EvaluationReason = Literal[
    "AwaitingLabels",
    "ErrorRateAboveChampion",
    "EstimatedChallengerWorse",
    "EvaluationTimedOut",
    "LatencyAboveChampion",
    "LiveChallengerBetter",
    "LiveChallengerWorse",
    "TimedOutPromoted",
    "Undecided",
]
EVALUATION_REASONS: Final = frozenset(get_args(EvaluationReason))

__all__ = [
    "ACTION_ABORT",
    "ACTION_CONTINUE",
    "ACTION_PROMOTE",
    "CATEGORICAL_TESTS",
    "CHECK_FAILURE_REASONS",
    "CHECK_NO_VERDICT_REASONS",
    "CORRECTIONS",
    "CORRECTION_ALIASES",
    "EVALUATION_ACTIONS",
    "EVALUATION_AWAITING_LABELS",
    "EVALUATION_CHALLENGER_BETTER",
    "EVALUATION_CHALLENGER_WORSE",
    "EVALUATION_ERROR_RATE",
    "EVALUATION_ESTIMATED_WORSE",
    "EVALUATION_LATENCY",
    "EVALUATION_REASONS",
    "EVALUATION_TIMED_OUT",
    "EVALUATION_TIMED_OUT_PROMOTED",
    "EVALUATION_UNDECIDED",
    "FEATURE_TYPES",
    "LIVE_METRICS",
    "NUMERIC_TESTS",
    "ON_TIMEOUT",
    "PERFORMANCE_METRICS",
    "PROMOTE_BELOW_MIN_IMPROVEMENT",
    "PROMOTE_CHALLENGER_BETTER",
    "PROMOTE_CHAMPION_UNUSABLE",
    "PROMOTE_FIRST_VERSION",
    "PROMOTE_SCORE_UNDEFINED",
    "PROMOTION_REASONS",
    "PULL_POLICIES",
    "REASON_AWAITING_TRAFFIC",
    "REASON_CHAMPION_HASH_MISMATCH",
    "REASON_CHECK_FAILED",
    "REASON_CONFIG_ERROR",
    "REASON_DATA_ERROR",
    "REASON_INVALID_RESULT",
    "REASON_NOT_ENOUGH_LABELS",
    "REASON_NO_DATA",
    "REASON_STORE_ERROR",
    "REASON_TRAINING_FAILED",
    "REASON_VERSION_EXISTS",
    "RESULT_KINDS",
    "RETRAIN_FAILURE_REASONS",
    "TASKS",
    "TRAINING_DATA",
    "BaselineSource",
    "CategoricalTest",
    "CheckFailureReason",
    "CheckNoVerdictReason",
    "Correction",
    "EvaluationAction",
    "EvaluationReason",
    "FeatureType",
    "LiveMetric",
    "NumericTest",
    "OnTimeout",
    "PerformanceMetric",
    "PromotionReason",
    "PullPolicy",
    "ResultKind",
    "RetrainFailureReason",
    "Task",
    "TrainingData",
]

# --- rollout and evaluation: spec.rollout, status.challenger, the Evaluating condition ---
# The words the spec, the status and the operator's Evaluating condition share. The
# decision rule's own reasons (why it promotes, aborts or goes on: the labeled comparison,
# the estimate, the software gates, maxDuration) belong to the live decision's block; the
# condition carries them verbatim. This block holds the rest of the evaluation's life.

#: How a challenger reaches the traffic: ``replace`` rolls the serving Deployment to it at
#: once (the behaviour before strategies); ``shadow`` runs it beside the champion on a
#: mirrored copy of every request; ``canary`` serves it ``spec.rollout.weight`` percent.
RolloutStrategy = Literal["replace", "shadow", "canary"]
ROLLOUT_STRATEGIES: Final[tuple[str, ...]] = get_args(RolloutStrategy)
STRATEGY_REPLACE: Final = "replace"
STRATEGY_SHADOW: Final = "shadow"
STRATEGY_CANARY: Final = "canary"
#: What ``spec.rollout.maxDuration`` without a decision does (the decision's own words).
RolloutOnTimeout = OnTimeout
ROLLOUT_ON_TIMEOUT: Final = ON_TIMEOUT

#: ``status.challenger.decision``: what the last look at the evaluation decided (the
#: actions of the live decision, declared once above).
EvaluationDecision = EvaluationAction
EVALUATION_DECISIONS: Final = EVALUATION_ACTIONS
DECISION_PROMOTE: Final = ACTION_PROMOTE
DECISION_ABORT: Final = ACTION_ABORT
DECISION_CONTINUE: Final = ACTION_CONTINUE

# Reasons of the Evaluating condition that are not the decision rule's.
#: Evaluating=False: no challenger is under evaluation (the condition's first value, and
#: its value under ``strategy: replace``).
EVALUATING_IDLE: Final = "NoChallenger"
#: Evaluating=True: a challenger won on the holdout and its Deployment was created; the
#: evaluation runs from ``status.challenger.since``.
EVALUATING_STARTED: Final = "EvaluationStarted"
#: Evaluating=False, decision Abort: the challenger's pods did not become ready within
#: ``spec.deployment.progressDeadlineSeconds``; the champion keeps serving.
EVALUATING_CHALLENGER_NOT_READY: Final = "ChallengerNotReady"
#: Evaluating=False, decision Abort: the challenger Deployment was deleted by someone else;
#: the operator does not recreate it.
EVALUATING_CHALLENGER_DELETED: Final = "ChallengerDeleted"
#: Evaluating=False: the spec no longer asks for the evaluation (``strategy: replace`` or a
#: ``pinnedVersion``); the challenger is removed and no loss is counted.
EVALUATING_CANCELLED: Final = "EvaluationCancelled"
EvaluatingLifecycleReason = Literal[
    "ChallengerDeleted",
    "ChallengerNotReady",
    "EvaluationCancelled",
    "EvaluationStarted",
    "NoChallenger",
]
EVALUATING_LIFECYCLE_REASONS: Final = frozenset(get_args(EvaluatingLifecycleReason))

# The rollout block's names, kept apart from the list above.
__all__ += [
    "DECISION_ABORT",
    "DECISION_CONTINUE",
    "DECISION_PROMOTE",
    "EVALUATING_CANCELLED",
    "EVALUATING_CHALLENGER_DELETED",
    "EVALUATING_CHALLENGER_NOT_READY",
    "EVALUATING_IDLE",
    "EVALUATING_LIFECYCLE_REASONS",
    "EVALUATING_STARTED",
    "EVALUATION_DECISIONS",
    "ROLLOUT_ON_TIMEOUT",
    "ROLLOUT_STRATEGIES",
    "STRATEGY_CANARY",
    "STRATEGY_REPLACE",
    "STRATEGY_SHADOW",
    "EvaluatingLifecycleReason",
    "EvaluationDecision",
    "RolloutOnTimeout",
    "RolloutStrategy",
]
