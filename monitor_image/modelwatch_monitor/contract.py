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
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

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

RESULT_KINDS: Final = ("check", "retrain")

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
# The spec keys are the CRD's camelCase field names (see crds/); the fields the
# monitor image reads are:
#
#   spec.model:        name, task ("classification" | "regression"), target,
#                      idColumn, predictionColumn, timestampColumn,
#                      features: [{name, type: "numeric" | "categorical"}]  (optional)
#   spec.data:         reference: {uri}            -- raw data or a profile JSON
#                      current:   {uri, window}    -- default: <store>/<model>/predictions
#                      labels:    {uri, idColumn}  -- optional, delayed ground truth
#   spec.store:        uri                         -- path or fsspec URI
#   spec.drift:        numericTest, categoricalTest, pValueThreshold, correction,
#                      minEffectSize, driftShareThreshold
#   spec.performance:  metric, maxDegradation, minLabeledRows, baseline (optional),
#                      estimate: {enabled, trigger}
#   spec.retrain:      trainingData ("reference" | "recent" | "both"), holdoutFraction,
#                      minLabeledRows, minImprovement,
#                      automl: {timeBudgetSeconds, metric, estimators, seed}

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


REASON_NO_DATA: Final = "NoData"


class ContractError(ValueError):
    """A config or result document does not follow the contract."""


def build_job_config(
    *, name: str, namespace: str, spec: dict[str, Any], uid: str = ""
) -> dict[str, Any]:
    """Return the job config document for one ModelMonitor."""
    return {
        "schema": SCHEMA_VERSION,
        "monitor": {"name": name, "namespace": namespace, "uid": uid},
        "spec": spec,
    }


def parse_job_config(text: str | bytes) -> dict[str, Any]:
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
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise ContractError("job config has no 'spec' object")
    model = spec.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise ContractError("job config spec.model.name is required")
    if not _NAME_RE.match(model["name"]):
        raise ContractError(
            f"spec.model.name must be a DNS-1123 label; got {model['name']!r} instead"
        )
    task = model.get("task", "classification")
    if task not in ("classification", "regression"):
        raise ContractError(
            f"spec.model.task must be 'classification' or 'regression'; got {task!r} instead"
        )
    store = spec.get("store")
    if not isinstance(store, dict) or not isinstance(store.get("uri"), str):
        raise ContractError("job config spec.store.uri is required")
    return doc


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
#   rows: {reference, current, labeled}
#
# retrain, ok = true:
#   version (int), sha256, metric (name), challenger: {score},
#   champion: {version, score} | null, promote (bool), reason, reportId
#
# Full detail goes to the store; this summary is at most MAX_RESULT_BYTES.


def encode_result(result: dict[str, Any]) -> str:
    """Serialise a result, trimming list fields until it fits in MAX_RESULT_BYTES."""
    doc = {"schema": SCHEMA_VERSION, **result}
    if doc.get("kind") not in RESULT_KINDS:
        raise ContractError(f"result kind must be one of {RESULT_KINDS}; got {doc.get('kind')!r}")
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True, default=str)
    trimmable = ("quality", "topFeatures")
    while len(text.encode()) > MAX_RESULT_BYTES:
        lists = [k for k in trimmable if isinstance(doc.get(k), list) and doc[k]]
        if lists:
            doc[lists[0]] = doc[lists[0]][:-1]
        elif len(str(doc.get("message", ""))) > 64:
            doc["message"] = str(doc["message"])[: len(str(doc["message"])) // 2] + "..."
        else:
            raise ContractError("result does not fit in the termination message")
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True, default=str)
    return text


def write_result(result: dict[str, Any], path: str = TERMINATION_MESSAGE_PATH) -> str:
    """Write the encoded result to the termination-message path and return it."""
    text = encode_result(result)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        # Outside a pod the path may not exist; stdout still carries the result.
        pass
    return text


def parse_result(text: str | None) -> dict[str, Any]:
    """Parse a termination message; raise :class:`ContractError` when it is not a result."""
    if not text:
        raise ContractError("the job left no termination message")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        # FallbackToLogsOnError: the message is the tail of the log.
        raise ContractError(f"the job did not write a result: {text.strip()[-300:]}") from exc
    if not isinstance(doc, dict) or doc.get("kind") not in RESULT_KINDS:
        raise ContractError("the termination message is not a modelwatch result")
    if doc.get("schema") != SCHEMA_VERSION:
        raise ContractError(f"result schema {doc.get('schema')!r} is not supported")
    return doc


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
