"""Pure builders: ModelMonitor body in, Kubernetes manifest out. No API calls here.

Every child gets a fixed name (``<mm>-config``, ``<mm>-check``, ``<mm>-retrain-<N>``), an
owner reference to its ModelMonitor (so deleting the monitor garbage-collects it), and the
labels ``app.kubernetes.io/*`` plus ``modelwatch.io/monitor=<mm>``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from modelwatch_monitor import contract
from modelwatch_operator import constants as c

Body = Mapping[str, Any]
Manifest = dict[str, Any]

DEFAULT_MONITOR_IMAGE = "modelwatch/monitor:dev"
DEFAULT_PULL_POLICY = "IfNotPresent"
DEFAULT_STORE_MOUNT = "/store"


def _meta(body: Body) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = body.get("metadata") or {}
    return meta


def monitor_name(body: Body) -> str:
    return str(_meta(body)["name"])


def monitor_namespace(body: Body) -> str:
    return str(_meta(body).get("namespace") or "default")


def monitor_spec(body: Body) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = body.get("spec") or {}
    return spec


def monitor_generation(body: Body) -> int:
    return int(_meta(body).get("generation") or 0)


def get_labels(body: Body, *, component: str) -> dict[str, str]:
    """Return the labels every child of one ModelMonitor carries."""
    return {
        c.LABEL_NAME: c.APP_NAME,
        c.LABEL_INSTANCE: monitor_name(body),
        c.LABEL_COMPONENT: component,
        c.LABEL_PART_OF: c.APP_NAME,
        c.LABEL_MANAGED_BY: c.OPERATOR_NAME,
        c.LABEL_MONITOR: monitor_name(body),
    }


def get_owner_reference(body: Body) -> dict[str, Any]:
    """Return the controller owner reference pointing at the ModelMonitor."""
    meta = _meta(body)
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _child_metadata(body: Body, name: str, *, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": monitor_namespace(body),
        "labels": get_labels(body, component=component),
        "ownerReferences": [get_owner_reference(body)],
    }


def get_job_config(body: Body) -> dict[str, Any]:
    """Return the job config document (the spec with the apiserver's defaults applied)."""
    spec = copy.deepcopy(dict(body.get("spec") or {}))
    return contract.build_job_config(
        name=monitor_name(body),
        namespace=monitor_namespace(body),
        spec=spec,
        uid=str(_meta(body).get("uid", "")),
    )


def build_config_map(body: Body) -> Manifest:
    """Return ConfigMap ``<mm>-config`` holding the job config under ``contract.CONFIG_KEY``."""
    doc = get_job_config(body)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _child_metadata(
            body, c.config_map_name(monitor_name(body)), component="config"
        ),
        "data": {contract.CONFIG_KEY: json.dumps(doc, indent=2, sort_keys=True)},
    }


def _restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _restricted_pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": c.RUN_AS_USER,
        "runAsGroup": c.RUN_AS_USER,
        "fsGroup": c.RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _store_volume(spec: Mapping[str, Any]) -> tuple[list[Manifest], list[Manifest]]:
    """Return (volumes, volumeMounts) for spec.store.volume; empty when absent."""
    volume = (spec.get("store") or {}).get("volume")
    if not volume:
        return [], []
    return (
        [{"name": "store", "persistentVolumeClaim": {"claimName": volume["claimName"]}}],
        [{"name": "store", "mountPath": volume.get("mountPath") or DEFAULT_STORE_MOUNT}],
    )


def _store_env(spec: Mapping[str, Any]) -> list[Manifest]:
    """Return the env for an object store: its endpoint, and its key pair as Secret refs.

    The key pair never appears as a value: only ``secretKeyRef`` to the Secret named by
    ``spec.store.credentials``, so nothing secret lands in a manifest or the job config.

    >>> env = _store_env({"store": {"uri": "s3://b/p", "credentials": {"secretName": "s3"}}})
    >>> env[0]["name"], env[0]["valueFrom"]
    ('AWS_ACCESS_KEY_ID', {'secretKeyRef': {'name': 's3', 'key': 'AWS_ACCESS_KEY_ID'}})
    """
    store: Mapping[str, Any] = spec.get("store") or {}
    env: list[Manifest] = []
    if store.get("endpoint"):
        env.append({"name": contract.ENV_S3_ENDPOINT, "value": store["endpoint"]})
    credentials: Mapping[str, Any] = store.get("credentials") or {}
    if credentials:
        for name, key_field, default in (
            (contract.ENV_S3_ACCESS_KEY_ID, "accessKeyIdKey", "AWS_ACCESS_KEY_ID"),
            (contract.ENV_S3_SECRET_ACCESS_KEY, "secretAccessKeyKey", "AWS_SECRET_ACCESS_KEY"),
        ):
            ref = {"name": credentials["secretName"], "key": credentials.get(key_field) or default}
            env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return env


