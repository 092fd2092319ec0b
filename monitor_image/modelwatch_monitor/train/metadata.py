"""The ``metadata.json`` of a version a retrain publishes, as TypedDicts.

A retrain writes it (:func:`~modelwatch_monitor.train.artifacts.version_metadata`), the
registry adds its own fields when it publishes the version, and a rerun of the same
reservation reads it back (:func:`~modelwatch_monitor.train.results.published`). These
types describe the document; they do not validate one read from the store.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from pydantic import JsonValue

from modelwatch_monitor.store.feature_schema import FeatureDoc
from modelwatch_monitor.train.data import HoldoutInfo, TrainingInfo

#: A class label as JSON holds it.
Label = str | int | float | bool


class Scores(TypedDict):
    """Both models' holdout scores, by metric."""

    challenger: dict[str, float]
    champion: dict[str, float] | None


class ChampionRecord(TypedDict):
    """The version the challenger was compared with."""

    version: int
    score: float | None
    problem: str | None


class FlamlRecord(TypedDict):
    """What the FLAML search found, and what it was allowed."""

    bestEstimator: str
    bestConfig: dict[str, JsonValue]
    bestLoss: float | None
    trials: int
    seconds: float
    timeBudgetSeconds: float
    estimators: list[str]
    seed: int
    nJobs: int


class TrainingRecord(TrainingInfo):
    """The training rows: their provenance, count and fingerprint."""

    rows: int
    fingerprint: str


class HoldoutRecord(HoldoutInfo):
    """The holdout rows: their provenance, count and fingerprint."""

    rows: int
    fingerprint: str


class VersionMetadata(TypedDict):
    """A version's ``metadata.json``: schema, scores, decision and provenance."""

    task: str
    target: str
    idColumn: str | None
    timestampColumn: str | None
    predictionColumn: str
    features: list[FeatureDoc]
    classes: list[Label] | None
    metric: str
    greaterIsBetter: bool
    metrics: Scores
    champion: ChampionRecord | None
    promote: bool
    reason: str
    message: str
    minImprovement: float
    flaml: FlamlRecord
    training: TrainingRecord
    holdout: HoldoutRecord
    triggerReport: str | None
    libraries: dict[str, str]
    # Written by the registry when it publishes the version.
    version: NotRequired[int]
    sha256: NotRequired[str]
    createdAt: NotRequired[str]
    model: NotRequired[str]
    modelBytes: NotRequired[int]
    files: NotRequired[dict[str, str]]
