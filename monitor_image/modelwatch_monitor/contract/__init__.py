"""The contracts between the operator and the monitor image.

This module is the only coupling between ``modelwatch_operator`` and
``modelwatch_monitor``. It must stay importable without numpy, pandas or any
Kubernetes client: the operator image carries no numerical stack.

Three contracts live here:

1. **Job config** -- the operator renders the ``ModelMonitor`` spec (with its
   defaults applied) into JSON under key :data:`CONFIG_KEY` of ConfigMap
   ``<mm>-config``, mounted at :data:`CONFIG_MOUNT_DIR`. The CLI validates it with
   :func:`parse_job_config`.
2. **Job result** -- the CLI writes a compact JSON summary of at most
   :data:`MAX_RESULT_BYTES` to :data:`TERMINATION_MESSAGE_PATH`; the operator
   reads it back from the Pod's ``status.containerStatuses[].state.terminated.message``
   with :func:`parse_result`.
3. **Store layout** -- the path helpers below (:func:`version_dir` etc.).

Besides, the tables both sides share, each once: the enums and defaults of the spec
(:class:`Spec` and its parts; ``tests/test_contract_crd.py`` holds the CRD to them), the
one duration parser (:func:`parse_duration`), the one timestamp parser
(:func:`parse_timestamp`), the one table of metric directions (:data:`METRICS`), and the
one promotion rule (:func:`decide_promotion`), which the retrain Job applies and the
operator records.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple, TypedDict, TypeVar, Union, get_args

SCHEMA_VERSION: Final = 1

CONFIG_KEY: Final = "config.json"
CONFIG_MOUNT_DIR: Final = "/etc/modelwatch"
CONFIG_PATH: Final = f"{CONFIG_MOUNT_DIR}/{CONFIG_KEY}"
TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"
MAX_RESULT_BYTES: Final = 4096

# Environment of the model server (set by the operator on the serving Deployment).
ENV_MODEL_VERSION: Final = "MODEL_VERSION"
ENV_MODEL_SHA256: Final = "MODEL_SHA256"
ENV_MODEL_NAME: Final = "MODEL_NAME"
ENV_STORE_URI: Final = "MODELWATCH_STORE"
#: "true" lets the server load a version without MODEL_SHA256, trusting its metadata.json:
#: only for the first deploy of a model, before any sha256 is known. Never set by modelwatch.
ENV_ALLOW_UNVERIFIED: Final = "MODELWATCH_ALLOW_UNVERIFIED_FIRST_DEPLOY"

# Environment of every pod that reads the store when it is an object store: the standard
# names botocore (under s3fs) reads. The operator sets them on its Jobs from spec.store;
# the model server's Deployment sets them itself (README, "An S3 store").
ENV_S3_ENDPOINT: Final = "AWS_ENDPOINT_URL"
ENV_S3_ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
ENV_S3_SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"

RESULT_KINDS: Final = ("check", "retrain")

# ---------------------------------------------------------------------------
# Enums, metric directions and durations: the one table of each
# ---------------------------------------------------------------------------
#
# The CRD (crds/modelmonitors.modelwatch.io.yaml) spells the same enums and defaults;
# tests/test_contract_crd.py compares every one of them with the tables below.


class ContractError(ValueError):
    """A config or result document does not follow the contract."""


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

TASKS: Final[tuple[str, ...]] = get_args(Task)
FEATURE_TYPES: Final[tuple[str, ...]] = get_args(FeatureType)
NUMERIC_TESTS: Final[tuple[str, ...]] = get_args(NumericTest)
CATEGORICAL_TESTS: Final[tuple[str, ...]] = get_args(CategoricalTest)
CORRECTIONS: Final[tuple[str, ...]] = get_args(Correction)
PERFORMANCE_METRICS: Final[tuple[str, ...]] = get_args(PerformanceMetric)
TRAINING_DATA: Final[tuple[str, ...]] = get_args(TrainingData)
PULL_POLICIES: Final[tuple[str, ...]] = get_args(PullPolicy)

#: Older spellings still read: ``bh`` was the command line's name of ``fdr_bh``.
CORRECTION_ALIASES: Final[Mapping[str, str]] = {"bh": "fdr_bh"}

#: Every metric any part of modelwatch scores: its task and whether greater is better.
#: The check's ``spec.performance.metric`` takes :data:`PERFORMANCE_METRICS`; the
#: retrain's ``spec.retrain.automl.metric`` any key here (or ``auto``).
METRICS: Final[Mapping[str, tuple[Task, bool]]] = {
    "accuracy": ("classification", True),
    "precision": ("classification", True),
    "recall": ("classification", True),
    "f1": ("classification", True),
    "macro_f1": ("classification", True),
    "micro_f1": ("classification", True),
    "roc_auc": ("classification", True),
    "roc_auc_ovr": ("classification", True),
    "log_loss": ("classification", False),
    "r2": ("regression", True),
    "rmse": ("regression", False),
    "mae": ("regression", False),
    "mse": ("regression", False),
    "mape": ("regression", False),
}


def greater_is_better(metric: str) -> bool:
    """Return True when a larger value of ``metric`` is better.

    >>> greater_is_better("accuracy"), greater_is_better("rmse")
    (True, False)
    """
    try:
        return METRICS[metric][1]
    except KeyError:
        raise ContractError(
            f"The metric must be one of {sorted(METRICS)}. Got {metric!r} instead."
        ) from None


#: The CRD's pattern of every duration field (``spec.data.current.window`` etc.).
DURATION_PATTERN: Final = "^[0-9]+[smhd]$"
_DURATION_RE: Final = re.compile(DURATION_PATTERN)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Return the seconds of a duration such as ``"90s"``, ``"15m"``, ``"1h"`` or ``"7d"``.

    The one duration parser of modelwatch (operator and monitor image).

    >>> parse_duration("1h"), parse_duration("7d")
    (3600.0, 604800.0)
    """
    match = _DURATION_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ContractError(
            f"The duration must be a number followed by s, m, h or d. Got {text!r} instead."
        )
    return float(int(text.strip()[:-1]) * _UNIT_SECONDS[text.strip()[-1]])