def build_job_pod_template(
    body: Body,
    *,
    container: str,
    args: list[str],
    labels: Mapping[str, str],
    resources: Mapping[str, Any] | None = None,
) -> Manifest:
    """Return the pod template shared by check and retrain Jobs.

    Restricted security context, the config ConfigMap at ``contract.CONFIG_MOUNT_DIR``, the
    store PVC at its mount path, an emptyDir at /tmp, and the result in the termination
    message (``FallbackToLogsOnError`` so a crash still leaves its reason).
    """
    spec: Mapping[str, Any] = body.get("spec") or {}
    images: Mapping[str, Any] = spec.get("images") or {}
    store_volumes, store_mounts = _store_volume(spec)
    volumes: list[Manifest] = [
        {"name": "config", "configMap": {"name": c.config_map_name(monitor_name(body))}},
        {"name": "tmp", "emptyDir": {}},
        *store_volumes,
    ]
    mounts: list[Manifest] = [
        {"name": "config", "mountPath": contract.CONFIG_MOUNT_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": c.TMP_MOUNT},
        *store_mounts,
    ]
    main: Manifest = {
        "name": container,
        "image": images.get("monitor") or DEFAULT_MONITOR_IMAGE,
        "imagePullPolicy": images.get("pullPolicy") or DEFAULT_PULL_POLICY,
        "command": ["modelwatch"],
        "args": args,
        "env": [
            {"name": "HOME", "value": c.TMP_MOUNT},
            {"name": "TMPDIR", "value": c.TMP_MOUNT},
            {"name": "MPLCONFIGDIR", "value": c.TMP_MOUNT},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            *_store_env(spec),
        ],
        "volumeMounts": mounts,
        "terminationMessagePath": contract.TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": _restricted_container_security(),
    }
    if resources:
        main["resources"] = copy.deepcopy(dict(resources))
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": _restricted_pod_security(),
            "containers": [main],
            "volumes": volumes,
        },
    }


def _job_spec(template: Manifest, *, active_deadline: int) -> Manifest:
    return {
        "backoffLimit": c.JOB_BACKOFF_LIMIT,
        "ttlSecondsAfterFinished": c.JOB_TTL_SECONDS,
        "activeDeadlineSeconds": active_deadline,
        "template": template,
    }


def check_labels(body: Body) -> dict[str, str]:
    return {**get_labels(body, component="check"), c.LABEL_JOB_KIND: c.JOB_KIND_CHECK}


def check_args(body: Body) -> list[str]:
    """Return the check's arguments: the job config, and the version that serves.

    The version that serves (``status.currentVersion``) and when it began serving
    (``status.servingSince``) go on the command line, so each check judges only the
    traffic that version served. The CronJob is re-applied when they change.

    >>> check_args({"status": {"currentVersion": 2, "servingSince": "2026-11-29T12:00:00Z"}})[3:]
    ['--serving-version', '2', '--serving-since', '2026-11-29T12:00:00Z']
    >>> check_args({})
    ['check', '--config', '/etc/modelwatch/config.json']
    """
    status: Mapping[str, Any] = body.get("status") or {}
    args = ["check", "--config", contract.CONFIG_PATH]
    if status.get("currentVersion") is not None:
        args += [contract.ARG_SERVING_VERSION, str(int(status["currentVersion"]))]
        if status.get("servingSince"):
            args += [contract.ARG_SERVING_SINCE, str(status["servingSince"])]
    return args


def check_args_of(cronjob: Manifest) -> list[str]:
    """Return the check arguments a CronJob manifest was built with."""
    args: list[str] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    return list(args)


def check_parallelism(body: Body) -> int:
    """Return ``spec.check.parallelism``: the pods one check runs on (default 1).

    >>> check_parallelism({"spec": {"check": {"parallelism": 4}}}), check_parallelism({})
    (4, 1)
    """
    spec: Mapping[str, Any] = body.get("spec") or {}
    check: Mapping[str, Any] = spec.get("check") or {}
    return max(1, int(check.get("parallelism") or 1))


