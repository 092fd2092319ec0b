"""One check of one window, from its settings to its compact result.

The steps, each in its own module::

    reference   load (or compute once) the reference profile; check the store and labels
    window      open the current window (an empty one is the NoData outcome)
    traffic     keep the rows the version that serves served (too few: AwaitingTraffic)
    reference   follow the serving version's training profile, when the store has one
    window      summarise the features, column by column or as sketches
    engine      test drift, find data-quality problems, compute and estimate performance
    outcome     write the report, return the result

:func:`finish_check` is the part after the summaries, shared with the merge of a
sharded check (:mod:`modelwatch_monitor.check.sharding`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable

from modelwatch_monitor.check import engine, outcome
from modelwatch_monitor.check.profile import ColumnProfile, Profile, choose_mode
from modelwatch_monitor.check.reference import follow_serving, prepare_check
from modelwatch_monitor.check.settings import CheckSettings
from modelwatch_monitor.check.traffic import Traffic, select_traffic
from modelwatch_monitor.check.window import (
    NoDataError,
    check_types,
    current_columns,
    no_rows_error,
    open_window,
)
from modelwatch_monitor.store.dataio import Source

log = logging.getLogger(__name__)


def run_check(settings: CheckSettings) -> outcome.Result:
    """Run one check and write its report; return the compact result (``ok: true``).

    An empty window returns the ``NoData`` result and too little traffic of the serving
    version the ``AwaitingTraffic`` one; neither writes a report.

    Raises
    ------
    DataError, ConfigError
        When the check cannot run; nothing is written then.
    """
    started = time.perf_counter()
    now = settings.now or dt.datetime.now(dt.UTC)
    profile, features = prepare_check(settings)
    try:
        source, rows = _nonempty_window(settings, features, now=now)
    except NoDataError as exc:
        return outcome.no_data(settings, str(exc), reference_rows=profile.rows)
    traffic = select_traffic(settings, source, rows)
    if traffic.served_rows < settings.min_rows:
        return outcome.awaiting_traffic(settings, traffic, reference_rows=profile.rows)
    profile, features = follow_serving(settings, profile, features, traffic.version)
    source.require(features, "feature column")
    check_types(profile.columns, source, features)
    types = {f: profile.columns[f].type for f in features}
    mode = choose_mode(rows, len(types), settings.mode)
    return finish_check(
        settings,
        profile=profile,
        source=source,
        traffic=traffic,
        features=features,
        columns=current_columns(source, types, mode),
        rows=rows,
        mode=mode,
        now=now,
        started=started,
    )


def _nonempty_window(
    settings: CheckSettings, features: list[str], *, now: dt.datetime
) -> tuple[Source, int]:
    """The window and its row count; NoDataError when it has no rows."""
    source = open_window(settings, features, now=now)
    rows = source.count_rows()
    if rows == 0:
        raise no_rows_error(settings)
    return source, rows


def finish_check(
    settings: CheckSettings,
    *,
    profile: Profile,
    source: Source,
    traffic: Traffic,
    features: list[str],
    columns: Iterable[ColumnProfile],
    rows: int,
    mode: str,
    now: dt.datetime,
    started: float,
    shards: int | None = None,
) -> outcome.Result:
    """Test, decide and report, once the window's columns are summarised.

    ``source`` is the window restricted to the judged traffic (read for the schema, the
    performance and the estimate); ``columns`` the current summaries of ``features``;
    ``shards`` how many pods sketched them (a sharded check).
    """
    judgement = engine.judge(
        settings, profile, source, version=traffic.version, features=features, columns=columns
    )
    report = outcome.report_document(
        settings, judgement, profile=profile, traffic=traffic, rows=rows, mode=mode, now=now,
        shards=shards,
    )  # fmt: skip
    outcome.save_report(settings, report, profile, judgement)
    message = outcome.summary_message(judgement)
    log.info("check done in %.2fs: %s", time.perf_counter() - started, message)
    return outcome.verdict_result(
        settings, judgement, report=report, profile=profile, traffic=traffic, rows=rows,
        message=message,
    )  # fmt: skip
