"""The ``ModelMonitor`` spec as models: every field, default and bound, once.

The CRD (``crds/modelmonitors.modelwatch.io.yaml``) is what the API server applies;
``tests/test_contract_crd.py`` compares its OpenAPI schema with these models' JSON schema
field by field (names, defaults, enums, patterns, bounds, required), so the two cannot part.
The operator parses ``spec`` with :class:`Spec` at the kopf door; the Jobs parse the job
config at the CLI door. Past either door, code reads attributes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from modelwatch_monitor.contract.base import Bool, ContractModel, Duration, Float, Str, Text
from modelwatch_monitor.contract.constants import (
    DEFAULT_MIN_ROWS,
    DNS_SUBDOMAIN_PATTERN,
    MAX_PARALLELISM,
    NAME_PATTERN,
    RETENTION_WINDOWS,
)
from modelwatch_monitor.contract.durations import parse_duration
from modelwatch_monitor.contract.metrics import METRICS
from modelwatch_monitor.contract.vocabulary import (
    CORRECTION_ALIASES,
    STRATEGY_REPLACE,
    CategoricalTest,
    Correction,
    FeatureType,
    NumericTest,
    PerformanceMetric,
    PullPolicy,
    RolloutOnTimeout,
    RolloutStrategy,
    Task,
    TrainingData,
)

DEFAULT_MONITOR_IMAGE = "modelwatch/monitor:dev"
DEFAULT_SCHEDULE = "0 * * * *"
#: The CRD's message for the same rule, word for word.
ROLLOUT_NEEDS_DEPLOYMENT = (
    "spec.deployment is required when spec.rollout.strategy is shadow or canary: the "
    "challenger runs in a Deployment built from the serving Deployment's pod template"
)


def _correction_alias(value: object) -> object:
    return CORRECTION_ALIASES.get(value, value) if isinstance(value, str) else value


class FeatureSpec(ContractModel):
    """``spec.model.features[]``: a feature and its type."""

    name: Annotated[Text, StringConstraints(max_length=256)]
    type: FeatureType


class ModelSpec(ContractModel):
    """``spec.model``. ``id_column`` joins predictions with labels: never guessed."""

    name: Annotated[Text, StringConstraints(max_length=63, pattern=NAME_PATTERN)]
    target: Annotated[Text, StringConstraints(max_length=256)]
    task: Task = "classification"
    id_column: Text | None = None
    prediction_column: Text = "prediction"
    timestamp_column: Text = "timestamp"
    features: Annotated[tuple[FeatureSpec, ...], Field(max_length=500)] = ()


class ReferenceSpec(ContractModel):
    """``spec.data.reference``."""

    uri: Text


class CurrentSpec(ContractModel):
    """``spec.data.current``; ``uri`` None means the store's prediction log."""

    uri: Text | None = None
    window: Duration = "7d"
    retention: Duration | None = None
    min_rows: Annotated[int, Field(strict=True, ge=1)] = DEFAULT_MIN_ROWS

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window)

    @property
    def retention_seconds(self) -> float:
        """How long prediction logs are kept: ``retention``, else 4 windows."""
        if self.retention is not None:
            return parse_duration(self.retention)
        return RETENTION_WINDOWS * self.window_seconds


class LabelsSpec(ContractModel):
    """``spec.data.labels``; ``id_column`` None means ``spec.model.idColumn``."""

    uri: Text
    id_column: Text | None = None


class DataSpec(ContractModel):
    """``spec.data``."""

    reference: ReferenceSpec
    current: CurrentSpec = CurrentSpec()
    labels: LabelsSpec | None = None


class VolumeSpec(ContractModel):
    """``spec.store.volume``."""

    claim_name: Text
    mount_path: Annotated[Str, StringConstraints(pattern=r"^/.*")] = "/store"


class CredentialsSpec(ContractModel):
    """``spec.store.credentials``: the Secret holding the object store's key pair.

    Only the Secret's name and key names are in the spec (and so in the job ConfigMap);
    the operator hands the values to the job pods as ``secretKeyRef`` environment variables.
    """

    secret_name: Text
    access_key_id_key: Text = "AWS_ACCESS_KEY_ID"
    secret_access_key_key: Text = "AWS_SECRET_ACCESS_KEY"