def build_check_job_spec(body: Body) -> Manifest:
    """Return the Job spec of one check run (used by the CronJob and by check-now).

    With ``spec.check.parallelism`` N > 1 the Job is Indexed: N pods run at once, each
    sketching its share of the window (``--shards N``; Kubernetes sets
    ``JOB_COMPLETION_INDEX``, and the Job's uid names the run the shards share); index 0
    merges and carries the result. A failed pod retries only its own index
    (``backoffLimitPerIndex``), except when the check could not do its job (exit code 1:
    the same data gives the same answer), which fails the index, and with it the Job
    (``maxFailedIndexes: 0``). Evictions do not count against the retries.
    """
    labels = check_labels(body)
    shards = check_parallelism(body)
    args = check_args(body)
    if shards > 1:
        args += [contract.ARG_SHARDS, str(shards)]
    template = build_job_pod_template(
        body,
        container=c.CHECK_CONTAINER,
        args=args,
        labels=labels,
    )
    job = _job_spec(template, active_deadline=c.CHECK_ACTIVE_DEADLINE_SECONDS)
    if shards == 1:
        return job
    template["spec"]["containers"][0]["env"].append(
        {
            "name": contract.ENV_SHARD_RUN,
            "valueFrom": {
                "fieldRef": {"fieldPath": f"metadata.labels['{c.LABEL_JOB_CONTROLLER_UID}']"}
            },
        }
    )
    del job["backoffLimit"]  # per index instead: one pod's failure retries only its share
    job.update(
        completionMode="Indexed",
        completions=shards,
        parallelism=shards,
        backoffLimitPerIndex=c.SHARD_BACKOFF_LIMIT_PER_INDEX,
        maxFailedIndexes=0,
        podFailurePolicy={
            "rules": [
                {
                    "action": "FailIndex",
                    "onExitCodes": {
                        "containerName": c.CHECK_CONTAINER,
                        "operator": "In",
                        "values": [1],
                    },
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
    )
    return job


def build_cronjob(body: Body) -> Manifest:
    """Return CronJob ``<mm>-check``: one check per schedule tick, never two at once.

    >>> mm = {"metadata": {"name": "iris", "namespace": "ml", "uid": "u"},
    ...       "spec": {"schedule": "*/5 * * * *", "suspend": True}}
    >>> cj = build_cronjob(mm)
    >>> cj["metadata"]["name"], cj["spec"]["concurrencyPolicy"], cj["spec"]["suspend"]
    ('iris-check', 'Forbid', True)
    """
    spec: Mapping[str, Any] = body.get("spec") or {}
    labels = check_labels(body)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _child_metadata(body, c.cronjob_name(monitor_name(body)), component="check"),
        "spec": {
            "schedule": spec.get("schedule") or "0 * * * *",
            "suspend": bool(spec.get("suspend", False)),
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": c.CRON_STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": c.HISTORY_LIMIT_SUCCESSFUL,
            "failedJobsHistoryLimit": c.HISTORY_LIMIT_FAILED,
            "jobTemplate": {"metadata": {"labels": labels}, "spec": build_check_job_spec(body)},
        },
    }


def build_check_job(body: Body, *, name: str) -> Manifest:
    """Return a one-off check Job (``modelwatch.io/check-now``), owned by the monitor."""
    meta = _child_metadata(body, name, component="check")
    meta["labels"] = check_labels(body)
    meta["annotations"] = {c.ANNOTATION_TRIGGER: "manual"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": build_check_job_spec(body),
    }


def build_retrain_job(
    body: Body,
    *,
    version: int,
    champion_version: int | None = None,
    champion_sha256: str | None = None,
    trigger_report: str | None = None,
    trigger: str = "",
    since: str | None = None,
) -> Manifest:
    """Return Job ``<mm>-retrain-<version>``: train a challenger and write it as ``version``.

    >>> mm = {"metadata": {"name": "iris", "namespace": "ml", "uid": "u"}, "spec": {}}
    >>> job = build_retrain_job(mm, version=3, champion_version=2)
    >>> job["metadata"]["name"], job["spec"]["template"]["spec"]["containers"][0]["args"][-2:]
    ('iris-retrain-3', ['--champion-version', '2'])

    ``champion_sha256`` (from ``status.versions``) goes along as ``--champion-sha256``:
    the Job refuses a champion artifact with another hash. ``since`` (when the violations
    began, :func:`policies.drift_onset`) goes along as ``--since``: recent training data
    starts there.
    """
    spec: Mapping[str, Any] = body.get("spec") or {}
    retrain: Mapping[str, Any] = spec.get("retrain") or {}
    automl: Mapping[str, Any] = retrain.get("automl") or {}
    labels = {
        **get_labels(body, component="retrain"),
        c.LABEL_JOB_KIND: c.JOB_KIND_RETRAIN,
        c.LABEL_MODEL_VERSION: str(int(version)),
    }
    args = ["retrain", "--config", contract.CONFIG_PATH, "--version", str(int(version))]
    if trigger_report:
        args += ["--trigger-report", trigger_report]
    if champion_version is not None:
        args += ["--champion-version", str(int(champion_version))]
        if champion_sha256:
            args += ["--champion-sha256", champion_sha256]
    if since:
        args += ["--since", str(since)]
    template = build_job_pod_template(
        body,
        container=c.RETRAIN_CONTAINER,
        args=args,
        labels=labels,
        resources=retrain.get("resources"),
    )
    budget = int(automl.get("timeBudgetSeconds") or 60)
    meta = _child_metadata(
        body, c.retrain_job_name(monitor_name(body), version), component="retrain"
    )
    meta["labels"] = labels
    if trigger:
        meta["annotations"] = {c.ANNOTATION_TRIGGER: trigger}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": _job_spec(
            template, active_deadline=budget + c.RETRAIN_ACTIVE_DEADLINE_EXTRA_SECONDS
        ),
    }