def parse_timestamp(text: str, name: str) -> dt.datetime:
    """Return the time of an RFC 3339 string such as ``"2026-11-29T12:00:00Z"``, aware.

    The one timestamp parser of the command lines (``--serving-since``, ``--since``).
    A ``Z`` or an offset is kept; a time without one is UTC. Raise :class:`ContractError`
    naming ``name`` (the option or field) when ``text`` is not a time.

    >>> parse_timestamp("2026-11-29T12:00:00Z", "--since").isoformat()
    '2026-11-29T12:00:00+00:00'
    >>> parse_timestamp("2026-11-29T13:00:00+01:00", "--since").isoformat()
    '2026-11-29T13:00:00+01:00'
    """
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        raise ContractError(
            f"The '{name}' parameter must be an RFC 3339 time such as 2026-11-29T12:00:00Z. "
            f"Got {text!r} instead."
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


#: A prediction log partition older than this many windows is deleted, unless
#: ``spec.data.current.retention`` says otherwise.
RETENTION_WINDOWS: Final = 4


# ---------------------------------------------------------------------------
# Promotion: the one decision, made by the retrain Job, recorded by the operator
# ---------------------------------------------------------------------------

PROMOTE_FIRST_VERSION: Final = "FirstVersion"
PROMOTE_CHALLENGER_BETTER: Final = "ChallengerBetter"
PROMOTE_BELOW_MIN_IMPROVEMENT: Final = "BelowMinImprovement"
PROMOTE_CHAMPION_UNUSABLE: Final = "ChampionUnusable"
PROMOTE_SCORE_UNDEFINED: Final = "ChallengerScoreUndefined"


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


# ---------------------------------------------------------------------------
# Job config
# ---------------------------------------------------------------------------
#
# The document mounted into every job pod:
#
#   {
#     "schema": 1,
#     "monitor": {"name": "iris", "namespace": "default", "uid": "..."},
#     "spec": { ...the ModelMonitor spec, defaults applied... }
#   }
#
# The spec keys are the CRD's camelCase field names; :class:`Spec` below is its typed
# form, with every default in one place (field ``fooBar`` is attribute ``foo_bar``).
# :func:`parse_job_config` turns the document into a :class:`JobConfig` at the
# boundary; code past it reads attributes, never raw mappings.

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

_DURATION: Final = {"duration": True}

REASON_NO_DATA: Final = "NoData"
# The version that serves has not yet served spec.data.current.minRows rows in the window:
# no verdict yet. A check result, not a failure (ok = true, exit code 0).
REASON_AWAITING_TRAFFIC: Final = "AwaitingTraffic"
DEFAULT_MIN_ROWS: Final = 100

# Check arguments the operator adds to every check Job: the version that serves
# (status.currentVersion) and when it began serving (status.servingSince, RFC 3339).
ARG_SERVING_VERSION: Final = "--serving-version"
ARG_SERVING_SINCE: Final = "--serving-since"


# A sharded check (spec.check.parallelism > 1) runs as an Indexed Job: each pod sketches
# its share of the window (JOB_COMPLETION_INDEX, set by Kubernetes) into the store under
# shards_dir(store, model, run), the run being the Job's uid (MODELWATCH_SHARD_RUN, from
# the pod's label); the pod of index 0 plans the shares, merges and carries the result.
ARG_SHARDS: Final = "--shards"
ENV_SHARD_INDEX: Final = "JOB_COMPLETION_INDEX"
ENV_SHARD_RUN: Final = "MODELWATCH_SHARD_RUN"
SHARD_RESULT_INDEX: Final = "0"
MAX_PARALLELISM: Final = 64


@dataclass(frozen=True)
class FeatureSpec:
    """``spec.model.features[]``: a feature and its type."""

    name: str
    type: FeatureType


@dataclass(frozen=True)
class ModelSpec:
    """``spec.model``.

    ``id_column`` joins the predictions with the labels: required when
    ``spec.data.labels`` is set, never guessed.
    """

    name: str
    target: str
    task: Task = "classification"
    id_column: str | None = None
    prediction_column: str = "prediction"
    timestamp_column: str = "timestamp"
    features: tuple[FeatureSpec, ...] = ()


@dataclass(frozen=True)
class ReferenceSpec:
    """``spec.data.reference``."""

    uri: str


@dataclass(frozen=True)
class CurrentSpec:
    """``spec.data.current``; ``uri`` None means the store's prediction log."""

    uri: str | None = None
    window: str = field(default="7d", metadata=_DURATION)
    retention: str | None = field(default=None, metadata=_DURATION)
    min_rows: int = field(default=DEFAULT_MIN_ROWS, metadata={"minimum": 1})

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window)

    @property
    def retention_seconds(self) -> float:
        """How long prediction logs are kept: ``retention``, else 4 windows."""
        if self.retention is not None:
            return parse_duration(self.retention)
        return RETENTION_WINDOWS * self.window_seconds


