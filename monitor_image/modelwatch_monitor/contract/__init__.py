"""The contracts between the operator and the monitor image, as one package of models.

The only coupling between ``modelwatch_operator`` and ``modelwatch_monitor``; importable
without numpy, pandas or a Kubernetes client (the operator image has no numerical stack).

- :mod:`.spec`: the ``ModelMonitor`` spec, every field, default and bound once;
  :mod:`.config` the job config rendered from it (``parse_job_config``, ``parse_spec``).
- :mod:`.results`: what a Job writes to its termination message, a tagged union on kind
  and ok (``read_result``); :mod:`.status` the status the operator reads back.
- :mod:`.vocabulary`: every enum, reason and promotion word; :mod:`.promotion` the one
  promotion rule; :mod:`.metrics` the one table of metric directions; :mod:`.durations`
  the one duration and timestamp parser; :mod:`.layout` the store layout;
  :mod:`.constants` the names and bounds both sides agree on.

Everything public is re-exported here: ``from modelwatch_monitor import contract``.
"""

from __future__ import annotations

from modelwatch_monitor.contract.base import (
    ContractModel as ContractModel,
)
from modelwatch_monitor.contract.config import (
    JobConfig as JobConfig,
)
from modelwatch_monitor.contract.config import (
    MonitorRef as MonitorRef,
)
from modelwatch_monitor.contract.config import (
    build_job_config as build_job_config,
)
from modelwatch_monitor.contract.config import (
    camel as camel,
)
from modelwatch_monitor.contract.config import (
    parse_field as parse_field,
)
from modelwatch_monitor.contract.config import (
    parse_job_config as parse_job_config,
)
from modelwatch_monitor.contract.config import (
    parse_section as parse_section,
)
from modelwatch_monitor.contract.config import (
    parse_spec as parse_spec,
)
from modelwatch_monitor.contract.constants import (
    ARG_SERVING_SINCE as ARG_SERVING_SINCE,
)
from modelwatch_monitor.contract.constants import (
    ARG_SERVING_VERSION as ARG_SERVING_VERSION,
)
from modelwatch_monitor.contract.constants import (
    ARG_SHARDS as ARG_SHARDS,
)
from modelwatch_monitor.contract.constants import (
    CONFIG_KEY as CONFIG_KEY,
)
from modelwatch_monitor.contract.constants import (
    CONFIG_MOUNT_DIR as CONFIG_MOUNT_DIR,
)
from modelwatch_monitor.contract.constants import (
    CONFIG_PATH as CONFIG_PATH,
)
from modelwatch_monitor.contract.constants import (
    DEFAULT_MIN_ROWS as DEFAULT_MIN_ROWS,
)
from modelwatch_monitor.contract.constants import (
    DURATION_PATTERN as DURATION_PATTERN,
)
from modelwatch_monitor.contract.constants import (
    ENV_ALLOW_UNVERIFIED as ENV_ALLOW_UNVERIFIED,
)
from modelwatch_monitor.contract.constants import (
    ENV_MODEL_NAME as ENV_MODEL_NAME,
)
from modelwatch_monitor.contract.constants import (
    ENV_MODEL_SHA256 as ENV_MODEL_SHA256,
)
from modelwatch_monitor.contract.constants import (
    ENV_MODEL_VERSION as ENV_MODEL_VERSION,
)
from modelwatch_monitor.contract.constants import (
    ENV_S3_ACCESS_KEY_ID as ENV_S3_ACCESS_KEY_ID,
)
from modelwatch_monitor.contract.constants import (
    ENV_S3_ENDPOINT as ENV_S3_ENDPOINT,
)
from modelwatch_monitor.contract.constants import (
    ENV_S3_SECRET_ACCESS_KEY as ENV_S3_SECRET_ACCESS_KEY,
)
from modelwatch_monitor.contract.constants import (
    ENV_SHARD_INDEX as ENV_SHARD_INDEX,
)
from modelwatch_monitor.contract.constants import (
    ENV_SHARD_RUN as ENV_SHARD_RUN,
)
from modelwatch_monitor.contract.constants import (
    ENV_STORE_URI as ENV_STORE_URI,
)
from modelwatch_monitor.contract.constants import (
    IDENTIFIER_PATTERN as IDENTIFIER_PATTERN,
)
from modelwatch_monitor.contract.constants import (
    INT64_MAX as INT64_MAX,
)
from modelwatch_monitor.contract.constants import (
    MAX_DEPTH as MAX_DEPTH,
)
from modelwatch_monitor.contract.constants import (
    MAX_ITEMS as MAX_ITEMS,
)
from modelwatch_monitor.contract.constants import (
    MAX_LISTED as MAX_LISTED,
)
from modelwatch_monitor.contract.constants import (
    MAX_MESSAGE_CHARS as MAX_MESSAGE_CHARS,
)
from modelwatch_monitor.contract.constants import (
    MAX_PARALLELISM as MAX_PARALLELISM,
)
from modelwatch_monitor.contract.constants import (
    MAX_RESULT_BYTES as MAX_RESULT_BYTES,
)
from modelwatch_monitor.contract.constants import (
    MAX_STRING_CHARS as MAX_STRING_CHARS,
)
from modelwatch_monitor.contract.constants import (
    NAME_PATTERN as NAME_PATTERN,
)
from modelwatch_monitor.contract.constants import (
    REPORT_ID_PATTERN as REPORT_ID_PATTERN,
)
from modelwatch_monitor.contract.constants import (
    RETENTION_WINDOWS as RETENTION_WINDOWS,
)
from modelwatch_monitor.contract.constants import (
    SCHEMA_VERSION as SCHEMA_VERSION,
)
from modelwatch_monitor.contract.constants import (
    SHA256_PATTERN as SHA256_PATTERN,
)
from modelwatch_monitor.contract.constants import (
    SHARD_RESULT_INDEX as SHARD_RESULT_INDEX,
)
from modelwatch_monitor.contract.constants import (
    TERMINATION_MESSAGE_PATH as TERMINATION_MESSAGE_PATH,
)
from modelwatch_monitor.contract.durations import (
    parse_duration as parse_duration,
)
from modelwatch_monitor.contract.durations import (
    parse_timestamp as parse_timestamp,
)
from modelwatch_monitor.contract.errors import (
    ContractError as ContractError,
)
from modelwatch_monitor.contract.errors import (
    contract_error as contract_error,
)
from modelwatch_monitor.contract.errors import (
    problems as problems,
)
from modelwatch_monitor.contract.layout import (
    LOG_META_COLUMNS as LOG_META_COLUMNS,
)
from modelwatch_monitor.contract.layout import (
    LOG_MODEL_VERSION as LOG_MODEL_VERSION,
)
from modelwatch_monitor.contract.layout import (
    LOG_PREDICTION as LOG_PREDICTION,
)
from modelwatch_monitor.contract.layout import (
    LOG_PROBA_PREFIX as LOG_PROBA_PREFIX,
)
from modelwatch_monitor.contract.layout import (
    LOG_REQUEST_ID as LOG_REQUEST_ID,
)
from modelwatch_monitor.contract.layout import (
    LOG_TIMESTAMP as LOG_TIMESTAMP,
)
from modelwatch_monitor.contract.layout import (
    METADATA_FILE as METADATA_FILE,
)
from modelwatch_monitor.contract.layout import (
    MODEL_FILE as MODEL_FILE,
)
from modelwatch_monitor.contract.layout import (
    PROFILE_FILE as PROFILE_FILE,
)
from modelwatch_monitor.contract.layout import (
    REPORT_HTML as REPORT_HTML,
)
from modelwatch_monitor.contract.layout import (
    REPORT_JSON as REPORT_JSON,
)
from modelwatch_monitor.contract.layout import (
    is_log_meta_column as is_log_meta_column,
)
from modelwatch_monitor.contract.layout import (
    model_dir as model_dir,
)
from modelwatch_monitor.contract.layout import (
    predictions_dir as predictions_dir,
)
from modelwatch_monitor.contract.layout import (
    predictions_partition as predictions_partition,
)
from modelwatch_monitor.contract.layout import (
    reference_profile_path as reference_profile_path,
)
from modelwatch_monitor.contract.layout import (
    report_dir as report_dir,
)
from modelwatch_monitor.contract.layout import (
    reports_dir as reports_dir,
)
from modelwatch_monitor.contract.layout import (
    shards_dir as shards_dir,
)
from modelwatch_monitor.contract.layout import (
    version_dir as version_dir,
)
from modelwatch_monitor.contract.layout import (
    version_profile_path as version_profile_path,
)
from modelwatch_monitor.contract.layout import (
    versions_dir as versions_dir,
)
from modelwatch_monitor.contract.metrics import (
    METRICS as METRICS,
)
from modelwatch_monitor.contract.metrics import (
    greater_is_better as greater_is_better,
)
from modelwatch_monitor.contract.promotion import (
    Promotion as Promotion,
)
from modelwatch_monitor.contract.promotion import (
    decide_promotion as decide_promotion,
)
from modelwatch_monitor.contract.results import (
    ChallengerScore as ChallengerScore,
)
from modelwatch_monitor.contract.results import (
    ChampionScore as ChampionScore,
)
from modelwatch_monitor.contract.results import (
    CheckFailed as CheckFailed,
)
from modelwatch_monitor.contract.results import (
    CheckNoVerdict as CheckNoVerdict,
)
from modelwatch_monitor.contract.results import (
    CheckOk as CheckOk,
)
from modelwatch_monitor.contract.results import (
    CheckResult as CheckResult,
)
from modelwatch_monitor.contract.results import (
    EstimateSummary as EstimateSummary,
)
from modelwatch_monitor.contract.results import (
    ExtraValue as ExtraValue,
)
from modelwatch_monitor.contract.results import (
    FeatureSummary as FeatureSummary,
)
from modelwatch_monitor.contract.results import (
    Listed as Listed,
)
from modelwatch_monitor.contract.results import (
    Message as Message,
)
from modelwatch_monitor.contract.results import (
    MetricSummary as MetricSummary,
)
from modelwatch_monitor.contract.results import (
    ReportId as ReportId,
)
from modelwatch_monitor.contract.results import (
    Result as Result,
)
from modelwatch_monitor.contract.results import (
    ResultModel as ResultModel,
)
from modelwatch_monitor.contract.results import (
    RetrainFailed as RetrainFailed,
)
from modelwatch_monitor.contract.results import (
    RetrainOk as RetrainOk,
)
from modelwatch_monitor.contract.results import (
    RetrainResult as RetrainResult,
)
from modelwatch_monitor.contract.results import (
    RowCounts as RowCounts,
)
from modelwatch_monitor.contract.results import (
    Sha256 as Sha256,
)
from modelwatch_monitor.contract.results import (
    encode_result as encode_result,
)
from modelwatch_monitor.contract.results import (
    parse_result as parse_result,
)
from modelwatch_monitor.contract.results import (
    read_result as read_result,
)
from modelwatch_monitor.contract.results import (
    sanitize_result as sanitize_result,
)
from modelwatch_monitor.contract.results import (
    validate_result as validate_result,
)
from modelwatch_monitor.contract.results import (
    write_result as write_result,
)
from modelwatch_monitor.contract.spec import (
    DEFAULT_MONITOR_IMAGE as DEFAULT_MONITOR_IMAGE,
)
from modelwatch_monitor.contract.spec import (
    DEFAULT_SCHEDULE as DEFAULT_SCHEDULE,
)
from modelwatch_monitor.contract.spec import (
    AutomlSpec as AutomlSpec,
)
from modelwatch_monitor.contract.spec import (
    CheckSpec as CheckSpec,
)
from modelwatch_monitor.contract.spec import (
    CredentialsSpec as CredentialsSpec,
)
from modelwatch_monitor.contract.spec import (
    CurrentSpec as CurrentSpec,
)
from modelwatch_monitor.contract.spec import (
    DataSpec as DataSpec,
)
from modelwatch_monitor.contract.spec import (
    DeploymentSpec as DeploymentSpec,
)
from modelwatch_monitor.contract.spec import (
    DriftSpec as DriftSpec,
)
from modelwatch_monitor.contract.spec import (
    EstimateSpec as EstimateSpec,
)
from modelwatch_monitor.contract.spec import (
    FeatureSpec as FeatureSpec,
)
from modelwatch_monitor.contract.spec import (
    ImagesSpec as ImagesSpec,
)
from modelwatch_monitor.contract.spec import (
    LabelsSpec as LabelsSpec,
)
from modelwatch_monitor.contract.spec import (
    ModelSpec as ModelSpec,
)
from modelwatch_monitor.contract.spec import (
    PerformanceSpec as PerformanceSpec,
)
from modelwatch_monitor.contract.spec import (
    ReferenceSpec as ReferenceSpec,
)
from modelwatch_monitor.contract.spec import (
    RetrainSpec as RetrainSpec,
)
from modelwatch_monitor.contract.spec import (
    Spec as Spec,
)
from modelwatch_monitor.contract.spec import (
    StoreSpec as StoreSpec,
)
from modelwatch_monitor.contract.spec import (
    TriggersSpec as TriggersSpec,
)
from modelwatch_monitor.contract.spec import (
    VolumeSpec as VolumeSpec,
)
from modelwatch_monitor.contract.status import (
    Condition as Condition,
)
from modelwatch_monitor.contract.status import (
    ConditionStatus as ConditionStatus,
)
from modelwatch_monitor.contract.status import (
    HistoryEntry as HistoryEntry,
)
from modelwatch_monitor.contract.status import (
    LastCheck as LastCheck,
)
from modelwatch_monitor.contract.status import (
    LastFailure as LastFailure,
)
from modelwatch_monitor.contract.status import (
    MonitorStatus as MonitorStatus,
)
from modelwatch_monitor.contract.status import (
    PinRecord as PinRecord,
)
from modelwatch_monitor.contract.status import (
    RetrainInFlight as RetrainInFlight,
)
from modelwatch_monitor.contract.status import (
    RetrainRecord as RetrainRecord,
)
from modelwatch_monitor.contract.status import (
    RolloutInFlight as RolloutInFlight,
)
from modelwatch_monitor.contract.status import (
    RolloutKind as RolloutKind,
)
from modelwatch_monitor.contract.status import (
    VersionRecord as VersionRecord,
)
from modelwatch_monitor.contract.vocabulary import (
    CATEGORICAL_TESTS as CATEGORICAL_TESTS,
)
from modelwatch_monitor.contract.vocabulary import (
    CHECK_FAILURE_REASONS as CHECK_FAILURE_REASONS,
)
from modelwatch_monitor.contract.vocabulary import (
    CHECK_NO_VERDICT_REASONS as CHECK_NO_VERDICT_REASONS,
)
from modelwatch_monitor.contract.vocabulary import (
    CORRECTION_ALIASES as CORRECTION_ALIASES,
)
from modelwatch_monitor.contract.vocabulary import (
    CORRECTIONS as CORRECTIONS,
)
from modelwatch_monitor.contract.vocabulary import (
    FEATURE_TYPES as FEATURE_TYPES,
)
from modelwatch_monitor.contract.vocabulary import (
    NUMERIC_TESTS as NUMERIC_TESTS,
)
from modelwatch_monitor.contract.vocabulary import (
    PERFORMANCE_METRICS as PERFORMANCE_METRICS,
)
from modelwatch_monitor.contract.vocabulary import (
    PROMOTE_BELOW_MIN_IMPROVEMENT as PROMOTE_BELOW_MIN_IMPROVEMENT,
)
from modelwatch_monitor.contract.vocabulary import (
    PROMOTE_CHALLENGER_BETTER as PROMOTE_CHALLENGER_BETTER,
)
from modelwatch_monitor.contract.vocabulary import (
    PROMOTE_CHAMPION_UNUSABLE as PROMOTE_CHAMPION_UNUSABLE,
)
from modelwatch_monitor.contract.vocabulary import (
    PROMOTE_FIRST_VERSION as PROMOTE_FIRST_VERSION,
)
from modelwatch_monitor.contract.vocabulary import (
    PROMOTE_SCORE_UNDEFINED as PROMOTE_SCORE_UNDEFINED,
)
from modelwatch_monitor.contract.vocabulary import (
    PROMOTION_REASONS as PROMOTION_REASONS,
)
from modelwatch_monitor.contract.vocabulary import (
    PULL_POLICIES as PULL_POLICIES,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_AWAITING_TRAFFIC as REASON_AWAITING_TRAFFIC,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_CHAMPION_HASH_MISMATCH as REASON_CHAMPION_HASH_MISMATCH,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_CHECK_FAILED as REASON_CHECK_FAILED,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_CONFIG_ERROR as REASON_CONFIG_ERROR,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_DATA_ERROR as REASON_DATA_ERROR,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_INVALID_RESULT as REASON_INVALID_RESULT,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_NO_DATA as REASON_NO_DATA,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_NOT_ENOUGH_LABELS as REASON_NOT_ENOUGH_LABELS,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_STORE_ERROR as REASON_STORE_ERROR,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_TRAINING_FAILED as REASON_TRAINING_FAILED,
)
from modelwatch_monitor.contract.vocabulary import (
    REASON_VERSION_EXISTS as REASON_VERSION_EXISTS,
)
from modelwatch_monitor.contract.vocabulary import (
    RESULT_KINDS as RESULT_KINDS,
)
from modelwatch_monitor.contract.vocabulary import (
    RETRAIN_FAILURE_REASONS as RETRAIN_FAILURE_REASONS,
)
from modelwatch_monitor.contract.vocabulary import (
    TASKS as TASKS,
)
from modelwatch_monitor.contract.vocabulary import (
    TRAINING_DATA as TRAINING_DATA,
)
from modelwatch_monitor.contract.vocabulary import (
    BaselineSource as BaselineSource,
)
from modelwatch_monitor.contract.vocabulary import (
    CategoricalTest as CategoricalTest,
)
from modelwatch_monitor.contract.vocabulary import (
    CheckFailureReason as CheckFailureReason,
)
from modelwatch_monitor.contract.vocabulary import (
    CheckNoVerdictReason as CheckNoVerdictReason,
)
from modelwatch_monitor.contract.vocabulary import (
    Correction as Correction,
)
from modelwatch_monitor.contract.vocabulary import (
    FeatureType as FeatureType,
)
from modelwatch_monitor.contract.vocabulary import (
    NumericTest as NumericTest,
)
from modelwatch_monitor.contract.vocabulary import (
    PerformanceMetric as PerformanceMetric,
)
from modelwatch_monitor.contract.vocabulary import (
    PromotionReason as PromotionReason,
)
from modelwatch_monitor.contract.vocabulary import (
    PullPolicy as PullPolicy,
)
from modelwatch_monitor.contract.vocabulary import (
    ResultKind as ResultKind,
)
from modelwatch_monitor.contract.vocabulary import (
    RetrainFailureReason as RetrainFailureReason,
)
from modelwatch_monitor.contract.vocabulary import (
    Task as Task,
)
from modelwatch_monitor.contract.vocabulary import (
    TrainingData as TrainingData,
)