class StoreSpec(ContractModel):
    """``spec.store``. ``endpoint`` is an S3-compatible server's URL (none for AWS S3)."""

    uri: Annotated[Str, StringConstraints(pattern=r"^([a-z][a-z0-9+.-]*://|/).+")]
    volume: VolumeSpec | None = None
    endpoint: Annotated[Str, StringConstraints(pattern=r"^https?://.+")] | None = None
    credentials: CredentialsSpec | None = None


class CheckSpec(ContractModel):
    """``spec.check``: N > 1 splits each check across N pods of an Indexed Job."""

    parallelism: Annotated[int, Field(strict=True, ge=1, le=MAX_PARALLELISM)] = 1


class DriftSpec(ContractModel):
    """``spec.drift``. ``min_effect_size`` 0.02 is a KS distance of 0.02: a mean shift of
    about 0.05 standard deviations of a normal feature (see ``check.verdicts``)."""

    numeric_test: NumericTest = "ks"
    categorical_test: CategoricalTest = "chi2"
    p_value_threshold: Annotated[Float, Field(gt=0.0, lt=1.0)] = 0.05
    correction: Annotated[Correction, BeforeValidator(_correction_alias)] = "holm"
    min_effect_size: Annotated[Float, Field(ge=0.0)] = 0.02
    drift_share_threshold: Annotated[Float, Field(gt=0.0, le=1.0)] = 0.5


class EstimateSpec(ContractModel):
    """``spec.performance.estimate``: performance estimated before labels arrive.

    ``trigger`` lets an estimated drop beyond ``maxDegradation`` (its whole band) count
    as a violation for the retrain policy.
    """

    enabled: Bool = True
    trigger: Bool = False


class PerformanceSpec(ContractModel):
    """``spec.performance``; ``metric`` None means the task's default."""

    metric: PerformanceMetric | None = None
    max_degradation: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.1
    min_labeled_rows: Annotated[int, Field(strict=True, ge=1)] = 50
    baseline: Float | None = None
    estimate: EstimateSpec = EstimateSpec()


class TriggersSpec(ContractModel):
    """``spec.retrain.triggers``: retrain after ``violations`` of the last ``window`` checks."""

    on_drift: Bool = True
    on_degradation: Bool = True
    violations: Annotated[int, Field(strict=True, ge=1, le=20)] = 1
    window: Annotated[int, Field(strict=True, ge=1, le=20)] = 1

    @model_validator(mode="after")
    def _violations_fit(self) -> TriggersSpec:
        if self.violations > self.window:
            raise ValueError(
                "spec.retrain.triggers.violations must be at most spec.retrain.triggers.window"
            )
        return self


class AutomlSpec(ContractModel):
    """``spec.retrain.automl``."""

    time_budget_seconds: Annotated[int, Field(strict=True, ge=1, le=86400)] = 60
    metric: Str = "auto"
    estimators: Annotated[tuple[Str, ...], Field(max_length=20)] = ("lgbm", "rf", "extra_tree")
    seed: Annotated[int, Field(strict=True)] = 0


class RetrainSpec(ContractModel):
    """``spec.retrain``. ``max_consecutive_losses`` is the circuit breaker; 0 turns it off."""

    enabled: Bool = True
    triggers: TriggersSpec = TriggersSpec()
    cooldown: Duration = "1h"
    max_per_day: Annotated[int, Field(strict=True, ge=0, le=20)] = 3
    max_consecutive_losses: Annotated[int, Field(strict=True, ge=0, le=100)] = 3
    training_data: TrainingData = "both"
    holdout_fraction: Annotated[Float, Field(gt=0.0, lt=1.0)] = 0.2
    min_labeled_rows: Annotated[int, Field(strict=True, ge=1)] = 50
    min_improvement: Annotated[Float, Field(ge=-1.0, le=1.0)] = 0.01
    automl: AutomlSpec = AutomlSpec()
    resources: dict[str, object] | None = None