@dataclass(frozen=True)
class LabelsSpec:
    """``spec.data.labels``; ``id_column`` None means ``spec.model.idColumn``."""

    uri: str
    id_column: str | None = None


@dataclass(frozen=True)
class DataSpec:
    """``spec.data``."""

    reference: ReferenceSpec
    current: CurrentSpec = field(default_factory=CurrentSpec)
    labels: LabelsSpec | None = None


@dataclass(frozen=True)
class VolumeSpec:
    """``spec.store.volume``."""

    claim_name: str
    mount_path: str = "/store"


@dataclass(frozen=True)
class CredentialsSpec:
    """``spec.store.credentials``: the Secret holding the object store's key pair.

    Only the Secret's name and key names are in the spec (and so in the job ConfigMap);
    the operator hands the values to the job pods as ``secretKeyRef`` environment
    variables (:data:`ENV_S3_ACCESS_KEY_ID`, :data:`ENV_S3_SECRET_ACCESS_KEY`).
    """

    secret_name: str
    access_key_id_key: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_key: str = "AWS_SECRET_ACCESS_KEY"


@dataclass(frozen=True)
class StoreSpec:
    """``spec.store``. ``endpoint`` is an S3-compatible server's URL (none for AWS S3)."""

    uri: str
    volume: VolumeSpec | None = None
    endpoint: str | None = None
    credentials: CredentialsSpec | None = None


@dataclass(frozen=True)
class CheckSpec:
    """``spec.check``: how a check runs.

    ``parallelism`` N > 1 splits each check across N pods of an Indexed Job: each sketches
    its share of the window's files, the pod of index 0 merges the sketches and decides.
    The verdicts are those of one pod streaming the window (KLL sketches merge).
    """

    parallelism: int = field(default=1, metadata={"minimum": 1, "maximum": MAX_PARALLELISM})


@dataclass(frozen=True)
class DriftSpec:
    """``spec.drift``. ``min_effect_size`` 0.02 is a KS distance of 0.02: a mean shift of
    about 0.05 standard deviations of a normal feature (see ``verdicts``)."""

    numeric_test: NumericTest = "ks"
    categorical_test: CategoricalTest = "chi2"
    p_value_threshold: float = 0.05
    correction: Correction = field(default="holm", metadata={"aliases": CORRECTION_ALIASES})
    min_effect_size: float = 0.02
    drift_share_threshold: float = 0.5


@dataclass(frozen=True)
class EstimateSpec:
    """``spec.performance.estimate``: performance estimated before labels arrive.

    ``trigger`` lets an estimated drop beyond ``maxDegradation`` (its whole band) count
    as a violation for the retrain policy.
    """

    enabled: bool = True
    trigger: bool = False


@dataclass(frozen=True)
class PerformanceSpec:
    """``spec.performance``; ``metric`` None means the task's default."""

    metric: PerformanceMetric | None = None
    max_degradation: float = 0.1
    min_labeled_rows: int = 50
    baseline: float | None = None
    estimate: EstimateSpec = field(default_factory=EstimateSpec)


@dataclass(frozen=True)
class TriggersSpec:
    """``spec.retrain.triggers``: retrain after ``violations`` of the last ``window`` checks."""

    on_drift: bool = True
    on_degradation: bool = True
    violations: int = 1
    window: int = 1


@dataclass(frozen=True)
class AutomlSpec:
    """``spec.retrain.automl``."""

    time_budget_seconds: int = 60
    metric: str = "auto"
    estimators: tuple[str, ...] = ("lgbm", "rf", "extra_tree")
    seed: int = 0


@dataclass(frozen=True)
class RetrainSpec:
    """``spec.retrain``."""

    enabled: bool = True
    triggers: TriggersSpec = field(default_factory=TriggersSpec)
    cooldown: str = field(default="1h", metadata=_DURATION)
    max_per_day: int = 3
    max_consecutive_losses: int = 3  # the circuit breaker; 0 turns it off
    training_data: TrainingData = "both"
    holdout_fraction: float = 0.2
    min_labeled_rows: int = 50
    min_improvement: float = 0.01
    automl: AutomlSpec = field(default_factory=AutomlSpec)
    resources: dict[str, Any] | None = None


@dataclass(frozen=True)
class DeploymentSpec:
    """``spec.deployment``."""

    name: str
    container: str | None = None
    progress_deadline_seconds: int = 120
    rollback_on_failure: bool = True


@dataclass(frozen=True)
class ImagesSpec:
    """``spec.images``."""

    monitor: str = "modelwatch/monitor:dev"
    pull_policy: PullPolicy = "IfNotPresent"


@dataclass(frozen=True)
class Spec:
    """The ``ModelMonitor`` spec, typed, every default applied."""

    model: ModelSpec
    data: DataSpec
    store: StoreSpec
    schedule: str = "0 * * * *"
    suspend: bool = False
    check: CheckSpec = field(default_factory=CheckSpec)
    drift: DriftSpec = field(default_factory=DriftSpec)
    performance: PerformanceSpec = field(default_factory=PerformanceSpec)
    retrain: RetrainSpec = field(default_factory=RetrainSpec)
    deployment: DeploymentSpec | None = None
    pinned_version: int | None = None
    images: ImagesSpec = field(default_factory=ImagesSpec)

    @property
    def labels_id_column(self) -> str | None:
        """The id column of the labels: ``spec.data.labels.idColumn`` or the model's."""
        labels = self.data.labels
        if labels is None:
            return None
        return labels.id_column or self.model.id_column


