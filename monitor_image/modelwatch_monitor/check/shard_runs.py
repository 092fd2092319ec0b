"""One sharded check run: the plan and shard files in the store, the waiting, each pod's part.

See :mod:`modelwatch_monitor.check.sharding` for the plan, the shard summaries and the merge.
Files go to ``<store>/<model>/shards/<run>/`` (``plan.json``, ``shard-<i>.json``), each
written whole or not at all, so a retried shard overwrites its own file and no reader
sees half of one. Folders of runs older than a day are pruned by the coordinator.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Final, TypedDict, TypeVar, cast

import fsspec

from modelwatch_monitor import contract
from modelwatch_monitor.check import outcome
from modelwatch_monitor.check.documents import PlanDoc, ShardDoc
from modelwatch_monitor.check.profile import Profile
from modelwatch_monitor.check.settings import CheckSettings, ConfigError
from modelwatch_monitor.check.sharding import (
    PLAN_KIND,
    SHARD_KIND,
    SHARD_SCHEMA,
    Plan,
    ShardError,
    ShardSummary,
    make_plan,
    merge_check,
    run_shard,
)
from modelwatch_monitor.check.window import NoDataError
from modelwatch_monitor.store.dataio import DataError
from modelwatch_monitor.store.listing import Folder, prune_older_than

log = logging.getLogger(__name__)

PLAN_FILE: Final = "plan.json"
DEFAULT_TIMEOUT: Final = 3600.0
KEEP_RUNS: Final = dt.timedelta(days=1)

Doc = TypeVar("Doc", bound=Mapping[str, object])
Found = TypeVar("Found")


class ShardOptions(TypedDict):
    """The sharding options of :func:`run_sharded`, as the command line gives them."""

    shards: int
    index: int
    run: str
    folder: str
    timeout: float
    prune: str | None


class Terminated(Exception):
    """The pod got SIGTERM (the Job failed or was deleted)."""


def shard_path(folder: str, index: int) -> str:
    return f"{folder.rstrip('/')}/shard-{int(index)}.json"


def plan_path(folder: str) -> str:
    return f"{folder.rstrip('/')}/{PLAN_FILE}"


def write_json(uri: str, doc: Mapping[str, object]) -> None:
    """Write ``doc`` to ``uri`` whole or not at all (a temporary name, then renamed): a
    retried shard overwrites its own file, and no reader sees half of one."""
    fs, path = fsspec.core.url_to_fs(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    with fs.open(tmp, "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))
    fs.mv(tmp, path)


def read_json(uri: str, shape: type[Doc]) -> Doc | None:
    """The JSON document at ``uri``, taken to have the keys of ``shape`` (not checked: its
    reader catches what is missing); None when there is none yet."""
    try:
        with fsspec.open(uri, "r") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {uri!r}: {exc}") from exc
    return cast(Doc, doc) if isinstance(doc, dict) else None


def write_plan(folder: str, plan: Plan) -> None:
    write_json(plan_path(folder), plan.to_dict())


def read_plan(folder: str) -> Plan | None:
    doc = read_json(plan_path(folder), PlanDoc)
    return None if doc is None else Plan.from_dict(doc)


def write_shard(folder: str, plan: Plan, summary: ShardSummary) -> None:
    write_json(shard_path(folder, summary.index), summary.to_dict(plan.run, plan.shards))


def write_shard_failure(folder: str, run: str, index: int, reason: str, message: str) -> None:
    """Record that shard ``index`` could not do its job, for the coordinator to report."""
    write_json(
        shard_path(folder, index),
        {
            "kind": SHARD_KIND,
            "schema": SHARD_SCHEMA,
            "run": run,
            "index": index,
            "ok": False,
            "reason": reason,
            "message": message,
        },
    )


def read_shard(folder: str, plan: Plan, index: int) -> ShardSummary | None:
    """Shard ``index``'s summary; None when it has not written one (for this run).

    Raises
    ------
    ShardError
        When the shard wrote that it failed.
    """
    doc = read_json(shard_path(folder, index), ShardDoc)
    if doc is None or doc.get("run") != plan.run:
        return None
    if not doc.get("ok"):
        raise ShardError(
            str(doc.get("reason") or "CheckFailed"),
            f"shard {index} of {plan.shards}: {doc.get('message')}",
        )
    return ShardSummary.from_dict(doc)


class _Sigterm:
    """Turn SIGTERM into :class:`Terminated` while waiting (the Job failed or went away)."""

    def __enter__(self) -> None:
        self.previous: Callable[[int, FrameType | None], object] | int | None = None
        try:
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread (tests): no handler
            self.previous = None

    @staticmethod
    def _raise(signum: int, frame: FrameType | None) -> None:
        raise Terminated("terminated")

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def wait_for(
    probe: Callable[[], Found | None],
    *,
    timeout: float,
    what: Callable[[], str],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Found:
    """Call ``probe`` until it returns something other than None, backing off from half a
    second to five; raise ShardError after ``timeout`` seconds or on SIGTERM, saying
    ``what()`` is missing."""
    deadline = clock() + timeout
    delay = 0.5
    with _Sigterm():
        while True:
            try:
                found = probe()
                if found is not None:
                    return found
                if clock() >= deadline:
                    raise ShardError("CheckFailed", f"{what()} after {timeout:.0f} s")
                sleep(delay)
                delay = min(delay * 1.5, 5.0)
            except Terminated:
                found = probe()  # a last look: a failed shard says why the Job failed
                if found is not None:
                    return found
                raise ShardError(
                    "CheckFailed",
                    f"terminated while waiting: {what()} (a pod ran out of retries, or the "
                    "Job was deleted)",
                ) from None


def wait_for_plan(folder: str, run: str, *, timeout: float) -> Plan:
    """The plan of ``run``, once shard 0 has written it.

    Raises
    ------
    NoDataError
        When shard 0 found the window empty (nothing to sketch: no traffic).
    ShardError
        When shard 0 could not plan the check.
    """

    def probe() -> Plan | None:
        doc = read_json(plan_path(folder), PlanDoc)
        if doc is None or doc.get("run") != run:
            return None
        if doc.get("ok") is False:
            message = f"shard 0 could not plan the check: {doc.get('message')}"
            if doc.get("reason") == contract.REASON_NO_DATA:
                raise NoDataError(message)
            raise ShardError(str(doc.get("reason") or "CheckFailed"), message)
        return Plan.from_dict(doc)

    plan: Plan = wait_for(
        probe, timeout=timeout, what=lambda: f"shard 0 wrote no plan in {folder!r}"
    )
    return plan


def write_plan_failure(folder: str, run: str, reason: str, message: str) -> None:
    """Record that the check could not be planned, so the other shards stop waiting."""
    write_json(
        plan_path(folder),
        {
            "kind": PLAN_KIND,
            "schema": SHARD_SCHEMA,
            "run": run,
            "ok": False,
            "reason": reason,
            "message": message,
        },
    )


def wait_for_shards(folder: str, plan: Plan, *, timeout: float) -> list[ShardSummary]:
    """Every shard's summary, once all are written; ShardError when one failed."""
    found: dict[int, ShardSummary] = {}

    def probe() -> list[ShardSummary] | None:
        for i in range(plan.shards):
            if i not in found:
                summary = read_shard(folder, plan, i)
                if summary is not None:
                    found[i] = summary
        return [found[i] for i in range(plan.shards)] if len(found) == plan.shards else None

    def missing() -> str:
        left = [str(i) for i in range(plan.shards) if i not in found]
        return f"shards {', '.join(left)} of {plan.shards} wrote no summary in {folder!r}"

    result: list[ShardSummary] = wait_for(probe, timeout=timeout, what=missing)
    return result


