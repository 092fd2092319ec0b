"""A champion whose artifact changed in the store after it was published: the retrain Job
refuses to unpickle it, the operator records why (``ChampionHashMismatch``, both hashes
named), and no version is published. The reason was once refused as ``InvalidResult``
because the operator and the Job declared their vocabularies apart."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from modelwatch_monitor import contract
from tests.cluster.mw_operator_env import (
    MODEL,
    condition,
    events,
    hand_over,
    monitor,
    served_version,
    setup_model,
    wait_status,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_a_tampered_champion_fails_the_retrain_and_publishes_nothing(
    operator: Any, namespace: str
) -> None:
    kube = operator
    store, sha1 = setup_model(kube, namespace, drifted=False)
    kube.apply(monitor(namespace))
    wait_status(
        kube,
        namespace,
        lambda s: s.get("currentVersion") == 1,
        timeout=90,
        what="the monitor at version 1",
    )
    artifact = store / MODEL / "versions" / "1" / contract.MODEL_FILE
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    tampered = hashlib.sha256(artifact.read_bytes()).hexdigest()
    hand_over(store)
    assert tampered != sha1

    kube.kubectl("annotate", "modelmonitor", "iris", "-n", namespace, "modelwatch.io/retrain-now=1")
    st = wait_status(
        kube,
        namespace,
        lambda s: condition(s, "Retraining").get("reason") == "ChampionHashMismatch",
        timeout=300,
        what="Retraining=False ChampionHashMismatch",
    )
    retraining = condition(st, "Retraining")
    assert retraining["status"] == "False"
    assert sha1 in retraining["message"] and tampered in retraining["message"]
    assert st["lastFailure"]["reason"] == "ChampionHashMismatch"
    # Nothing published: no version 2 in the store or in status, v1 still serves.
    assert not (store / MODEL / "versions" / "2").exists()
    assert [v["version"] for v in st.get("versions") or []] == [1]
    assert st["currentVersion"] == 1 and served_version(kube, namespace) == "1"
    assert not events(kube, namespace, reason="InvalidResult")
