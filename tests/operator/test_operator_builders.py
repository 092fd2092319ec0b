"""Table tests for the pure builders."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelwatch_monitor import contract
from modelwatch_operator import builders, objects
from modelwatch_operator import constants as c
from modelwatch_operator.monitors import Monitor, read_monitor


def monitor(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": {"name": "iris", "target": "y"},
        "data": {"reference": {"uri": "file:///store/ref.csv"}},
        "store": {"uri": "file:///store", "volume": {"claimName": "store", "mountPath": "/store"}},
        "schedule": "*/5 * * * *",
        "images": {"monitor": "modelwatch/monitor:dev", "pullPolicy": "IfNotPresent"},
        "retrain": {"automl": {"timeBudgetSeconds": 30}},
    }
    base.update(spec)
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": "iris-mm", "namespace": "ml", "uid": "uid-1", "generation": 1},
        "spec": base,
    }


def monitor_of(**spec: Any) -> Monitor:
    """Return the :class:`Monitor` the operator reads from :func:`monitor`'s body."""
    return read_monitor(monitor(**spec))


def pod_spec_of(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    result: dict[str, Any] = spec["template"]["spec"]
    return result


JOB_BUILDERS = [
    pytest.param(lambda mm: builders.build_cronjob(mm), "check", id="cronjob"),
    pytest.param(
        lambda mm: builders.build_check_job(mm, name="iris-mm-check-now-1"), "check", id="check-job"
    ),
    pytest.param(lambda mm: builders.build_retrain_job(mm, version=2), "retrain", id="retrain"),
]


@pytest.mark.parametrize(("build", "kind"), JOB_BUILDERS)
def test_job_pods_are_restricted(build: Any, kind: str) -> None:
    manifest = build(monitor_of())
    pod = pod_spec_of(manifest)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {contract.CONFIG_MOUNT_DIR: "config", "/tmp": "tmp", "/store": "store"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "iris-mm-config"
    assert volumes["store"]["persistentVolumeClaim"]["claimName"] == "store"
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert container["args"][:3] == [kind, "--config", contract.CONFIG_PATH]


@pytest.mark.parametrize(
    ("build", "name", "component"),
    [
        (builders.build_config_map, "iris-mm-config", "config"),
        (builders.build_cronjob, "iris-mm-check", "check"),
        (lambda mm: builders.build_retrain_job(mm, version=7), "iris-mm-retrain-7", "retrain"),
    ],
)
def test_children_have_fixed_names_labels_and_owner(build: Any, name: str, component: str) -> None:
    manifest = build(monitor_of())
    meta = manifest["metadata"]
    assert meta["name"] == name
    assert meta["namespace"] == "ml"
    assert meta["labels"][c.LABEL_MONITOR] == "iris-mm"
    assert meta["labels"][c.LABEL_NAME] == "modelwatch"
    assert meta["labels"][c.LABEL_COMPONENT] == component
    (owner,) = meta["ownerReferences"]
    assert owner == {
        "apiVersion": "modelwatch.io/v1alpha1",
        "kind": "ModelMonitor",
        "name": "iris-mm",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


@pytest.mark.parametrize(
    ("spec", "schedule", "suspend"),
    [
        ({}, "*/5 * * * *", False),
        ({"suspend": True}, "*/5 * * * *", True),
        ({"schedule": "@hourly"}, "@hourly", False),
    ],
)
def test_cronjob_spec(spec: dict[str, Any], schedule: str, suspend: bool) -> None:
    cj = builders.build_cronjob(monitor_of(**spec))["spec"]
    assert cj["schedule"] == schedule
    assert cj["suspend"] is suspend
    assert cj["concurrencyPolicy"] == "Forbid"
    assert cj["successfulJobsHistoryLimit"] == 3
    assert cj["failedJobsHistoryLimit"] == 3
    job = cj["jobTemplate"]
    assert job["metadata"]["labels"][c.LABEL_JOB_KIND] == "check"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] >= 86400
    assert job["spec"]["template"]["metadata"]["labels"][c.LABEL_MONITOR] == "iris-mm"


@pytest.mark.parametrize(
    ("kwargs", "tail"),
    [
        ({"version": 1}, ["--version", "1"]),
        ({"version": 3, "champion_version": 2}, ["--version", "3", "--champion-version", "2"]),
        (
            {"version": 3, "champion_version": 2, "trigger_report": "r1"},
            ["--version", "3", "--trigger-report", "r1", "--champion-version", "2"],
        ),
    ],
)
def test_retrain_job_args_and_labels(kwargs: dict[str, Any], tail: list[str]) -> None:
    job = builders.build_retrain_job(monitor_of(), **kwargs)
    args = pod_spec_of(job)["containers"][0]["args"]
    assert args[3:] == tail
    labels = job["metadata"]["labels"]
    assert labels[c.LABEL_JOB_KIND] == "retrain"
    assert labels[c.LABEL_MODEL_VERSION] == str(kwargs["version"])
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    assert job["spec"]["activeDeadlineSeconds"] == 30 + c.RETRAIN_ACTIVE_DEADLINE_EXTRA_SECONDS


def test_retrain_resources_pass_through() -> None:
    resources = {"limits": {"memory": "1Gi"}, "requests": {"cpu": "500m"}}
    mm = monitor_of(retrain={"resources": resources})
    container = pod_spec_of(builders.build_retrain_job(mm, version=1))["containers"][0]
    assert container["resources"] == resources


def test_no_store_volume_without_claim() -> None:
    mm = monitor_of(store={"uri": "s3://bucket/models"})
    pod = pod_spec_of(builders.build_cronjob(mm))
    assert {v["name"] for v in pod["volumes"]} == {"config", "tmp"}


def test_config_map_carries_the_spec() -> None:
    cm = builders.build_config_map(monitor_of())
    config = contract.parse_job_config(cm["data"][contract.CONFIG_KEY])
    assert config.monitor == contract.MonitorRef(name="iris-mm", namespace="ml", uid="uid-1")
    assert config.spec.model.name == "iris"
    assert config.spec.retrain.automl.time_budget_seconds == 30
    assert json.loads(cm["data"][contract.CONFIG_KEY])["schema"] == contract.SCHEMA_VERSION


def test_config_map_writes_every_default_out() -> None:
    """The job reads the spec the operator parsed: defaults the body left out are written."""
    doc = json.loads(builders.build_config_map(monitor_of())["data"][contract.CONFIG_KEY])
    assert doc["spec"] == contract.parse_spec(monitor()["spec"]).to_doc()
    assert doc["spec"]["drift"]["numericTest"] == "ks"
    assert doc["spec"]["store"]["volume"] == {"claimName": "store", "mountPath": "/store"}
    assert doc["spec"]["retrain"]["automl"]["timeBudgetSeconds"] == 30


def test_job_pods_take_the_contract_defaults() -> None:
    body = monitor(store={"uri": "file:///store", "volume": {"claimName": "c"}})
    del body["spec"]["images"]
    container = pod_spec_of(builders.build_cronjob(read_monitor(body)))["containers"][0]
    assert container["image"] == contract.DEFAULT_MONITOR_IMAGE
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["store"] == "/store"


DEPLOYMENT = {
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {"name": "sidecar"},
                    {
                        "name": "server",
                        "env": [
                            {"name": "MODEL_VERSION", "value": "4"},
                            {"name": "MODEL_SHA256", "value": "abc"},
                        ],
                    },
                ]
            }
        }
    }
}