class DeploymentSpec(ContractModel):
    """``spec.deployment``: the serving Deployment and its container."""

    name: Annotated[Str, StringConstraints(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
    container: Str | None = None
    progress_deadline_seconds: Annotated[int, Field(strict=True, ge=10, le=3600)] = 120
    rollback_on_failure: Bool = True


class RolloutSpec(ContractModel):
    """``spec.rollout``: how a challenger that won on the holdout reaches the traffic.

    ``replace`` rolls the serving Deployment to it at once. ``shadow`` runs it in a
    Deployment of its own that gets a copy of every request (through a bounded queue of
    ``mirror_queue`` requests, never on the client's path); ``canary`` serves it ``weight``
    percent of the traffic. Both are judged on live rows joined to labels by id, with a
    test valid under repeated looks at level ``alpha``: promoted when better by at least
    ``min_improvement``, aborted when worse by more than ``max_degradation``, or when its
    error rate or p99 latency is worse than the champion's beyond the software gates.
    ``max_duration`` without a decision does ``on_timeout``.

    The margins are in the metric's units, positive when the challenger is better (for a
    loss, the champion's loss minus the challenger's), as ``retrain.minImprovement`` is.
    """

    strategy: RolloutStrategy = "replace"
    weight: Annotated[int, Field(strict=True, ge=1, le=50)] = 10
    alpha: Annotated[Float, Field(gt=0.0, le=0.5)] = 0.05
    min_improvement: Annotated[Float, Field(ge=-1.0, le=1.0)] = 0.0
    max_degradation: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.02
    min_labeled_rows: Annotated[int, Field(strict=True, ge=1)] = 200
    max_duration: Duration = "24h"
    on_timeout: RolloutOnTimeout = "abort"
    max_error_rate_increase: Annotated[Float, Field(ge=0.0, le=1.0)] = 0.01
    max_latency_p99_ratio: Annotated[Float, Field(ge=1.0)] = 1.5
    mirror_queue: Annotated[int, Field(strict=True, ge=1, le=100_000)] = 1000

    @property
    def evaluates(self) -> bool:
        """Whether a challenger is judged on live traffic first (shadow or canary)."""
        return self.strategy != STRATEGY_REPLACE

    @property
    def max_duration_seconds(self) -> float:
        """``max_duration`` in seconds."""
        return parse_duration(self.max_duration)


class ImagesSpec(ContractModel):
    """``spec.images``."""

    monitor: Text = DEFAULT_MONITOR_IMAGE
    pull_policy: PullPolicy = "IfNotPresent"


class Spec(ContractModel):
    """The ``ModelMonitor`` spec, typed, every default applied."""

    model: ModelSpec
    data: DataSpec
    store: StoreSpec
    schedule: Annotated[Str, StringConstraints(max_length=128)] = DEFAULT_SCHEDULE
    suspend: Bool = False
    check: CheckSpec = CheckSpec()
    drift: DriftSpec = DriftSpec()
    performance: PerformanceSpec = PerformanceSpec()
    retrain: RetrainSpec = RetrainSpec()
    deployment: DeploymentSpec | None = None
    rollout: RolloutSpec = RolloutSpec()
    pinned_version: Annotated[int, Field(strict=True, ge=1)] | None = None
    images: ImagesSpec = ImagesSpec()

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Spec:
        """The CRD's CEL rules, once more for documents that did not pass the API server."""
        model = self.model
        if self.data.labels is not None and not model.id_column:
            raise ValueError(
                "spec.model.idColumn is required when spec.data.labels is set: it names the "
                "column that joins each prediction with its label"
            )
        if any(f.name == model.target for f in model.features):
            raise ValueError("spec.model.target must not be listed in spec.model.features")
        if self.rollout.evaluates and self.deployment is None:
            raise ValueError(ROLLOUT_NEEDS_DEPLOYMENT)
        metric = self.performance.metric
        if metric is not None and METRICS[metric][0] != model.task:
            raise ValueError(
                f"spec.performance.metric {metric!r} does not suit spec.model.task {model.task!r}"
            )
        return self

    @property
    def labels_id_column(self) -> str | None:
        """The id column of the labels: ``spec.data.labels.idColumn`` or the model's."""
        labels = self.data.labels
        if labels is None:
            return None
        return labels.id_column or self.model.id_column


__all__ = [
    "DEFAULT_MONITOR_IMAGE",
    "DEFAULT_SCHEDULE",
    "ROLLOUT_NEEDS_DEPLOYMENT",
    "AutomlSpec",
    "CheckSpec",
    "CredentialsSpec",
    "CurrentSpec",
    "DataSpec",
    "DeploymentSpec",
    "DriftSpec",
    "EstimateSpec",
    "FeatureSpec",
    "ImagesSpec",
    "LabelsSpec",
    "ModelSpec",
    "PerformanceSpec",
    "ReferenceSpec",
    "RetrainSpec",
    "RolloutSpec",
    "Spec",
    "StoreSpec",
    "TriggersSpec",
    "VolumeSpec",
]