__all__ = [
    "ARG_SERVING_SINCE",
    "ARG_SERVING_VERSION",
    "ARG_SHARDS",
    "CATEGORICAL_TESTS",
    "CHECK_FAILURE_REASONS",
    "CHECK_NO_VERDICT_REASONS",
    "CONFIG_KEY",
    "CONFIG_MOUNT_DIR",
    "CONFIG_PATH",
    "CORRECTIONS",
    "CORRECTION_ALIASES",
    "DEFAULT_MIN_ROWS",
    "DEFAULT_MONITOR_IMAGE",
    "DEFAULT_SCHEDULE",
    "DURATION_PATTERN",
    "ENV_ALLOW_UNVERIFIED",
    "ENV_MODEL_NAME",
    "ENV_MODEL_SHA256",
    "ENV_MODEL_VERSION",
    "ENV_S3_ACCESS_KEY_ID",
    "ENV_S3_ENDPOINT",
    "ENV_S3_SECRET_ACCESS_KEY",
    "ENV_SHARD_INDEX",
    "ENV_SHARD_RUN",
    "ENV_STORE_URI",
    "FEATURE_TYPES",
    "IDENTIFIER_PATTERN",
    "INT64_MAX",
    "LOG_META_COLUMNS",
    "LOG_MODEL_VERSION",
    "LOG_PREDICTION",
    "LOG_PROBA_PREFIX",
    "LOG_REQUEST_ID",
    "LOG_TIMESTAMP",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_LISTED",
    "MAX_MESSAGE_CHARS",
    "MAX_PARALLELISM",
    "MAX_RESULT_BYTES",
    "MAX_STRING_CHARS",
    "METADATA_FILE",
    "METRICS",
    "MODEL_FILE",
    "NAME_PATTERN",
    "NUMERIC_TESTS",
    "PERFORMANCE_METRICS",
    "PROFILE_FILE",
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
    "REPORT_HTML",
    "REPORT_ID_PATTERN",
    "REPORT_JSON",
    "RESULT_KINDS",
    "RETENTION_WINDOWS",
    "RETRAIN_FAILURE_REASONS",
    "SCHEMA_VERSION",
    "SHA256_PATTERN",
    "SHARD_RESULT_INDEX",
    "TASKS",
    "TERMINATION_MESSAGE_PATH",
    "TRAINING_DATA",
    "AutomlSpec",
    "BaselineSource",
    "CategoricalTest",
    "ChallengerScore",
    "ChampionScore",
    "CheckFailed",
    "CheckFailureReason",
    "CheckNoVerdict",
    "CheckNoVerdictReason",
    "CheckOk",
    "CheckResult",
    "CheckSpec",
    "Condition",
    "ConditionStatus",
    "ContractError",
    "ContractModel",
    "Correction",
    "CredentialsSpec",
    "CurrentSpec",
    "DataSpec",
    "DeploymentSpec",
    "DriftSpec",
    "EstimateSpec",
    "EstimateSummary",
    "ExtraValue",
    "FeatureSpec",
    "FeatureSummary",
    "FeatureType",
    "HistoryEntry",
    "ImagesSpec",
    "JobConfig",
    "LabelsSpec",
    "LastCheck",
    "LastFailure",
    "Listed",
    "Message",
    "MetricSummary",
    "ModelSpec",
    "MonitorRef",
    "MonitorStatus",
    "NumericTest",
    "PerformanceMetric",
    "PerformanceSpec",
    "PinRecord",
    "Promotion",
    "PromotionReason",
    "PullPolicy",
    "ReferenceSpec",
    "ReportId",
    "Result",
    "ResultKind",
    "ResultModel",
    "RetrainFailed",
    "RetrainFailureReason",
    "RetrainInFlight",
    "RetrainOk",
    "RetrainRecord",
    "RetrainResult",
    "RetrainSpec",
    "RolloutInFlight",
    "RolloutKind",
    "RowCounts",
    "Sha256",
    "Spec",
    "StoreSpec",
    "Task",
    "TrainingData",
    "TriggersSpec",
    "VersionRecord",
    "VolumeSpec",
    "build_job_config",
    "camel",
    "contract_error",
    "decide_promotion",
    "encode_result",
    "greater_is_better",
    "is_log_meta_column",
    "model_dir",
    "parse_duration",
    "parse_field",
    "parse_job_config",
    "parse_result",
    "parse_section",
    "parse_spec",
    "parse_timestamp",
    "predictions_dir",
    "predictions_partition",
    "problems",
    "read_result",
    "reference_profile_path",
    "report_dir",
    "reports_dir",
    "sanitize_result",
    "shards_dir",
    "validate_result",
    "version_dir",
    "version_profile_path",
    "versions_dir",
    "write_result",
]