@pytest.mark.parametrize(
    ("container", "found", "env"),
    [
        (None, "sidecar", (None, None)),
        ("server", "server", (4, "abc")),
        ("missing", None, None),
    ],
)
def test_find_container_and_env(container: str | None, found: str | None, env: Any) -> None:
    cont = objects.deployment(DEPLOYMENT).container(container)
    if found is None:
        assert cont is None
        return
    assert cont is not None
    assert cont.name == found
    assert cont.model_env() == env


def test_rollout_patch_sets_env_annotation_and_deadline() -> None:
    mm = monitor_of(deployment={"name": "srv", "progressDeadlineSeconds": 45})
    patch = builders.build_rollout_patch(mm, container="server", version=5, sha256="f00")
    assert patch["metadata"]["labels"] == {c.LABEL_MONITOR: "iris-mm"}
    assert patch["spec"]["progressDeadlineSeconds"] == 45
    default = monitor_of(deployment={"name": "srv"})
    patch_default = builders.build_rollout_patch(default, container="s", version=1, sha256="f")
    assert patch_default["spec"]["progressDeadlineSeconds"] == 120
    template = patch["spec"]["template"]
    assert template["metadata"]["annotations"] == {c.ANNOTATION_MODEL_VERSION: "5"}
    assert template["spec"]["containers"] == [
        {
            "name": "server",
            "env": [
                {"name": "MODEL_VERSION", "value": "5"},
                {"name": "MODEL_SHA256", "value": "f00"},
            ],
        }
    ]


def test_rollout_patch_needs_a_deployment() -> None:
    with pytest.raises(ValueError, match=r"no spec\.deployment"):
        builders.build_rollout_patch(monitor_of(), container="s", version=1, sha256="f")