@dataclass(frozen=True)
class MonitorRef:
    """Which ModelMonitor a job works for."""

    name: str = ""
    namespace: str = ""
    uid: str = ""


@dataclass(frozen=True)
class JobConfig:
    """The parsed job config document."""

    monitor: MonitorRef
    spec: Spec
    schema: int = SCHEMA_VERSION


def camel(name: str) -> str:
    """Return the CRD's spelling of a field name.

    >>> camel("min_effect_size")
    'minEffectSize'
    """
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


_T = TypeVar("_T")


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _parse_value(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return _parse_value(inner, value, path, meta)
    if value is None:
        raise ContractError(f"{path} is required")
    if dataclasses.is_dataclass(tp):
        return parse_section(tp, value, path)  # type: ignore[arg-type]
    if origin is Literal:
        allowed = get_args(tp)
        value = meta.get("aliases", {}).get(value, value)
        if value not in allowed:
            raise ContractError(
                f"{path} must be one of {', '.join(map(repr, allowed))}; got {value!r} instead"
            )
        return value
    if origin is tuple:
        (item,) = [a for a in get_args(tp) if a is not Ellipsis]
        if not isinstance(value, list | tuple):
            raise ContractError(f"{path} must be a list; got {_describe(value)} instead")
        return tuple(_parse_value(item, v, f"{path}[{i}]", {}) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ContractError(f"{path} must be an object; got {_describe(value)} instead")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ContractError(f"{path} must be true or false; got {_describe(value)} instead")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ContractError(f"{path} must be an integer; got {_describe(value)} instead")
        minimum = meta.get("minimum")
        if minimum is not None and value < minimum:
            raise ContractError(f"{path} must be an integer >= {minimum}; got {value!r} instead")
        maximum = meta.get("maximum")
        if maximum is not None and value > maximum:
            raise ContractError(f"{path} must be an integer <= {maximum}; got {value!r} instead")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ContractError(f"{path} must be a number; got {_describe(value)} instead")
        if not math.isfinite(value):
            raise ContractError(f"{path} must be a finite number; got {value!r} instead")
        return float(value)
    if tp is str:
        if not isinstance(value, str) or not value:
            raise ContractError(
                f"{path} must be a non-empty string; got {_describe(value)} instead"
            )
        if meta.get("duration"):
            try:
                parse_duration(value)
            except ContractError:
                raise ContractError(
                    f"{path} must be a number followed by s, m, h or d (e.g. '7d'); "
                    f"got {value!r} instead"
                ) from None
        return value
    raise TypeError(f"no parser for {tp!r} at {path}")  # pragma: no cover - a contract bug


def parse_section(cls: type[_T], doc: Any, path: str) -> _T:
    """Parse one spec object (camelCase keys) into dataclass ``cls``; raise ContractError.

    A missing key takes the field's default; a key the class does not know is ignored
    (the API server prunes those anyway).
    """
    if not isinstance(doc, Mapping):
        raise ContractError(f"{path} must be an object; got {_describe(doc)} instead")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = camel(f.name)
        sub = f"{path}.{key}"
        if key not in doc or doc[key] is None:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ContractError(f"{sub} is required")
            continue
        kwargs[f.name] = _parse_value(hints[f.name], doc[key], sub, f.metadata)
    return cls(**kwargs)


def parse_field(cls: type[Any], name: str, value: Any, path: str) -> Any:
    """Check ``value`` as the spec checks field ``name`` of ``cls``: its type and bounds.

    For a command-line option that stands in for one spec field (``--min-rows`` for
    ``spec.data.current.minRows``): the same check, a :class:`ContractError` naming ``path``.

    >>> parse_field(CurrentSpec, "min_rows", 10, "--min-rows")
    10
    >>> parse_field(CurrentSpec, "min_rows", 0, "--min-rows")
    Traceback (most recent call last):
    ...
    modelwatch_monitor.contract.ContractError: --min-rows must be an integer >= 1; got 0 instead
    """
    (spec_field,) = [f for f in dataclasses.fields(cls) if f.name == name]
    hint = typing.get_type_hints(cls)[name]
    return _parse_value(hint, value, path, spec_field.metadata)


def parse_spec(spec: Any) -> Spec:
    """Parse and check a ``ModelMonitor`` spec; raise :class:`ContractError` naming the field."""
    parsed = parse_section(Spec, spec, "spec")
    model = parsed.model
    if not _NAME_RE.match(model.name):
        raise ContractError(f"spec.model.name must be a DNS-1123 label; got {model.name!r} instead")
    if parsed.data.labels is not None and not model.id_column:
        raise ContractError(
            "spec.model.idColumn is required when spec.data.labels is set: it names the "
            "column that joins each prediction with its label"
        )
    if any(f.name == model.target for f in model.features):
        raise ContractError("spec.model.target must not be listed in spec.model.features")
    metric = parsed.performance.metric
    if metric is not None and METRICS[metric][0] != model.task:
        raise ContractError(
            f"spec.performance.metric {metric!r} does not suit spec.model.task {model.task!r}"
        )
    return parsed


def build_job_config(
    *, name: str, namespace: str, spec: dict[str, Any], uid: str = ""
) -> dict[str, Any]:
    """Return the job config document for one ModelMonitor."""
    return {
        "schema": SCHEMA_VERSION,
        "monitor": {"name": name, "namespace": namespace, "uid": uid},
        "spec": spec,
    }


def parse_job_config(text: str | bytes) -> JobConfig:
    """Parse and validate a job config document; raise :class:`ContractError`."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"job config is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ContractError("job config must be a JSON object")
    schema = doc.get("schema")
    if schema != SCHEMA_VERSION:
        raise ContractError(
            f"job config schema {schema!r} is not supported; this image reads schema "
            f"{SCHEMA_VERSION}"
        )
    if not isinstance(doc.get("spec"), dict):
        raise ContractError("job config has no 'spec' object")
    ref = doc.get("monitor") or {}
    if not isinstance(ref, dict):
        raise ContractError("job config 'monitor' must be an object")
    monitor = MonitorRef(
        name=str(ref.get("name") or ""),
        namespace=str(ref.get("namespace") or ""),
        uid=str(ref.get("uid") or ""),
    )
    return JobConfig(monitor=monitor, spec=parse_spec(doc["spec"]), schema=SCHEMA_VERSION)


# ---------------------------------------------------------------------------
# Job result
# ---------------------------------------------------------------------------
#
# Every result carries: schema, kind ("check" | "retrain"), ok (bool), message (str).
# A failed job (ok = false) also carries reason, a CamelCase word that the operator
# copies verbatim into a condition (e.g. "DataError", "ConfigError", "NotEnoughLabels").
# A check whose window is empty (no traffic) fails with REASON_NO_DATA; the operator shows
# it as phase NoData rather than Failed.
#
# check, ok = true:
#   reportId, reportUri, datasetDrift (bool), driftShare (float), nDrifted, nFeatures,
#   topFeatures: [{name, test, statistic, pValue}]  (at most 5, most drifted first),
#   qualityFindings (int), quality: [str] (at most 5),
#   metric: {name, value, baseline, baselineSource, relativeChange, degraded,
#            undefinedReason} | null   (degraded null + undefinedReason "NoBaseline"
#                                       when the metric has no baseline),
#   estimatedMetric: {name, estimated: true, value, lower, upper, level, baseline,
#            baselineSource, relativeChange, degraded, overridden, rows,
#            undefinedReason} | null   (estimated without labels; overridden once the
#                                       realized metric is defined),
#   servingVersion: the version judged (int) | null,
#   rows: {reference, current (rows the judged version served), window (all rows), labeled}
#
# check, ok = true, reason = REASON_AWAITING_TRAFFIC (no verdict, no report):
#   message, servingVersion, rows: {reference, current, window, needed}
#
# retrain, ok = true:
#   version (int), sha256, metric (name), greaterIsBetter (bool), challenger: {score},
#   champion: {version, score} | null, promote (bool), reason, message, reportId
#   (promote/reason/message are decide_promotion's; the operator records them as they are)
#
# Full detail goes to the store; this summary is at most MAX_RESULT_BYTES. No number in
# it is NaN or infinite: encode_result turns those into null and lists each path under
# "notFinite" (the API server refuses NaN in a status patch, and JSON has no spelling
# for it).


class MetricSummary(TypedDict, total=False):
    """``metric`` of a check result."""

    name: str
    value: float | None
    baseline: float | None
    baselineSource: str | None
    relativeChange: float | None
    degraded: bool | None
    undefinedReason: str | None


class FeatureSummary(TypedDict, total=False):
    """One of ``topFeatures`` of a check result."""

    name: str
    test: str
    statistic: float | None
    pValue: float | None


class RowCounts(TypedDict, total=False):
    reference: int
    current: int
    labeled: int


class CheckResult(TypedDict, total=False):
    """The result of ``modelwatch check``."""

    schema: int
    kind: Literal["check"]
    ok: bool
    reason: str
    message: str
    reportId: str
    reportUri: str
    datasetDrift: bool
    driftShare: float | None
    nDrifted: int
    nFeatures: int
    topFeatures: list[FeatureSummary]
    qualityFindings: int
    quality: list[str]
    metric: MetricSummary | None
    estimatedMetric: dict[str, Any] | None
    servingVersion: int | None
    rows: RowCounts
    notFinite: list[str]


class ScoreSummary(TypedDict, total=False):
    version: int
    score: float | None


class RetrainResult(TypedDict, total=False):
    """The result of ``modelwatch retrain``."""

    schema: int
    kind: Literal["retrain"]
    ok: bool
    reason: str
    message: str
    version: int
    sha256: str
    metric: str
    greaterIsBetter: bool
    challenger: ScoreSummary
    champion: ScoreSummary | None
    promote: bool
    reportId: str
    notFinite: list[str]


def _without_non_finite(value: Any, path: str, found: list[str]) -> Any:
    """Return ``value`` with every NaN or infinite float replaced by None; note each path."""
    if isinstance(value, float) and not math.isfinite(value):
        found.append(f"{path}={value!r}")
        return None
    if isinstance(value, dict):
        return {
            k: _without_non_finite(v, f"{path}.{k}" if path else str(k), found)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_without_non_finite(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return _without_non_finite(value.item(), path, found)
    return value


def sanitize_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``result`` with no NaN or infinity in it, each replaced by null.

    The paths replaced are listed under ``notFinite``; an undefined metric value gets
    an ``undefinedReason`` when it had none.

    >>> sanitize_result({"kind": "check", "driftShare": float("nan")})
    {'kind': 'check', 'driftShare': None, 'notFinite': ['driftShare=nan']}
    """
    found: list[str] = []
    doc = _without_non_finite(dict(result), "", found)
    if found:
        doc["notFinite"] = [*(doc.get("notFinite") or []), *found]
        metric = doc.get("metric")
        if (
            isinstance(metric, dict)
            and metric.get("value") is None
            and any(p.startswith("metric.value=") for p in found)
        ):
            metric["undefinedReason"] = metric.get("undefinedReason") or "the value is not finite"
    return doc  # type: ignore[no-any-return]


def encode_result(result: Mapping[str, Any]) -> str:
    """Serialise a result, trimming list fields until it fits in MAX_RESULT_BYTES.

    This is where every result is written: non-finite numbers become null here.
    """
    doc = sanitize_result({"schema": SCHEMA_VERSION, **result})
    if doc.get("kind") not in RESULT_KINDS:
        raise ContractError(f"result kind must be one of {RESULT_KINDS}; got {doc.get('kind')!r}")

    def dump() -> str:
        return json.dumps(doc, separators=(",", ":"), sort_keys=True, default=str, allow_nan=False)

    text = dump()
    trimmable = ("quality", "topFeatures", "notFinite")
    while len(text.encode()) > MAX_RESULT_BYTES:
        lists = [k for k in trimmable if isinstance(doc.get(k), list) and doc[k]]
        if lists:
            doc[lists[0]] = doc[lists[0]][:-1]
        elif len(str(doc.get("message", ""))) > 64:
            doc["message"] = str(doc["message"])[: len(str(doc["message"])) // 2] + "..."
        else:
            raise ContractError("result does not fit in the termination message")
        text = dump()
    return text


def write_result(result: Mapping[str, Any], path: str = TERMINATION_MESSAGE_PATH) -> str:
    """Write the encoded result to the termination-message path and return it."""
    text = encode_result(result)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        # Outside a pod the path may not exist; stdout still carries the result.
        pass
    return text


def _finite_float(text: str) -> float | None:
    """Parse a JSON number; None when it overflows (``1e999``)."""
    value = float(text)
    return value if math.isfinite(value) else None


def parse_result(text: str | None) -> dict[str, Any]:
    """Parse a termination message; raise :class:`ContractError` when it is not a result."""
    if not text:
        raise ContractError("the job left no termination message")
    try:
        # NaN and Infinity are not JSON; a result that holds them anyway reads them as null
        # (the API server refuses them in a status patch).
        doc = json.loads(text, parse_constant=lambda _: None, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        # FallbackToLogsOnError: the message is the tail of the log.
        raise ContractError(f"the job did not write a result: {text.strip()[-300:]}") from exc
    if not isinstance(doc, dict) or doc.get("kind") not in RESULT_KINDS:
        raise ContractError("the termination message is not a modelwatch result")
    if doc.get("schema") != SCHEMA_VERSION:
        raise ContractError(f"result schema {doc.get('schema')!r} is not supported")
    return doc


# ---------------------------------------------------------------------------
# Result validation (the operator's side of the boundary)
# ---------------------------------------------------------------------------
#
# The operator folds a result into status only when validate_result finds no problem;
# otherwise the Job counts as failed with reason REASON_INVALID_RESULT and the problems,
# each "<field>: <why>", as its message. Numbers must be finite (json reads NaN and
# Infinity), integers fit in int64, the sha256 is 64 lowercase hex digits, reasons are
# the known ones below, and strings are bounded. Over-long strings are rejected, not
# truncated: encode_result never writes one, so a result that does is not trusted at all.
# Fields this table does not name are allowed (a newer image may add some) but still
# pass the finite-number, string-length and nesting bounds.

REASON_INVALID_RESULT: Final = "InvalidResult"
CHECK_FAILURE_REASONS: Final = frozenset(
    {"CheckFailed", "ConfigError", "DataError", REASON_NO_DATA}
)
RETRAIN_FAILURE_REASONS: Final = frozenset(
    {"ConfigError", "DataError", "NotEnoughLabels", "StoreError", "TrainingFailed", "VersionExists"}
)
PROMOTION_REASONS: Final = frozenset(
    {"BelowMinImprovement", "ChallengerBetter", "ChampionUnusable", "FirstVersion"}
)
MAX_MESSAGE_CHARS: Final = MAX_RESULT_BYTES  # ``message``: at most the whole result
MAX_STRING_CHARS: Final = 1024  # any other string
MAX_ITEMS: Final = 64  # entries of any list or object
MAX_DEPTH: Final = 4  # nesting below the result object
MAX_LISTED: Final = 5  # topFeatures, quality
_INT64: Final = 2**63

SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
REPORT_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
IDENTIFIER_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

Problems = list[str]
_Check = Callable[[Any, str], Problems]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bool(value: Any, path: str) -> Problems:
    return [] if isinstance(value, bool) else [f"{path}: must be true or false, got {_show(value)}"]


def _integer(minimum: int) -> _Check:
    def check(value: Any, path: str) -> Problems:
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: must be an integer, got {_show(value)}"]
        return [] if value >= minimum else [f"{path}: must be >= {minimum}, got {value}"]

    return check


def _number(low: float | None = None, high: float | None = None) -> _Check:
    def check(value: Any, path: str) -> Problems:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{path}: must be a number, got {_show(value)}"]
        if not math.isfinite(value):
            return []  # reported once, by _bounds
        if (low is not None and value < low) or (high is not None and value > high):
            return [f"{path}: must be in [{low}, {high}], got {value}"]
        return []

    return check


def _string(pattern: re.Pattern[str] | None = None) -> _Check:
    def check(value: Any, path: str) -> Problems:
        if not isinstance(value, str):
            return [f"{path}: must be a string, got {_show(value)}"]
        if pattern is not None and not pattern.fullmatch(value):
            return [f"{path}: must match {pattern.pattern}, got {_show(value)}"]
        return []

    return check


def _one_of(choices: frozenset[str]) -> _Check:
    def check(value: Any, path: str) -> Problems:
        if value in choices:
            return []
        return [f"{path}: must be one of {', '.join(sorted(choices))}, got {_show(value)}"]

    return check


def _nullable(inner: _Check) -> _Check:
    def check(value: Any, path: str) -> Problems:
        return [] if value is None else inner(value, path)

    return check


def _list_of(inner: _Check, *, max_items: int) -> _Check:
    def check(value: Any, path: str) -> Problems:
        if not isinstance(value, list):
            return [f"{path}: must be a list, got {_show(value)}"]
        if len(value) > max_items:
            return [f"{path}: must hold at most {max_items} items, got {len(value)}"]
        return [p for i, item in enumerate(value) for p in inner(item, f"{path}[{i}]")]

    return check


def _values_of(inner: _Check) -> _Check:
    def check(value: Any, path: str) -> Problems:
        if not isinstance(value, dict):
            return [f"{path}: must be an object, got {_show(value)}"]
        return [p for key, item in value.items() for p in inner(item, f"{path}.{key}")]

    return check


def _object(fields: Mapping[str, tuple[bool, _Check]]) -> _Check:
    """Check the named fields of an object; ``fields`` maps a key to (required, check)."""

    def check(value: Any, path: str) -> Problems:
        if not isinstance(value, dict):
            return [f"{path or 'result'}: must be an object, got {_show(value)}"]
        problems: Problems = []
        for key, (required, inner) in fields.items():
            where = f"{path}.{key}" if path else key
            if key not in value:
                if required:
                    problems.append(f"{where}: is required")
                continue
            problems += inner(value[key], where)
        return problems

    return check


def _bounds(value: Any, path: str, depth: int) -> Problems:
    """Bounds every value obeys: finite numbers, int64, bounded strings, lists and nesting."""
    where = path or "result"
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, float):
        return [] if math.isfinite(value) else [f"{where}: must be a finite number, got {value}"]
    if isinstance(value, int):
        return [] if -_INT64 <= value < _INT64 else [f"{where}: does not fit in 64 bits"]
    if isinstance(value, str):
        limit = MAX_MESSAGE_CHARS if path == "message" else MAX_STRING_CHARS
        if len(value) > limit:
            return [f"{where}: must be at most {limit} characters, got {len(value)}"]
        return []
    if isinstance(value, list | dict):
        if depth >= MAX_DEPTH:
            return [f"{where}: nests deeper than {MAX_DEPTH} levels"]
        if len(value) > MAX_ITEMS:
            return [f"{where}: must hold at most {MAX_ITEMS} entries, got {len(value)}"]
        if isinstance(value, list):
            items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
        else:
            items = [(f"{path}.{key}" if path else str(key), item) for key, item in value.items()]
        return [p for sub, item in items for p in _bounds(item, sub, depth + 1)]
    return [f"{where}: has unsupported type {type(value).__name__}"]


_SCORE = _nullable(_number())
_CHECK_OK = _object(
    {
        "reportId": (True, _string(REPORT_ID_RE)),
        "servingVersion": (False, _nullable(_integer(1))),
        "reportUri": (False, _nullable(_string())),
        "datasetDrift": (True, _bool),
        "driftShare": (True, _number(0.0, 1.0)),
        "nDrifted": (True, _integer(0)),
        "nFeatures": (True, _integer(0)),
        "topFeatures": (
            False,
            _list_of(
                _object(
                    {
                        "name": (True, _string()),
                        "test": (True, _string(IDENTIFIER_RE)),
                        "statistic": (False, _SCORE),
                        "pValue": (False, _nullable(_number(0.0, 1.0))),
                    }
                ),
                max_items=MAX_LISTED,
            ),
        ),
        "qualityFindings": (False, _integer(0)),
        "quality": (False, _list_of(_string(), max_items=MAX_LISTED)),
        "metric": (
            False,
            _nullable(
                _object(
                    {
                        "name": (True, _string(IDENTIFIER_RE)),
                        "value": (False, _SCORE),
                        "baseline": (False, _SCORE),
                        "relativeChange": (False, _SCORE),
                        "baselineSource": (False, _nullable(_string(IDENTIFIER_RE))),
                        # null when undefined (no baseline, too few labels): no verdict
                        "degraded": (False, _nullable(_bool)),
                        "undefinedReason": (False, _nullable(_string())),
                    }
                )
            ),
        ),
        "rows": (False, _nullable(_values_of(_nullable(_integer(0))))),
        "message": (False, _string()),
    }
)
# Too little of the serving version's traffic: no verdict and no report, only counts.
_CHECK_AWAITING = _object(
    {
        "reason": (True, _one_of(frozenset({REASON_AWAITING_TRAFFIC}))),
        "servingVersion": (False, _nullable(_integer(1))),
        "rows": (False, _nullable(_values_of(_nullable(_integer(0))))),
        "message": (False, _string()),
    }
)
_CHECK_FAILED = _object(
    {"reason": (True, _one_of(CHECK_FAILURE_REASONS)), "message": (False, _string())}
)
_REPORT_REF = _nullable(_string(re.compile(f"^$|{REPORT_ID_RE.pattern}")))
_RETRAIN_OK = _object(
    {
        "version": (True, _integer(1)),
        "sha256": (True, _string(SHA256_RE)),
        "metric": (True, _string(IDENTIFIER_RE)),
        "challenger": (True, _object({"score": (False, _SCORE)})),
        "champion": (
            False,
            _nullable(_object({"version": (True, _integer(1)), "score": (False, _SCORE)})),
        ),
        "promote": (True, _bool),
        "reason": (True, _one_of(PROMOTION_REASONS)),
        "message": (False, _string()),
        "improvement": (False, _SCORE),
        "minImprovement": (False, _SCORE),
        "greaterIsBetter": (False, _bool),
        "reportId": (False, _REPORT_REF),
        "bestEstimator": (False, _nullable(_string(IDENTIFIER_RE))),
        "rows": (False, _nullable(_values_of(_nullable(_integer(0))))),
        "uri": (False, _nullable(_string())),
        "seconds": (False, _nullable(_number(0.0))),
    }
)
_RETRAIN_FAILED = _object(
    {
        "version": (False, _integer(1)),
        "reason": (True, _one_of(RETRAIN_FAILURE_REASONS)),
        "message": (False, _string()),
        "reportId": (False, _REPORT_REF),
        "seconds": (False, _nullable(_number(0.0))),
    }
)
_RESULT_RULES: Final = {
    ("check", True): _CHECK_OK,
    ("check", False): _CHECK_FAILED,
    ("retrain", True): _RETRAIN_OK,
    ("retrain", False): _RETRAIN_FAILED,
}


def validate_result(doc: Mapping[str, Any]) -> Problems:
    """Return the problems of a parsed result, each ``"<field>: <why>"``; empty when valid.

    Pure: the operator calls it on :func:`parse_result`'s output before any field reaches
    status, and treats a result with problems as a failed Job (``InvalidResult``).

    >>> validate_result({"schema": 1, "kind": "retrain", "ok": False, "reason": "DataError"})
    []
    >>> validate_result({"schema": 1, "kind": "check", "ok": True, "reportId": "r1",
    ...     "datasetDrift": False, "driftShare": float("nan"), "nDrifted": 0, "nFeatures": 2})
    ['driftShare: must be a finite number, got nan']
    """
    if not isinstance(doc, dict):
        return [f"result: must be an object, got {_show(doc)}"]
    problems = _bounds(doc, "", 0)
    if doc.get("schema") != SCHEMA_VERSION:
        problems.append(f"schema: must be {SCHEMA_VERSION}, got {_show(doc.get('schema'))}")
    kind, ok = doc.get("kind"), doc.get("ok")
    if kind not in RESULT_KINDS:
        return [*problems, f"kind: must be one of {', '.join(RESULT_KINDS)}, got {_show(kind)}"]
    if not isinstance(ok, bool):
        return [*problems, *_bool(ok, "ok")]
    rule = _RESULT_RULES[(str(kind), ok)]
    if kind == "check" and ok and doc.get("reason") == REASON_AWAITING_TRAFFIC:
        rule = _CHECK_AWAITING
    return [*problems, *rule(doc, "")]


# ---------------------------------------------------------------------------
# Store layout
# ---------------------------------------------------------------------------


def _join(*parts: str) -> str:
    head, *rest = parts
    return "/".join([head.rstrip("/"), *(p.strip("/") for p in rest)])


def model_dir(store: str, model: str) -> str:
    return _join(store, model)


def versions_dir(store: str, model: str) -> str:
    return _join(store, model, "versions")


def version_dir(store: str, model: str, version: int) -> str:
    return _join(store, model, "versions", str(int(version)))


def reports_dir(store: str, model: str) -> str:
    return _join(store, model, "reports")


def report_dir(store: str, model: str, report_id: str) -> str:
    return _join(store, model, "reports", report_id)


def reference_profile_path(store: str, model: str) -> str:
    return _join(store, model, "profiles", "reference.json")


def shards_dir(store: str, model: str, run: str | None = None) -> str:
    """The folder of a sharded check's plan and shard files (of all runs without ``run``)."""
    return _join(store, model, "shards", run) if run else _join(store, model, "shards")


def predictions_dir(store: str, model: str) -> str:
    return _join(store, model, "predictions")


def predictions_partition(store: str, model: str, date: str) -> str:
    """Return the partition folder for one day, ``date`` as ``YYYY-MM-DD``."""
    return _join(store, model, "predictions", f"date={date}")


def version_profile_path(store: str, model: str, version: int) -> str:
    """The profile of the data version N was trained on (the reference once it serves)."""
    return _join(version_dir(store, model, version), PROFILE_FILE)


PROFILE_FILE: Final = "profile.json"
MODEL_FILE: Final = "model.joblib"
METADATA_FILE: Final = "metadata.json"
REPORT_JSON: Final = "report.json"
REPORT_HTML: Final = "report.html"

# Prediction logs written by the model server (``modelwatch serve``) under
# predictions_partition(store, model, date)/<uuid>.parquet. Besides the feature columns
# (and the model's idColumn when requests carry it) each row holds these columns; the
# check engine reads the files as "current" data and should not treat them as features.
LOG_PREDICTION: Final = "prediction"
LOG_PROBA_PREFIX: Final = "proba_"
LOG_REQUEST_ID: Final = "request_id"
LOG_TIMESTAMP: Final = "timestamp"
LOG_MODEL_VERSION: Final = "model_version"
LOG_META_COLUMNS: Final = (LOG_PREDICTION, LOG_REQUEST_ID, LOG_TIMESTAMP, LOG_MODEL_VERSION)


def is_log_meta_column(name: str) -> bool:
    """Return True when ``name`` is a column the model server adds to its prediction logs."""
    return name in LOG_META_COLUMNS or name.startswith(LOG_PROBA_PREFIX)
