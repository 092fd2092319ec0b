"""The gather -> decide -> act shape of the reconcile modules: decide reads nothing from the
cluster (every read is in gather), and act counts what the decision said. Loop tests use the
in-memory API of the loop tests (whose ``api`` fixture is imported: hence F811)."""

# ruff: noqa: F401, F811

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from modelwatch_monitor import contract
from modelwatch_operator import constants as c
from modelwatch_operator import kube, metrics, reconcile_jobs, reconcile_monitor
from modelwatch_operator import reconcile_rollout as rr
from modelwatch_operator.actions import ClaimDeployment, PatchDeployment, PostEvent
from modelwatch_operator.monitors import Monitor, read_monitor
from modelwatch_operator.policies import format_time
from tests.operator.test_operator_reconciling import (
    CHECK_DRIFT,
    NS,
    RETRAIN_WIN,
    SHA2,
    T0,
    Clock,
    FakeApi,
    api,
    run_to_rollout,
    status,
)

BASE_SPEC = {
    "model": {"name": "iris", "target": "y"},
    "store": {"uri": "/store"},
    "data": {"reference": {"uri": "/store/ref.csv"}},
}


def _body(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "mm", "namespace": NS, "uid": "u1", "generation": 3},
        "spec": {
            **BASE_SPEC,
            "retrain": {"enabled": True, "triggers": {"violations": 1, "window": 1}},
            "deployment": {"name": "srv", "container": "server"},
        },
        "status": status,
    }


def _monitor(**status: Any) -> Monitor:
    return read_monitor(_body(**status))


def _deployment(holder: str | None = None, *, container: str = "server") -> dict[str, Any]:
    labels = {c.LABEL_MONITOR: holder} if holder else {}
    env = [{"name": "MODEL_VERSION", "value": "1"}, {"name": "MODEL_SHA256", "value": "sha1"}]
    return {
        "metadata": {
            "name": "srv",
            "namespace": NS,
            "uid": "d1",
            "generation": 4,
            "resourceVersion": "7",
            "labels": labels,
        },
        "spec": {"template": {"spec": {"containers": [{"name": container, "env": env}]}}},
    }


def _claimant(name: str, deployment: str = "srv") -> Monitor:
    return read_monitor(
        {
            "metadata": {"name": name, "namespace": NS},
            "spec": {**BASE_SPEC, "deployment": {"name": deployment}},
        }
    )


@pytest.fixture
def no_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every API call of :mod:`kube` fails the test."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a decide step called the API with {args}")

    for name in dir(kube):
        if name.split("_")[0] in ("get", "list", "patch", "create", "replace", "job", "pvc"):
            monkeypatch.setattr(kube, name, forbidden)
    yield


# ---------------------------------------------------------------------------
# Decide: pure, from what was gathered
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serving", "began", "reason", "patched"),
    [
        (rr.Serving(None), False, "DeploymentNotFound", False),
        (rr.Serving(_deployment("other"), _claimant("other")), False, "DeploymentClaimed", False),
        (rr.Serving(_deployment("other"), None), True, "Progressing", True),  # claimant gone
        (rr.Serving(_deployment("other"), _claimant("other", "x")), True, "Progressing", True),
        (rr.Serving(_deployment("mm")), True, "Progressing", True),
        (rr.Serving(_deployment(None, container="other")), False, "ContainerNotFound", False),
    ],
)
def test_begin_decides_the_claim_from_the_gathered_claimant(
    no_reads: None, serving: rr.Serving, began: bool, reason: str, patched: bool
) -> None:
    body = _monitor(currentVersion=1, currentSha256="sha1")
    s = body.status.to_doc()
    actions: list[Any] = []
    assert (
        rr.begin(
            body,
            s,
            kind="Promote",
            version=2,
            sha256=SHA2,
            serving=serving,
            actions=actions,
            now=T0,
        )
        is began
    )
    rollout_cond = next(x for x in s["conditions"] if x["type"] == c.COND_ROLLOUT)
    assert rollout_cond["reason"] == reason
    assert any(isinstance(a, PatchDeployment) for a in actions) is patched
    if began:
        assert s["rollout"]["version"] == 2 and s["rollout"]["previousVersion"] == 1
        assert actions[-1] == PostEvent(
            "Normal", "RollingOut", 'rolling out deployment "srv" to version 2'
        )
    else:
        assert "rollout" not in s
        assert actions == [PostEvent("Warning", reason, rollout_cond["message"])]


CLAIM = ClaimDeployment("srv", "7")  # conditional on the resourceVersion that was read
NOT_FOUND = PostEvent(
    "Warning", "DeploymentNotFound", f'deployment "srv" not found in namespace "{NS}"'
)


@pytest.mark.parametrize(
    ("serving", "fire", "reason", "actions"),
    [
        (rr.Serving(_deployment(None)), True, "DeploymentFound", [CLAIM]),
        (rr.Serving(_deployment("mm")), True, "DeploymentFound", []),
        (rr.Serving(_deployment("other"), None), True, "DeploymentFound", [CLAIM]),
        (rr.Serving(_deployment("other"), _claimant("other")), False, "DeploymentClaimed", None),
        (rr.Serving(_deployment(None, container="x")), False, "ContainerNotFound", []),
        (rr.Serving(None), False, "DeploymentNotFound", [NOT_FOUND]),
    ],
)
def test_takeover_is_decided_from_what_was_gathered(
    no_reads: None,
    serving: rr.Serving,
    fire: bool,
    reason: str,
    actions: list[Any] | None,
) -> None:
    takeover, decided = reconcile_monitor.decide_takeover(_monitor(), serving)
    assert takeover is not None
    assert (takeover.fire, takeover.reason) == (fire, reason)
    if fire:
        assert (takeover.version, takeover.sha256) == (1, "sha1")
    if actions is None:  # claimed by another monitor: say so, touch nothing
        actions = [PostEvent("Warning", reason, takeover.message)]
    assert decided == actions


