"""What a finished Job says: whether and when it finished, whether its check was read, and
its result from its pods' termination messages. Pure: the Job and its pods are read by the
caller (:func:`reconcile_jobs.gather_result`, the resync).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from modelwatch_monitor import contract
from modelwatch_operator import constants as c
from modelwatch_operator import objects
from modelwatch_operator.objects import parse_time


def check_already_read(
    status: contract.MonitorStatus, job: str, finished: dt.datetime | None
) -> bool:
    """True when check Job ``job`` was read, or finished before the last check read (an
    operator restart lists the finished Jobs the CronJob keeps: read once, in order)."""
    if status.last_check_job == job:
        return True
    watermark = parse_time(status.last_check_finished_at)
    return finished is not None and watermark is not None and finished < watermark


def completion_index(pod: objects.Pod) -> str | None:
    """The completion index of a pod of an Indexed Job (its annotation, else its label)."""
    meta = pod.metadata
    for where in (meta.annotations, meta.labels):
        if c.ANNOTATION_COMPLETION_INDEX in where:
            return where[c.ANNOTATION_COMPLETION_INDEX]
    return None


def result_pods(pods: Sequence[objects.Pod]) -> list[objects.Pod]:
    """The pods whose termination message is the Job's result: every pod of a Job, or
    the pods of index 0 of an Indexed Job (a sharded check: index 0 merges and decides;
    the other shards leave their share in the store, not a result)."""
    if all(completion_index(p) is None for p in pods):
        return list(pods)
    return [p for p in pods if completion_index(p) == contract.SHARD_RESULT_INDEX]


@dataclass(frozen=True)
class Unread:
    """A finished Job whose result could not be read: no termination message (the pod
    was killed, ``JobFailed``/``NoResult``) or one that breaks the contract
    (``InvalidResult``, every problem named). Recorded as a failed Job of ``kind``."""

    kind: str
    reason: str
    message: str
    ok: bool = False


#: What a finished Job gave: its typed result, or why there is none.
JobResult = contract.Result | Unread


def read_result(
    pods: Sequence[objects.Pod],
    *,
    kind: str,
    container: str,
    succeeded: bool,
    job_message: str,
) -> JobResult:
    """Return the typed result of a finished Job from its pods' termination messages
    (of index 0 in an Indexed Job; the newest pod's when the index was retried)."""
    oldest_first = sorted(result_pods(pods), key=lambda p: p.metadata.creation_timestamp)
    messages = [m for p in oldest_first if (m := p.termination_message(container))]
    text = messages[-1] if messages else None
    try:
        doc = contract.parse_result(text)
    except contract.ContractError as exc:
        reason = "JobFailed" if not succeeded else "NoResult"
        detail = str(exc) if text or not job_message else job_message
        return Unread(kind, reason, detail)
    try:
        result = contract.read_result(doc)
    except contract.ContractError as exc:
        return Unread(kind, contract.REASON_INVALID_RESULT, str(exc))
    if result.kind != kind:
        return Unread(kind, contract.REASON_INVALID_RESULT, f"kind: must be {kind}")
    if not succeeded and result.ok:
        return Unread(kind, "JobFailed", job_message)
    return result
