"""The store layout: where versions, reports, profiles and prediction logs live.

``<model>/versions/<N>/{model.joblib, metadata.json, profile.json}`` (immutable),
``<model>/reports/<id>/{report.json, report.html}``, ``<model>/profiles/reference.json``,
``<model>/predictions/date=YYYY-MM-DD/*.parquet`` and ``<model>/shards/<run>/``.
"""

from __future__ import annotations

from typing import Final


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


__all__ = [
    "LOG_META_COLUMNS",
    "LOG_MODEL_VERSION",
    "LOG_PREDICTION",
    "LOG_PROBA_PREFIX",
    "LOG_REQUEST_ID",
    "LOG_TIMESTAMP",
    "METADATA_FILE",
    "MODEL_FILE",
    "PROFILE_FILE",
    "REPORT_HTML",
    "REPORT_JSON",
    "is_log_meta_column",
    "model_dir",
    "predictions_dir",
    "predictions_partition",
    "reference_profile_path",
    "report_dir",
    "reports_dir",
    "shards_dir",
    "version_dir",
    "version_profile_path",
    "versions_dir",
]
