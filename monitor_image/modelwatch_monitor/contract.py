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
import math
import re
from collections.abc import Callable, Mapping
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
#                      current:   {uri, window, minRows}
#                                 -- default uri: <store>/<model>/predictions
#                      labels:    {uri, idColumn}  -- optional, delayed ground truth
#   spec.store:        uri                         -- path or fsspec URI
#   spec.drift:        numericTest, categoricalTest, pValueThreshold, correction,
#                      minEffectSize, driftShareThreshold
#   spec.performance:  metric, maxDegradation, minLabeledRows, baseline (optional)
#   spec.retrain:      trainingData ("reference" | "recent" | "both"), holdoutFraction,
#                      minLabeledRows, minImprovement,
#                      automl: {timeBudgetSeconds, metric, estimators, seed}

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


REASON_NO_DATA: Final = "NoData"
# The version that serves has not yet served spec.data.current.minRows rows in the window:
# no verdict yet. A check result, not a failure (ok = true, exit code 0).
REASON_AWAITING_TRAFFIC: Final = "AwaitingTraffic"
DEFAULT_MIN_ROWS: Final = 100

# Check arguments the operator adds to every check Job: the version that serves
# (status.currentVersion) and when it began serving (status.servingSince, RFC 3339).
ARG_SERVING_VERSION: Final = "--serving-version"
ARG_SERVING_SINCE: Final = "--serving-since"


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
#   metric: {name, value, baseline, relativeChange, degraded, undefinedReason} | null,
#   servingVersion: the version judged (int) | null,
#   rows: {reference, current (rows the judged version served), window (all rows), labeled}
#
# check, ok = true, reason = REASON_AWAITING_TRAFFIC (no verdict, no report):
#   message, servingVersion, rows: {reference, current, window, needed}
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
                        "degraded": (False, _bool),
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
