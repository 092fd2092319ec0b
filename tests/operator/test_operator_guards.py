"""Table tests of the pure guards: never adopt, one monitor per Deployment, image allowlist."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from modelwatch_monitor import contract
from modelwatch_operator import builders, children, guards
from modelwatch_operator import constants as c
from modelwatch_operator.monitors import Monitor, read_monitor
from tests.operator.test_operator_builders import monitor

REPO = pathlib.Path(__file__).resolve().parents[2]


def _obj(*owner_uids: str) -> dict[str, Any]:
    return {"metadata": {"name": "x", "ownerReferences": [{"uid": u} for u in owner_uids]}}


CHILDREN = [
    ("absent", None, "u1", True, guards.ABSENT),
    ("owned", _obj("u1"), "u1", True, guards.OWNED),
    ("owned among others", _obj("other", "u1"), "u1", True, guards.OWNED),
    ("no owner: the user's", {"metadata": {"name": "x"}}, "u1", False, guards.NAME_CONFLICT),
    ("another owner", _obj("other"), "u1", False, guards.NAME_CONFLICT),
    ("a recreated monitor of the same name", _obj("u0"), "u1", False, guards.NAME_CONFLICT),
    ("monitor without uid owns nothing", _obj(""), "", False, guards.NAME_CONFLICT),
]


@pytest.mark.parametrize(
    ("existing", "uid", "fire", "reason"),
    [row[1:] for row in CHILDREN],
    ids=[row[0] for row in CHILDREN],
)
def test_may_write_child(existing: Any, uid: str, fire: bool, reason: str) -> None:
    decision = guards.may_write_child(existing, kind="ConfigMap", name="app-config", owner_uid=uid)
    assert (decision.fire, decision.reason) == (fire, reason)
    if not fire:
        assert 'ConfigMap "app-config" already exists' in decision.message
        assert "never adopts" in decision.message


def _dep(label: str | None) -> dict[str, Any]:
    labels = {c.LABEL_MONITOR: label} if label is not None else {}
    return {"metadata": {"name": "srv", "namespace": "ml", "labels": {"app": "srv", **labels}}}


def _mm(name: str, deployment: str | None = "srv", *, deleting: bool = False) -> Monitor:
    body = monitor(**({"deployment": {"name": deployment}} if deployment else {}))
    body["metadata"] = {"name": name, "namespace": "ml"}
    if deleting:
        body["metadata"]["deletionTimestamp"] = "2026-11-23T12:00:00Z"
    return read_monitor(body)


CLAIMS = [
    ("unlabelled", _dep(None), None, True, guards.UNCLAIMED),
    ("empty label", _dep(""), None, True, guards.UNCLAIMED),
    ("ours", _dep("b"), None, True, guards.CLAIMED_BY_US),
    ("claimant gone", _dep("a"), None, True, guards.STALE_CLAIM),
    ("claimant being deleted", _dep("a"), _mm("a", deleting=True), True, guards.STALE_CLAIM),
    ("claimant serves another", _dep("a"), _mm("a", "other"), True, guards.STALE_CLAIM),
    ("claimant without deployment", _dep("a"), _mm("a", None), True, guards.STALE_CLAIM),
    ("claimed by a live monitor", _dep("a"), _mm("a"), False, guards.DEPLOYMENT_CLAIMED),
]


@pytest.mark.parametrize(
    ("deployment", "claimant", "fire", "reason"),
    [row[1:] for row in CLAIMS],
    ids=[row[0] for row in CLAIMS],
)
def test_deployment_claim(
    deployment: dict[str, Any], claimant: Monitor | None, fire: bool, reason: str
) -> None:
    decision = guards.deployment_claim(deployment, monitor="b", claimant=claimant)
    assert (decision.fire, decision.reason) == (fire, reason)


def test_claimed_message_names_the_other_monitor() -> None:
    decision = guards.deployment_claim(_dep("a"), monitor="b", claimant=_mm("a"))
    assert decision.message.startswith('spec.deployment.name: deployment "srv" is claimed by')
    assert 'ModelMonitor "a"' in decision.message


ALLOWLISTS = [
    (None, (contract.DEFAULT_MONITOR_IMAGE,)),
    ("", (contract.DEFAULT_MONITOR_IMAGE,)),
    (" , ", (contract.DEFAULT_MONITOR_IMAGE,)),
    ("a/b:1", ("a/b:1",)),
    (" a/b:1 ,reg.io/mw/*, ", ("a/b:1", "reg.io/mw/*")),
]


@pytest.mark.parametrize(("value", "expected"), ALLOWLISTS)
def test_parse_allowed_images(value: str | None, expected: tuple[str, ...]) -> None:
    assert guards.parse_allowed_images(value, default=(contract.DEFAULT_MONITOR_IMAGE,)) == (
        expected
    )


IMAGES = [
    ("modelwatch/monitor:dev", ["modelwatch/monitor:dev"], True),
    ("modelwatch/monitor:v2", ["modelwatch/monitor:dev"], False),
    ("docker.io/modelwatch/monitor:dev", ["modelwatch/monitor:dev"], False),
    ("reg.io/mw/monitor:1.2", ["reg.io/mw/*"], True),
    ("reg.io/mw/monitor@sha256:" + "a" * 64, ["reg.io/mw/monitor@sha256:*"], True),
    ("reg.io/mw-evil/monitor:1", ["reg.io/mw/*"], False),
    ("Modelwatch/monitor:dev", ["modelwatch/monitor:dev"], False),
    ("modelwatch/monitor:dev", ["a", "modelwatch/monitor:?ev"], True),
    ("anything", [], False),
]


@pytest.mark.parametrize(("image", "patterns", "fire"), IMAGES)
def test_image_allowed(image: str, patterns: list[str], fire: bool) -> None:
    decision = guards.image_allowed(image, patterns, field="spec.images.monitor")
    assert decision.fire is fire
    if not fire:
        assert decision.reason == guards.IMAGE_NOT_ALLOWED
        assert decision.message.startswith(f'spec.images.monitor: image "{image}" is not allowed')
        assert guards.ENV_ALLOWED_IMAGES in decision.message


def test_manifest_images_of_the_built_children() -> None:
    mm = read_monitor(monitor(images={"monitor": "reg.io/mw/monitor:1"}))
    assert guards.manifest_images(builders.build_cronjob(mm)) == ["reg.io/mw/monitor:1"]
    assert guards.manifest_images(builders.build_retrain_job(mm, version=2)) == [
        "reg.io/mw/monitor:1"
    ]
    assert guards.manifest_images(builders.build_check_job(mm, name="iris-check-now-1")) == [
        "reg.io/mw/monitor:1"
    ]


def test_shipped_allowlist_allows_the_default_monitor_image() -> None:
    """The operator manifest, the CRD default and the contract agree on the default image."""
    deployment = yaml.safe_load((REPO / "manifests/operator/deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    patterns = guards.parse_allowed_images(env[guards.ENV_ALLOWED_IMAGES], default=())
    crd = yaml.safe_load((REPO / "crds/modelmonitors.modelwatch.io.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    crd_default = spec["properties"]["images"]["properties"]["monitor"]["default"]
    assert crd_default == contract.DEFAULT_MONITOR_IMAGE
    assert guards.image_allowed(crd_default, patterns, field="spec.images.monitor").fire


def test_updated_child_keeps_what_others_added() -> None:
    ours = {"uid": "u1", "kind": "ModelMonitor", "name": "mm", "controller": True}
    existing = {
        "metadata": {
            "name": "mm-check",
            "resourceVersion": "9",
            "labels": {c.LABEL_MONITOR: "old", "team": "ml"},
            "annotations": {"note": "kept"},
            "finalizers": ["example.com/audit"],
            "ownerReferences": [
                {**ours, "name": "stale-copy"},
                {"uid": "app", "kind": "Application", "name": "argo"},
                {"uid": "ctl", "kind": "Other", "name": "x", "controller": True},
            ],
        },
        "spec": {"schedule": "old"},
    }
    desired = {
        "kind": "CronJob",
        "metadata": {
            "name": "mm-check",
            "labels": {c.LABEL_MONITOR: "mm"},
            "ownerReferences": [ours],
        },
        "spec": {"schedule": "new"},
    }
    new = children.updated_child(existing, desired)
    assert new["spec"] == {"schedule": "new"}
    meta = new["metadata"]
    assert meta["resourceVersion"] == "9"
    assert meta["labels"] == {c.LABEL_MONITOR: "mm", "team": "ml"}
    assert meta["annotations"] == {"note": "kept"}
    assert meta["finalizers"] == ["example.com/audit"]
    assert meta["ownerReferences"] == [{"uid": "app", "kind": "Application", "name": "argo"}, ours]
    assert desired["metadata"] == {  # not mutated
        "name": "mm-check",
        "labels": {c.LABEL_MONITOR: "mm"},
        "ownerReferences": [ours],
    }