def test_no_deployment_named_no_takeover(no_reads: None) -> None:
    body = _body()
    body["spec"].pop("deployment")
    assert reconcile_monitor.decide_takeover(read_monitor(body), rr.Serving(None)) == (None, [])


def test_decide_steps_read_nothing(no_reads: None) -> None:
    body = _monitor(currentVersion=1, currentSha256="sha1", latestVersion=1)
    s = body.status.to_doc()
    drift = contract.read_result({**CHECK_DRIFT, "schema": 1})
    assert isinstance(drift, contract.CheckOk)
    new = reconcile_jobs.decide_check(body, s, job="mm-check-1", result=drift, finished=T0, now=T0)
    assert new is not None and new["lastCheckJob"] == "mm-check-1"
    decision, new = reconcile_jobs.decide_retrain(body, new, manual=False, report_id="r1", now=T0)
    assert decision.fire and new is not None and new["retrain"]["job"] == "mm-retrain-2"
    actions: list[Any] = []
    win = contract.read_result({**RETRAIN_WIN, "schema": 1})
    assert isinstance(win, contract.RetrainOk)
    decided = reconcile_jobs.decide_retrain_result(
        body,
        new,
        job="mm-retrain-2",
        result=win,
        serving=rr.Serving(_deployment("mm")),
        actions=actions,
        now=T0,
    )
    assert decided is not None and decided[0].fire
    assert decided[1]["rollout"]["version"] == 2
    assert [type(a).__name__ for a in actions] == ["PatchDeployment", "PostEvent"]
    status_ = reconcile_monitor.decide_status(
        body,
        body.status.to_doc(),
        blocked=None,
        takeover=reconcile_monitor.Takeover(True, "DeploymentFound", "serving", 1, "sha1"),
        missing_claim=None,
        now=T0,
    )
    assert {x["type"] for x in status_["conditions"]} == set(c.CONDITION_TYPES)


# ---------------------------------------------------------------------------
# Gather: the claimant is read only when another monitor's label is on the Deployment
# ---------------------------------------------------------------------------


def test_gather_reads_the_claimant_only_for_another_monitors_label(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = api.get_monitor

    def get_monitor(namespace: str, name: str) -> dict[str, Any] | None:
        reads.append(name)
        return real(namespace, name)

    monkeypatch.setattr(kube, "get_monitor", get_monitor)
    body = read_monitor(api.monitors["mm"])
    assert rr.gather_serving(body) == rr.Serving(api.get_deployment(NS, "srv"), None)
    api.deployments["srv"]["metadata"]["labels"] = {c.LABEL_MONITOR: "mm"}
    assert rr.gather_serving(body).claimant is None
    assert reads == []
    api.deployments["srv"]["metadata"]["labels"] = {c.LABEL_MONITOR: "gone"}
    assert rr.gather_serving(body).claimant is None and reads == ["gone"]


# ---------------------------------------------------------------------------
# Act: metrics follow the status write
# ---------------------------------------------------------------------------


def _value(family: Any, *labels: str) -> float:
    value: float = family.labels(*labels)._value.get()
    return value


def test_promotion_and_rollback_are_counted_after_the_write(api: FakeApi) -> None:
    promotions = _value(metrics.PROMOTIONS, NS, "mm")
    rollbacks = _value(metrics.ROLLBACKS, NS, "mm")
    clock = Clock()
    run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    rr.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    assert status(api)["currentVersion"] == 2
    assert _value(metrics.PROMOTIONS, NS, "mm") == promotions + 1
    assert _value(metrics.CURRENT_VERSION, NS, "mm") == 2
    rr.handle_deployment(api.set_rollout("srv", done=True), now=clock)  # the same event again
    assert _value(metrics.PROMOTIONS, NS, "mm") == promotions + 1
    assert _value(metrics.ROLLBACKS, NS, "mm") == rollbacks


def test_a_rollback_is_counted_once_and_the_gauge_follows_it(api: FakeApi) -> None:
    promotions = _value(metrics.PROMOTIONS, NS, "mm")
    rollbacks = _value(metrics.ROLLBACKS, NS, "mm")
    clock = Clock()
    run_to_rollout(api, clock)
    reconcile_jobs.handle_job(api.finish_job("mm-retrain-2", RETRAIN_WIN), now=clock)
    metrics.CURRENT_VERSION.labels(NS, "mm").set(1)
    clock.tick(40)
    failed = api.set_rollout("srv", deadline_at=format_time(clock.now))
    rr.handle_deployment(failed, now=clock)
    assert status(api)["rollout"]["kind"] == "Rollback"
    assert _value(metrics.ROLLBACKS, NS, "mm") == rollbacks + 1
    rr.handle_deployment(api.set_rollout("srv", done=True), now=clock)
    assert "rollout" not in status(api) and status(api)["currentVersion"] == 1
    assert _value(metrics.ROLLBACKS, NS, "mm") == rollbacks + 1
    assert _value(metrics.PROMOTIONS, NS, "mm") == promotions
    assert _value(metrics.CURRENT_VERSION, NS, "mm") == 1
