"""The retrain circuit breaker in the loop: challengers that keep losing stop retrains."""

# ruff: noqa: F811  (the ``api`` fixture is imported from the loop tests)

from __future__ import annotations

from modelwatch_operator import constants as c
from modelwatch_operator import reconcile_jobs, reconcile_monitor
from modelwatch_operator.monitors import read_monitor
from tests.operator.docs import condition_doc
from tests.operator.test_operator_reconciling import (
    CHECK_DRIFT,
    RETRAIN_WIN,
    T0,
    Clock,
    FakeApi,
    api,  # noqa: F401
    cond,
    status,
)
from tests.operator.test_operator_resync import scheduled_check

LOSS = {
    **RETRAIN_WIN,
    "promote": False,
    "reason": "BelowMinImprovement",
    "message": "challenger 0.5 vs champion 0.6",
}


def drifted_check(api: FakeApi, clock: Clock, n: int) -> None:
    clock.tick(3600)
    scheduled_check(api, f"mm-check-{n}")
    done = api.finish_job(f"mm-check-{n}", {**CHECK_DRIFT, "reportId": f"r{n}"}, at=clock.now)
    reconcile_jobs.handle_job(done, now=clock)


def test_three_losses_open_the_circuit_until_asked_by_hand(api: FakeApi) -> None:
    api.monitors["mm"]["spec"]["retrain"].update({"cooldown": "1s", "maxPerDay": 20})
    clock = Clock()
    clock.now = T0
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    for n, version in ((1, 2), (2, 3), (3, 4)):
        drifted_check(api, clock, n)
        job = f"mm-retrain-{version}"
        assert api.created_jobs[-1] == job
        clock.tick(60)
        reconcile_jobs.handle_job(api.finish_job(job, {**LOSS, "version": version}), now=clock)
    assert cond(api, c.COND_RETRAINING) == ("False", "CircuitOpen")
    message = condition_doc(status(api), c.COND_RETRAINING)["message"]
    assert "versions 2, 3, 4" in message and "modelwatch.io/retrain-now" in message

    drifted_check(api, clock, 4)  # drift again: no retrain while the circuit is open
    assert api.created_jobs == ["mm-retrain-2", "mm-retrain-3", "mm-retrain-4"]
    assert cond(api, c.COND_RETRAINING) == ("False", "CircuitOpen")

    api.monitors["mm"]["metadata"]["annotations"] = {c.ANNOTATION_RETRAIN_NOW: "1"}
    reconcile_monitor.reconcile(read_monitor(api.monitors["mm"]), now=clock)
    assert api.created_jobs[-1] == "mm-retrain-5"
    assert status(api)["retrain"]["trigger"] == "ManualRequest"
