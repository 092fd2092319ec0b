"""The ``ModelMonitor`` status as the operator reads it back: one model per part.

The operator writes status as merge patches and parses what it reads with
:class:`MonitorStatus` at the kopf door, so its decisions take typed objects. Every part is
optional (a new monitor has none); lists default to empty. Fields a model does not name
are ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from modelwatch_monitor.contract.base import ContractModel
from modelwatch_monitor.contract.results import EstimateSummary, FeatureSummary, MetricSummary
from modelwatch_monitor.contract.vocabulary import EvaluationDecision, RolloutStrategy

ConditionStatus = Literal["True", "False", "Unknown"]
RolloutKind = Literal["Promote", "Pin", "Rollback"]


class Condition(ContractModel):
    """One ``metav1.Condition``."""

    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""
    observed_generation: int | None = None


class LastCheck(ContractModel):
    """``status.lastCheck``: the last check folded into status."""

    time: str | None = None
    job: str | None = None
    report_id: str | None = None
    report_uri: str | None = None
    serving_version: int | None = None
    reason: str | None = None
    dataset_drift: bool | None = None
    drift_share: float | None = None
    n_drifted: int | None = None
    n_features: int | None = None
    quality_findings: int | None = None
    top_features: tuple[FeatureSummary, ...] = ()
    metric: MetricSummary | None = None
    estimated_metric: EstimateSummary | None = None
    rows: dict[str, int | None] | None = None


class LastFailure(ContractModel):
    time: str | None = None
    job: str | None = None
    kind: str | None = None
    reason: str | None = None
    message: str | None = None


class HistoryEntry(ContractModel):
    """One check in ``status.history``, for the M-of-N retrain triggers."""

    time: str | None = None
    report_id: str | None = None
    drift: bool = False
    degraded: bool = False
    estimated_degraded: bool = False


class RetrainInFlight(ContractModel):
    """``status.retrain``: the version reserved and its Job."""

    version: int
    job: str | None = None
    started_at: str | None = None
    trigger: str | None = None
    report_id: str | None = None
    champion_version: int | None = None
    since: str | None = None


class RetrainRecord(ContractModel):
    """One of ``status.retrains``, newest last."""

    version: int | None = None
    job: str | None = None
    trigger: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    generation: int | None = None
    outcome: str | None = None
    reason: str | None = None
    message: str | None = None


class VersionRecord(ContractModel):
    """One of ``status.versions``: a version and its artifact's sha256."""

    version: int
    sha256: str | None = None
    created_at: str | None = None
    score: float | None = None
    metric: str | None = None
    libraries: dict[str, str] | None = None


class RolloutInFlight(ContractModel):
    """``status.rollout``: recorded before the Deployment is patched."""

    kind: RolloutKind = "Promote"
    version: int
    sha256: str | None = None
    previous_version: int | None = None
    previous_sha256: str | None = None
    generation: int | None = None
    deployment_uid: str | None = None
    started_at: str | None = None


class ChallengerStatus(ContractModel):
    """``status.challenger``: the challenger under live evaluation (shadow or canary).

    Recorded when the evaluation starts and after every look at it, before anything is
    acted on: a ``decision`` of Promote or Abort here is what the operator then carries
    out (roll the serving Deployment, or delete the challenger's), so a restart in
    between resumes from it. ``difference`` is how much better the challenger is, in the
    metric's units (positive: better; for a loss, the champion's minus the
    challenger's), with ``lower``/``upper`` its confidence-sequence bounds at ``alpha``.
    """

    version: int
    sha256: str | None = None
    strategy: RolloutStrategy | None = None
    deployment: str | None = None
    champion_version: int | None = None
    since: str | None = None
    evaluated_at: str | None = None
    rows: int | None = None
    labeled_rows: int | None = None
    share: float | None = None
    metric: str | None = None
    estimated: bool | None = None
    champion_metric: float | None = None
    challenger_metric: float | None = None
    difference: float | None = None
    lower: float | None = None
    upper: float | None = None
    decision: EvaluationDecision | None = None
    reason: str | None = None
    message: str | None = None


class PinRecord(ContractModel):
    version: int | None = None
    generation: int | None = None
    outcome: str | None = None


class MonitorStatus(ContractModel):
    """``status`` of a ModelMonitor."""

    observed_generation: int | None = None
    phase: str | None = None
    current_version: int | None = None
    serving_since: str | None = None
    current_sha256: str | None = None
    latest_version: int | None = None
    drift: str | None = None
    metric: str | None = None
    estimated_metric: str | None = None
    last_check: LastCheck | None = None
    last_check_job: str | None = None
    last_check_finished_at: str | None = None
    last_failure: LastFailure | None = None
    history: tuple[HistoryEntry, ...] = ()
    retrain: RetrainInFlight | None = None
    retrains: tuple[RetrainRecord, ...] = ()
    versions: tuple[VersionRecord, ...] = ()
    rollout: RolloutInFlight | None = None
    challenger: ChallengerStatus | None = None
    pin: PinRecord | None = None
    conditions: Annotated[tuple[Condition, ...], Field()] = ()

    def condition(self, type_: str) -> Condition | None:
        """Return the condition of ``type_``, or None."""
        return next((c for c in self.conditions if c.type == type_), None)

    def version(self, number: int | None) -> VersionRecord | None:
        """Return the record of version ``number``, or None."""
        return next((v for v in self.versions if v.version == number), None)


__all__ = [
    "ChallengerStatus",
    "Condition",
    "ConditionStatus",
    "HistoryEntry",
    "LastCheck",
    "LastFailure",
    "MonitorStatus",
    "PinRecord",
    "RetrainInFlight",
    "RetrainRecord",
    "RolloutInFlight",
    "RolloutKind",
    "VersionRecord",
]
