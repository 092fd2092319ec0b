"""A sharded check on the real cluster: ``spec.check.parallelism: 2`` runs each check as
an Indexed Job of two pods, and its result equals the one-pod check's."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from tests.cluster.mw_operator_env import (
    MODEL,
    frame,
    hand_over,
    jobs,
    make_store,
    monitor,
    run_check,
    server_deployment,
    wait_status,
)

pytestmark = pytest.mark.cluster

Kube = Any


def _write_data(store: pathlib.Path) -> None:
    """A reference, labels, and the current window in four files (drifted x1 and x2)."""
    data = store / "data"
    (data / "current").mkdir(parents=True, exist_ok=True)
    frame(2000, concept="a", seed=1).drop(columns=["prediction"]).to_csv(
        data / "reference.csv", index=False
    )
    current = frame(2000, concept="a", seed=2, start_id=10_000, shift=0.6)
    for i in range(4):
        part = current.iloc[i * 500 : (i + 1) * 500]
        part.drop(columns=["y"]).to_parquet(data / "current" / f"part-{i}.parquet", index=False)
    current[["id", "y"]].to_csv(data / "labels.csv", index=False)


def _report(store: pathlib.Path, uri: str) -> dict[str, Any]:
    path = store / uri.removeprefix("file:///store/") / "report.json"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def test_a_sharded_check_equals_the_one_pod_check(operator: Kube, namespace: str) -> None:
    kube = operator
    store = make_store(kube, namespace)
    _write_data(store)
    hand_over(store)
    kube.apply(server_deployment(namespace, version=1, sha256="ab" * 32, serve=False))
    doc = monitor(namespace, retrain={"enabled": False}, check={"parallelism": 2})
    doc["spec"]["data"]["current"]["uri"] = "file:///store/data/current"
    kube.apply(doc)
    wait_status(
        kube,
        namespace,
        lambda s: s.get("observedGeneration") == 1,
        timeout=60,
        what="the status to be initialised",
    )
    cronjob = kube.get("cronjob", "iris-check", namespace)
    spec = cronjob["spec"]["jobTemplate"]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 2

    run_check(kube, namespace, "check-sharded")
    read = wait_status(
        kube,
        namespace,
        lambda s: s.get("lastCheckJob") == "check-sharded",
        timeout=300,
        what="the operator to read the sharded check",
    )
    assert "lastCheck" in read, read.get("lastFailure")
    sharded = read["lastCheck"]
    (job,) = [j for j in jobs(kube, namespace, "check") if j["metadata"]["name"] == "check-sharded"]
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["status"].get("succeeded") == 2, job["status"]
    uid = job["metadata"]["uid"]
    shards = store / MODEL / "shards" / uid
    assert sorted(p.name for p in shards.iterdir()) == ["plan.json", "shard-0.json", "shard-1.json"]
    plan = json.loads((shards / "plan.json").read_text())
    assert all(plan["parts"]), plan["parts"]  # both pods read a share of the four files

    # The same window in one pod.
    kube.kubectl(
        "patch", "mm", "iris", "-n", namespace, "--type", "merge",
        "-p", json.dumps({"spec": {"check": {"parallelism": 1}}}),
    )  # fmt: skip
    kube.wait_for(
        lambda: (
            "completionMode"
            not in kube.get("cronjob", "iris-check", namespace)["spec"]["jobTemplate"]["spec"]
        ),
        timeout=60,
        what="the CronJob to run checks in one pod again",
    )
    run_check(kube, namespace, "check-single")
    single = wait_status(
        kube,
        namespace,
        lambda s: s.get("lastCheckJob") == "check-single",
        timeout=300,
        what="the operator to read the one-pod check",
    )["lastCheck"]
    for key in ("datasetDrift", "nDrifted", "nFeatures", "rows", "metric", "qualityFindings"):
        assert sharded.get(key) == single.get(key), key
    assert sharded["nDrifted"] >= 2  # x1 and x2 moved
    one = {f["name"]: f for f in _report(store, single["reportUri"])["features"]}
    many = _report(store, sharded["reportUri"])
    assert many["shards"] == 2
    for f in many["features"]:
        ref = one[f["name"]]
        assert f["drift"] == ref["drift"], f["name"]
        assert abs(f["statistic"] - ref["statistic"]) <= f["error_bound"] + ref["error_bound"]
