"""A ``/predict`` request's records: checked into model inputs, and the columns logged.

A body that is not a JSON list of records (or ``{"records": [...]}``), too many records,
a missing column or a value of the wrong type is a :class:`BadRequest` naming the column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from modelwatch_monitor.serve.prediction_log import to_arrow
from modelwatch_monitor.serve.state import ServerState
from modelwatch_monitor.store.feature_schema import Feature, SchemaError, frames_from_records


class BadRequest(Exception):
    """A request the server cannot predict on; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.column = column


def records_of(body: Any) -> list[dict[str, Any]]:
    records = body.get("records") if isinstance(body, dict) else body
    if not isinstance(records, list):
        raise BadRequest(422, 'the body must be a JSON list of records or {"records": [...]}')
    if not records:
        raise BadRequest(422, "no records to predict")
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise BadRequest(422, f"record {i} is not a JSON object")
    return records


def id_values(records: list[dict[str, Any]], column: str) -> Any:
    import numpy as np

    values = [r.get(column) for r in records]
    if all(type(v) is int for v in values):
        try:
            return np.asarray(values, dtype=np.int64)
        except OverflowError:
            return np.asarray(values, dtype=object)
    if all(v is None or type(v) is int for v in values):
        return np.asarray(values, dtype=object)
    return np.asarray([None if v is None else str(v) for v in values], dtype=object)


def log_columns(
    state: ServerState, raw: dict[str, Any], records: list[dict[str, Any]], received: datetime
) -> dict[str, Any]:
    """Return the columns to log: the raw inputs, the id column, the model's time column.

    The request time is always logged as ``timestamp``; when the model names another
    timestamp column, that column is logged too: from the records when they carry it,
    else the request time, so a check can window the logs by it.
    """
    import numpy as np

    columns = {name: to_arrow(values) for name, values in raw.items()}
    if state.id_column and any(state.id_column in r for r in records):
        columns[state.id_column] = to_arrow(id_values(records, state.id_column))
    ts = state.timestamp_column
    if ts:
        now = np.datetime64(received.replace(tzinfo=None), "us")
        if any(ts in r for r in records):
            import pandas as pd

            parsed = pd.to_datetime(
                pd.Series([r.get(ts) for r in records], dtype=object), utc=True, errors="coerce"
            )
            stamps = parsed.dt.tz_convert(None).to_numpy().astype("datetime64[us]")
            columns[ts] = to_arrow(np.where(np.isnat(stamps), now, stamps))
        else:
            columns[ts] = to_arrow(np.full(len(records), now))
    return columns


def read_records(
    body: bytes, schema: Sequence[Feature], *, max_rows: int
) -> tuple[list[dict[str, Any]], Any, dict[str, Any]]:
    """Parse and check a request body against the model's ``schema``.

    Returns
    -------
    records : list of dict
        The records as sent.
    X : DataFrame
        The model's inputs.
    raw : dict of str to array
        The inputs as sent, for the prediction log.

    Raises
    ------
    BadRequest
        400 for a body that is not JSON, 413 for more than ``max_rows`` records, 422 for
        records that are not the model's.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"the body is not valid JSON: {exc}") from None
    records = records_of(doc)
    if len(records) > max_rows:
        raise BadRequest(413, f"{len(records)} records exceed the limit of {max_rows}")
    try:
        X, raw = frames_from_records(records, schema)
    except SchemaError as exc:
        raise BadRequest(422, str(exc), exc.column) from None
    return records, X, raw