def find_container(deployment: Body, name: str | None) -> Mapping[str, Any] | None:
    """Return the serving container (by name, else the first), or None."""
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or []
    if not containers:
        return None
    if not name:
        first: Mapping[str, Any] = containers[0]
        return first
    for cont in containers:
        if cont.get("name") == name:
            found: Mapping[str, Any] = cont
            return found
    return None


def read_model_env(container: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """Return (MODEL_VERSION, MODEL_SHA256) from a container's literal env."""
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    raw_version = env.get(contract.ENV_MODEL_VERSION)
    try:
        version = int(raw_version) if raw_version not in (None, "") else None
    except (TypeError, ValueError):
        version = None
    sha = env.get(contract.ENV_MODEL_SHA256) or None
    return version, sha


def build_takeover_patch(body: Body) -> Manifest:
    """Return the merge patch that labels the serving Deployment as watched by this monitor."""
    return {"metadata": {"labels": {c.LABEL_MONITOR: monitor_name(body)}}}


def build_rollout_patch(body: Body, *, container: str, version: int, sha256: str) -> Manifest:
    """Return the strategic merge patch that rolls the serving Deployment to ``version``.

    It sets the container env MODEL_VERSION/MODEL_SHA256 (merged by name) and the pod
    template annotation ``modelwatch.io/model-version``, so the pod template changes and the
    Deployment controller performs a real rolling update.

    >>> mm = {"metadata": {"name": "iris"},
    ...       "spec": {"deployment": {"name": "srv", "progressDeadlineSeconds": 60}}}
    >>> p = build_rollout_patch(mm, container="server", version=2, sha256="ab")
    >>> p["spec"]["progressDeadlineSeconds"], p["spec"]["template"]["spec"]["containers"][0]["env"]
    (60, [{'name': 'MODEL_VERSION', 'value': '2'}, {'name': 'MODEL_SHA256', 'value': 'ab'}])
    """
    spec: Mapping[str, Any] = body.get("spec") or {}
    deployment: Mapping[str, Any] = spec.get("deployment") or {}
    return {
        "metadata": {"labels": {c.LABEL_MONITOR: monitor_name(body)}},
        "spec": {
            "progressDeadlineSeconds": int(deployment.get("progressDeadlineSeconds") or 120),
            "template": {
                "metadata": {"annotations": {c.ANNOTATION_MODEL_VERSION: str(int(version))}},
                "spec": {
                    "containers": [
                        {
                            "name": container,
                            "env": [
                                {"name": contract.ENV_MODEL_VERSION, "value": str(int(version))},
                                {"name": contract.ENV_MODEL_SHA256, "value": sha256},
                            ],
                        }
                    ]
                },
            },
        },
    }
