"""The JSON documents a check writes and reads, as typed dictionaries.

Their keys are the documents' own (camelCase where the report and the result spell
them so). Typing only: nothing here validates at run time; a document read back from
the store is trusted as far as the code that reads it catches ``KeyError``,
``TypeError`` and ``ValueError``.

- :class:`MetricEntry`: the ``metric`` of the result (and each of the report's
  ``performance.metrics``), from :func:`modelwatch_monitor.check.performance.evaluate`;
- :class:`EstimateEntry`: the estimated metric, from
  :func:`modelwatch_monitor.check.estimation.evaluate_estimate`;
- :class:`PerformanceSection`: the report's ``performance``;
- :class:`ReferencePerformance`: a reference profile's ``performance`` (baselines, the
  calibration of estimated classification metrics, the regression loss model);
- :class:`PlanDoc`, :class:`ShardDoc`, :class:`ColumnState`: the files of a sharded
  check (``plan.json``, ``shard-<i>.json``; see :mod:`modelwatch_monitor.check.sharding`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NotRequired, TypedDict

from modelwatch_monitor.check.drift import FeatureType

#: A document passed through to JSON as it is (a result, a report, a section of one).
Document = dict[str, object]


class MetricEntry(TypedDict):
    """A realized metric judged against its baseline; ``degraded`` None: no verdict."""

    name: str
    value: float | None
    baseline: float | None
    baselineSource: str | None
    relativeChange: float | None
    degraded: bool | None
    undefinedReason: str | None


class EstimateEntry(TypedDict):
    """An estimated metric with its band at ``level``, judged against its baseline."""

    name: str
    estimated: bool
    value: float | None
    lower: float | None
    upper: float | None
    level: float
    baseline: float | None
    baselineSource: str | None
    relativeChange: float | None
    degraded: bool | None
    overridden: bool
    rows: int
    undefinedReason: str | None


class PerformanceSection(TypedDict):
    """The report's ``performance``: the chosen metric and every metric of the task."""

    task: str
    labeled_rows: int
    metric: MetricEntry
    metrics: dict[str, MetricEntry]


class CalibrationMap(TypedDict):
    """One isotonic map: breakpoints ``x`` (raw) to ``y`` (calibrated)."""

    x: list[float]
    y: list[float]


class CalibrationDoc(TypedDict):
    """A profile's ``performance.calibration`` (see ``estimation.Calibration``)."""

    method: str
    classes: list[str]
    rows: int
    maps: list[CalibrationMap]


class LossModelEntry(TypedDict):
    """A profile's ``performance.lossModel``: where the joblib file is, and its sha256."""

    uri: str
    sha256: str
    rows: NotRequired[int]


class ReferencePerformance(TypedDict, total=False):
    """A reference profile's ``performance``; a stored profile may lack any key."""

    task: str
    metrics: dict[str, float]
    calibration: CalibrationDoc
    lossModel: LossModelEntry


#: A shard's share of the window: file -> its row groups (None: all of them).
Parts = dict[str, list[int] | None]


class PlanDoc(TypedDict, total=False):
    """``plan.json``: the plan shard 0 made, or (``ok`` false) why it could not."""

    kind: str
    schema: int
    run: str
    shards: int
    now: str
    files: list[str]
    parts: list[Parts]
    basis: str
    version: int | None
    since: str | None
    types: dict[str, FeatureType]
    referenceRows: int
    ok: bool
    reason: str
    message: str


class ColumnState(TypedDict, total=False):
    """One feature's mergeable state in a shard file (numeric or categorical keys)."""

    type: FeatureType
    dtype: str
    rows: int
    nulls: int
    n: int
    mean: float
    m2: float
    sketch: str
    counts: dict[str, int]


class ShardDoc(TypedDict, total=False):
    """``shard-<i>.json``: one shard's summary, or (``ok`` false) why it failed."""

    kind: str
    schema: int
    run: str
    index: int
    shards: int
    ok: bool
    windowRows: int
    servedRows: int
    byVersion: dict[str, int]
    columns: dict[str, ColumnState]
    seconds: float
    reason: str
    message: str


def section(doc: Mapping[str, object], key: str) -> Mapping[str, object]:
    """The mapping at ``doc[key]``; empty when it is missing or not a mapping.

    >>> section({"rows": {"current": 3}, "mode": "exact"}, "rows")
    {'current': 3}
    >>> section({"mode": "exact"}, "mode")
    {}
    """
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def entries(value: object) -> list[Mapping[str, object]]:
    """The mappings in the list ``value`` (a report's ``features``); empty when it is none.

    >>> entries([{"name": "a"}, 3])
    [{'name': 'a'}]
    """
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, Mapping)]


__all__ = [
    "CalibrationDoc",
    "CalibrationMap",
    "ColumnState",
    "Document",
    "EstimateEntry",
    "LossModelEntry",
    "MetricEntry",
    "Parts",
    "PerformanceSection",
    "PlanDoc",
    "ReferencePerformance",
    "ShardDoc",
    "entries",
    "section",
]
