"""The operator benchmark's pure helpers: percentiles, metric parsing, log matching."""
# ruff: noqa: E501  -- API server /metrics lines are long

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
from bench import bench_operator as bo

APISERVER_METRICS = """\
# HELP apiserver_flowcontrol_rejected_requests_total [BETA] Number of requests rejected
# TYPE apiserver_flowcontrol_rejected_requests_total counter
apiserver_flowcontrol_rejected_requests_total{flow_schema="service-accounts",priority_level="workload-low",reason="queue-full"} 3
apiserver_flowcontrol_rejected_requests_total{flow_schema="global-default",priority_level="global-default",reason="time-out"} 1
apiserver_flowcontrol_dispatched_requests_total{flow_schema="service-accounts",priority_level="workload-low"} 120
apiserver_flowcontrol_dispatched_requests_total{flow_schema="exempt",priority_level="exempt"} 40
apiserver_flowcontrol_dispatched_requests_total{flow_schema="kube-system-service-accounts",priority_level="workload-high"} 7
apiserver_flowcontrol_current_inqueue_requests{flow_schema="service-accounts",priority_level="workload-low"} 2
apiserver_request_total{code="200",component="apiserver",resource="jobs",verb="LIST"} 55
apiserver_request_total{code="429",component="apiserver",resource="modelmonitors",verb="PATCH"} 2
apiserver_flowcontrol_rejected_requests_total_extra{priority_level="workload-low"} 99
"""


def test_doctests() -> None:
    failed, attempted = doctest.testmod(bo)
    assert attempted > 0
    assert failed == 0


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 99, 100])
@pytest.mark.parametrize(
    "values", [[3.0], [2.0, 1.0], [0.5, 0.1, 0.9, 0.3, 4.0], list(np.linspace(0, 7, 101) ** 2)]
)
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    assert bo.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="'values'"):
        bo.percentile([], 50)
    with pytest.raises(ValueError, match=r"'q'.*Got 101"):
        bo.percentile([1.0], 101)


def test_summarize_reports_median_p99_and_max() -> None:
    values = [float(i) for i in range(1, 101)]  # 1..100 s
    assert bo.summarize(values) == {
        "n": 100,
        "median_s": 50.5,
        "p99_s": 99.01,
        "max_s": 100.0,
        "min_s": 1.0,
    }
    assert bo.summarize([]) == {"n": 0}


def test_round_robin_spreads_over_every_group() -> None:
    groups = {f"ns-{g:02d}": [f"ns-{g:02d}/mm-{i}" for i in range(50)] for g in range(20)}
    picked = bo.round_robin(groups, 100)
    assert len(picked) == len(set(picked)) == 100
    per_ns = {ns: sum(p.startswith(ns + "/") for p in picked) for ns in groups}
    assert set(per_ns.values()) == {5}
    # Fewer items than asked: all of them, uneven groups included.
    assert bo.round_robin({"a": [1], "b": [2, 3, 4]}, 10) == [1, 2, 3, 4]


def test_metric_samples_parse_labels_and_skip_other_names() -> None:
    samples = bo.metric_samples(APISERVER_METRICS, bo.REJECTED)
    assert [v for _, v in samples] == [3.0, 1.0]
    assert samples[0][0] == {
        "flow_schema": "service-accounts",
        "priority_level": "workload-low",
        "reason": "queue-full",
    }


def test_metric_by_sums_and_filters() -> None:
    text = APISERVER_METRICS
    assert bo.metric_by(text, bo.REJECTED, "reason") == {"queue-full": 3.0, "time-out": 1.0}
    assert bo.metric_by(text, "apiserver_request_total", "resource", where={"code": "429"}) == {
        "modelmonitors": 2.0
    }
    assert bo.metric_by(text, bo.INQUEUE, "priority_level") == {"workload-low": 2.0}


def test_flow_delta_counts_only_what_changed() -> None:
    before = bo.flow_counters(APISERVER_METRICS)
    after_text = APISERVER_METRICS.replace("} 120", "} 170").replace(
        'reason="time-out"} 1', 'reason="time-out"} 4'
    )
    delta = bo.flow_delta(before, bo.flow_counters(after_text))
    assert delta["dispatched_by_priority_level"] == {"workload-low": 50.0}
    assert delta["rejected_by_reason"] == {"time-out": 3.0}
    assert delta["rejected_total"] == 3.0
    assert delta["http_429_total"] == 0
    # No rejections at all: the counter is absent from /metrics; a new series counts from 0.
    empty = bo.flow_counters("")
    assert bo.flow_delta(empty, before)["rejected_total"] == 4.0
    assert bo.flow_delta(empty, empty)["rejected_total"] == 0


def test_throttled_lines_find_429_but_not_timestamps() -> None:
    lines = [
        "[2026-11-29 13:52:26,429] kopf.objects [INFO ] Handler 'reconcile' succeeded.",
        "[2026-11-29 13:52:27,001] kopf._cogs.clients.api [ERROR ] Request attempt 1 failed; "
        "will retry: PATCH https://10.96.0.1/apis/... -> APITooManyRequestsError(429, ...)",
        "kubernetes.client.exceptions.ApiException: (429)",
        "Reason: Too Many Requests",
        "Waited for 1.1s due to client-side throttling, not priority and fairness",
        "resourceVersion 14290 observed",
        "HTTP 429 from the API server",
        "[...] kopf.objects [ERROR ] Throttling for 1 seconds due to an unexpected error: X()",
    ]
    assert bo.throttled_lines(lines) == [lines[1], lines[2], lines[3], lines[4], lines[6]]
    assert [line for line in lines if bo.KOPF_BACKOFF.search(line)] == [lines[7]]


def test_parse_proc_status_names_a_missing_field() -> None:
    with pytest.raises(ValueError, match="VmHWM"):
        bo.parse_proc_status("VmRSS:\t 1024 kB\n")


def test_monitors_spread_over_the_namespaces() -> None:
    names = [bo.scale_namespace(i) for i in range(20)]
    assert names[0] == "bench-operator-scale-00" and len(set(names)) == 20
    mm = bo.scale_monitor(names[3], 999)
    assert mm["metadata"] == {"name": "mm-0999", "namespace": "bench-operator-scale-03"}


def test_operator_restarts_sums_every_container_of_the_operator_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The restart count reads the pods ``operator_pods`` lists (kubectl's JSON)."""
    asked: list[tuple[str, ...]] = []
    pods = {
        "items": [
            {"status": {"containerStatuses": [{"restartCount": 2}, {"restartCount": 1}]}},
            {"status": {"containerStatuses": [{}]}},  # no count yet
            {"metadata": {"name": "pending"}},  # no status yet
        ]
    }

    def kubectl(*args: str, **_: object) -> str:
        asked.append(args)
        return json.dumps(pods)

    monkeypatch.setattr(bo, "kubectl", kubectl)
    monkeypatch.setattr(bo, "LOCAL", False)
    assert bo.operator_restarts() == 3
    assert asked == [
        ("get", "pods", "-n", bo.OPERATOR_NS, "-l", "app.kubernetes.io/name=modelwatch-operator",
         "-o", "json"),
    ]  # fmt: skip
