"""The settings of one check, built from a parsed spec (the job config or the command line).

Every check, the operator's and a user's, starts from a :class:`contract.Spec`: the job
config's (``contract.parse_job_config``) or the one the command line's flags describe
(``contract.parse_spec``, see :mod:`modelwatch_monitor.check.run`). Only where the check
runs differs: in the store (the operator's Jobs) or outside it (a report folder).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from modelwatch_monitor import contract
from modelwatch_monitor.check.drift import FeatureType
from modelwatch_monitor.check.profile import Roles
from modelwatch_monitor.check.verdicts import DriftSettings


class ConfigError(ValueError):
    """The job config or the command line is not usable."""


@dataclass
class CheckSettings:
    """Everything one check needs, from the job config or the command line."""

    current: str
    output: str
    reference: str | None = None
    profile_path: str | None = None
    labels: str | None = None
    labels_id_column: str | None = None
    window: str | None = None
    roles: Roles = field(default_factory=Roles)
    features: list[str] | None = None
    overrides: dict[str, FeatureType] = field(default_factory=dict)
    task: str | None = None
    drift: DriftSettings = field(default_factory=DriftSettings)
    metric: str | None = None
    max_degradation: float = 0.1
    min_labeled_rows: int = 50
    baseline: float | None = None
    estimate: bool = True
    store: str | None = None
    model: str = ""
    report_id: str = ""
    mode: str = "auto"
    now: dt.datetime | None = None
    serving_version: int | None = None
    serving_since: dt.datetime | None = None
    min_rows: int = contract.DEFAULT_MIN_ROWS
    retention_seconds: float | None = None  # prune the store's prediction log to this age


def report_id_of(now: dt.datetime) -> str:
    """The id of the report a check at ``now`` writes.

    >>> report_id_of(dt.datetime(2026, 11, 29, 12, 0, 5))
    '20261129T120005Z'
    """
    return now.strftime("%Y%m%dT%H%M%SZ")


def settings_from_spec(
    spec: contract.Spec,
    *,
    now: dt.datetime | None = None,
    output: str | None = None,
    source: str = "job config",
) -> CheckSettings:
    """Build the settings of a check of ``spec``.

    Parameters
    ----------
    spec : contract.Spec
        The parsed spec.
    now : datetime, optional
        The instant the window ends at (default: now).
    output : str, optional
        None for a check in the store (``spec.store``): the current data default to the
        store's prediction log, the report goes under the store and the reference profile
        is kept there. A folder for a check outside the store: the report goes there and
        nothing is read from or written to a store.
    source : str
        Where the spec came from, for the error message.
    """
    now = now or dt.datetime.now(dt.UTC)
    try:
        settings = _from_spec(spec, now=now, output=output or "")
        if output is None:
            _place_in_store(settings, spec, spec.store.uri)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {source}: {exc}") from exc
    return settings


def _from_spec(spec: contract.Spec, *, now: dt.datetime, output: str) -> CheckSettings:
    """The settings ``spec`` describes, before they are placed in a store."""
    model, data, perf = spec.model, spec.data, spec.performance
    return CheckSettings(
        current=data.current.uri or "",
        output=output,
        reference=data.reference.uri,
        labels=None if data.labels is None else data.labels.uri,
        labels_id_column=spec.labels_id_column,
        window=data.current.window,
        roles=Roles(
            id=model.id_column,
            timestamp=model.timestamp_column,
            prediction=model.prediction_column,
            target=model.target,
        ),
        features=[f.name for f in model.features] or None,
        overrides={f.name: f.type for f in model.features},
        task=model.task,
        drift=DriftSettings.from_spec(spec.drift),
        metric=perf.metric,
        max_degradation=perf.max_degradation,
        min_labeled_rows=perf.min_labeled_rows,
        baseline=perf.baseline,
        estimate=perf.estimate.enabled,
        report_id=report_id_of(now),
        now=now,
        min_rows=data.current.min_rows,
    )


def _place_in_store(settings: CheckSettings, spec: contract.Spec, store: str) -> None:
    """Point ``settings`` at the store: its prediction log, report folder and profile."""
    name, current = spec.model.name, spec.data.current
    settings.store, settings.model = store, name
    settings.current = current.uri or contract.predictions_dir(store, name)
    settings.output = contract.report_dir(store, name, settings.report_id)
    settings.profile_path = contract.reference_profile_path(store, name)
    settings.retention_seconds = None if current.uri else current.retention_seconds


def settings_from_config(
    config: contract.JobConfig, *, now: dt.datetime | None = None
) -> CheckSettings:
    """Build the settings from a parsed job config (``contract.parse_job_config``)."""
    return settings_from_spec(config.spec, now=now)


def parse_since(text: str) -> dt.datetime:
    """Parse ``--serving-since`` (RFC 3339; naive times are UTC).

    >>> parse_since("2026-11-29T12:00:00Z").isoformat()
    '2026-11-29T12:00:00+00:00'
    """
    try:
        return contract.parse_timestamp(text, contract.ARG_SERVING_SINCE)
    except contract.ContractError as exc:
        raise ConfigError(str(exc)) from None
