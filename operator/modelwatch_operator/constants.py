"""Names shared by the handlers, builders and manifests: API group, labels, handler ids."""

from __future__ import annotations

from typing import Final

GROUP: Final = "modelwatch.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
# kopf's own annotations (progress, diff base). A sub-domain, not GROUP itself: kopf leaves
# every annotation under its storage prefix out of the diff, and the user-facing ones
# (modelwatch.io/retrain-now, modelwatch.io/check-now) must trigger the update handler.
KOPF_PREFIX: Final = f"operator.{GROUP}"
KIND: Final = "ModelMonitor"
PLURAL: Final = "modelmonitors"

OPERATOR_NAME: Final = "modelwatch-operator"
FIELD_MANAGER: Final = OPERATOR_NAME
APP_NAME: Final = "modelwatch"

# Labels on every child, and on the serving Deployment the operator takes over.
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_MONITOR: Final = f"{GROUP}/monitor"
LABEL_JOB_KIND: Final = f"{GROUP}/job-kind"
LABEL_MODEL_VERSION: Final = f"{GROUP}/version"

JOB_KIND_CHECK: Final = "check"
JOB_KIND_RETRAIN: Final = "retrain"

# Annotations.
ANNOTATION_RETRAIN_NOW: Final = f"{GROUP}/retrain-now"
ANNOTATION_CHECK_NOW: Final = f"{GROUP}/check-now"
ANNOTATION_MODEL_VERSION: Final = f"{GROUP}/model-version"
ANNOTATION_TRIGGER: Final = f"{GROUP}/trigger"

# Child names: fixed, so a retried reconcile never creates a twin.
CHECK_CONTAINER: Final = "check"
RETRAIN_CONTAINER: Final = "retrain"


def config_map_name(monitor: str) -> str:
    """Return the name of the job config ConfigMap of one ModelMonitor."""
    return f"{monitor}-config"


def cronjob_name(monitor: str) -> str:
    """Return the name of the check CronJob of one ModelMonitor."""
    return f"{monitor}-check"


def retrain_job_name(monitor: str, version: int) -> str:
    """Return the name of the retrain Job that writes ``version``."""
    return f"{monitor}-retrain-{int(version)}"


def challenger_deployment_name(monitor: str) -> str:
    """Return the name of the Deployment a shadow or canary challenger runs in."""
    return f"{monitor}-challenger"


# Job pods.
RUN_AS_USER: Final = 10001
JOB_BACKOFF_LIMIT: Final = 0
JOB_TTL_SECONDS: Final = 7 * 24 * 3600
CHECK_ACTIVE_DEADLINE_SECONDS: Final = 3600
RETRAIN_ACTIVE_DEADLINE_EXTRA_SECONDS: Final = 1800
# Sharded checks (spec.check.parallelism > 1): an Indexed Job whose failed pod retries
# only its own share, this many times; the pod of index 0 carries the result.
SHARD_BACKOFF_LIMIT_PER_INDEX: Final = 2
LABEL_JOB_CONTROLLER_UID: Final = "batch.kubernetes.io/controller-uid"
ANNOTATION_COMPLETION_INDEX: Final = "batch.kubernetes.io/job-completion-index"
HISTORY_LIMIT_SUCCESSFUL: Final = 3
HISTORY_LIMIT_FAILED: Final = 3
CRON_STARTING_DEADLINE_SECONDS: Final = 300
TMP_MOUNT: Final = "/tmp"

# Status bookkeeping.
CHECK_HISTORY_LIMIT: Final = 20
RETRAIN_LOG_LIMIT: Final = 20
KNOWN_VERSIONS_LIMIT: Final = 50

# Condition types.
COND_READY: Final = "Ready"
COND_DATA_DRIFT: Final = "DataDrift"
COND_DEGRADED: Final = "PerformanceDegraded"
COND_RETRAINING: Final = "Retraining"
COND_ROLLOUT: Final = "RolloutComplete"
# A challenger under live evaluation (spec.rollout.strategy shadow or canary); its reasons
# are the evaluation words of contract.vocabulary.
COND_EVALUATING: Final = "Evaluating"
CONDITION_TYPES: Final = (
    COND_READY,
    COND_DATA_DRIFT,
    COND_DEGRADED,
    COND_RETRAINING,
    COND_EVALUATING,
    COND_ROLLOUT,
)

# Phases (printer column).
PHASE_PENDING: Final = "Pending"
PHASE_HEALTHY: Final = "Healthy"
PHASE_DRIFTED: Final = "Drifted"
PHASE_DEGRADED: Final = "Degraded"
PHASE_RETRAINING: Final = "Retraining"
PHASE_ROLLING_OUT: Final = "RollingOut"
PHASE_FAILED: Final = "Failed"
PHASE_NO_DATA: Final = "NoData"
PHASE_AWAITING_TRAFFIC: Final = "AwaitingTraffic"
PHASE_SUSPENDED: Final = "Suspended"

# Operator endpoints.
LIVENESS_PORT: Final = 8080
METRICS_PORT: Final = 9090