def run_sharded(
    settings: CheckSettings,
    *,
    shards: int,
    index: int,
    run: str,
    folder: str,
    timeout: float = DEFAULT_TIMEOUT,
    prune: str | None = None,
) -> outcome.Result | None:
    """Run shard ``index`` of a check split ``shards`` ways (see the module docstring).

    Returns the check's result on shard 0 (the coordinator), None on the others (their
    share is in the store). The coordinator deletes the folders of runs older than a day
    under ``prune``. An empty window is the ``NoData`` result on every shard: the
    coordinator's plan says so, and the others stop waiting with it.

    Raises
    ------
    DataError, ConfigError, ShardError
        When this shard, or the check, cannot do its job (a failing shard has then
        written so in its shard file).
    """
    if not 0 <= index < shards:
        raise ConfigError(
            f"The shard index must be in [0, {shards}) (JOB_COMPLETION_INDEX). "
            f"Got {index!r} instead."
        )
    if index:
        try:
            plan = wait_for_plan(folder, run, timeout=timeout)
        except NoDataError as exc:  # nothing to sketch: the same outcome as shard 0's
            return outcome.no_data(settings, str(exc), reference_rows=None)
        if plan.shards != shards:
            raise ConfigError(f"the plan is for {plan.shards} shards, not {shards}")
        try:
            summary = run_shard(settings, plan, index)
        except (DataError, ValueError) as exc:
            reason = "ConfigError" if isinstance(exc, ConfigError) else "DataError"
            write_shard_failure(folder, run, index, reason, str(exc))
            raise
        write_shard(folder, plan, summary)
        log.info(
            "shard %d of %d: %d of %d rows in %.2fs",
            index,
            shards,
            summary.served_rows,
            summary.window_rows,
            summary.seconds,
        )
        return None
    started = time.perf_counter()
    doc = read_json(plan_path(folder), PlanDoc)
    profile: Profile | None = None
    features: list[str] | None = None
    if doc is not None and doc.get("run") == run and doc.get("ok", True):
        plan = Plan.from_dict(doc)  # a retried coordinator keeps the plan its shards read
        if plan.shards != shards:
            raise ConfigError(f"the plan is for {plan.shards} shards, not {shards}")
    else:
        try:
            plan, profile, features = make_plan(settings, shards=shards, run=run)
        except NoDataError as exc:
            write_plan_failure(folder, run, contract.REASON_NO_DATA, str(exc))
            return outcome.no_data(settings, str(exc), reference_rows=exc.reference_rows)
        except (DataError, ValueError) as exc:
            reason = "ConfigError" if isinstance(exc, ConfigError) else "DataError"
            write_plan_failure(folder, run, reason, str(exc))
            raise
        write_plan(folder, plan)
    try:
        own = read_shard(folder, plan, 0)
    except ShardError:
        own = None  # the previous attempt failed: try again
    if own is None:
        own = run_shard(settings, plan, 0)
        write_shard(folder, plan, own)
    waited = time.perf_counter()
    summaries = wait_for_shards(folder, plan, timeout=timeout)
    merging = time.perf_counter()
    result = merge_check(
        settings, plan, summaries, profile=profile, features=features, started=started
    )
    log.info(
        "merged %d shards in %.2fs (shard 0 sketched %d rows in %.2fs, then waited %.2fs)",
        plan.shards,
        time.perf_counter() - merging,
        own.served_rows,
        own.seconds,
        merging - waited,
    )
    if prune:
        try:
            prune_runs(prune, keep=run, now=plan.now)
        except OSError as exc:  # housekeeping never fails a check
            log.warning("cannot prune old shard runs: %s", exc)
    return result


def prune_runs(parent: str, *, keep: str, now: dt.datetime) -> list[str]:
    """Delete the folders of runs whose plan is older than a day (never ``keep``).

    A run without a readable plan is timed by its folder's modification time (its age by
    the wall clock), and kept when the filesystem tells none.
    """
    wall = time.time()

    def started(run: Folder) -> dt.datetime | None:
        try:
            plan = read_json(f"{run.uri}/{PLAN_FILE}", PlanDoc)
            when = dt.datetime.fromisoformat(plan["now"]) if plan else None
        except (DataError, KeyError, TypeError, ValueError):
            when = None
        if when is not None:
            return when
        if run.mtime is None:
            return None
        return now - dt.timedelta(seconds=wall - run.mtime)

    return prune_older_than(parent, now - KEEP_RUNS, time_of=started, keep={keep})
