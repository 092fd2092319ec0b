"""Pure builders: a :class:`~modelwatch_operator.monitors.Monitor` in, a Kubernetes manifest
out. No API calls here.

Every child gets a fixed name (``<mm>-config``, ``<mm>-check``, ``<mm>-retrain-<N>``), an
owner reference to its ModelMonitor (so deleting the monitor garbage-collects it), and the
labels ``app.kubernetes.io/*`` plus ``modelwatch.io/monitor=<mm>``. Every value comes from
the parsed spec and status, whose models hold the defaults.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping

from modelwatch_monitor import contract
from modelwatch_operator import constants as c
from modelwatch_operator.monitors import Monitor
from modelwatch_operator.objects import Document, Manifest


def get_labels(mm: Monitor, *, component: str) -> dict[str, str]:
    """Return the labels every child of one ModelMonitor carries."""
    return {
        c.LABEL_NAME: c.APP_NAME,
        c.LABEL_INSTANCE: mm.name,
        c.LABEL_COMPONENT: component,
        c.LABEL_PART_OF: c.APP_NAME,
        c.LABEL_MANAGED_BY: c.OPERATOR_NAME,
        c.LABEL_MONITOR: mm.name,
    }


def get_owner_reference(mm: Monitor) -> dict[str, str | bool]:
    """Return the controller owner reference pointing at the ModelMonitor."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "name": mm.name,
        "uid": mm.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _child_metadata(mm: Monitor, name: str, *, component: str) -> Manifest:
    return {
        "name": name,
        "namespace": mm.namespace,
        "labels": get_labels(mm, component=component),
        "ownerReferences": [get_owner_reference(mm)],
    }


def get_job_config(mm: Monitor) -> Manifest:
    """Return the job config document: the parsed spec with every default written out."""
    return contract.build_job_config(name=mm.name, namespace=mm.namespace, uid=mm.uid, spec=mm.spec)


def build_config_map(mm: Monitor) -> Manifest:
    """Return ConfigMap ``<mm>-config`` holding the job config under ``contract.CONFIG_KEY``."""
    doc = get_job_config(mm)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _child_metadata(mm, c.config_map_name(mm.name), component="config"),
        "data": {contract.CONFIG_KEY: json.dumps(doc, indent=2, sort_keys=True)},
    }


def _restricted_container_security() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _restricted_pod_security() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": c.RUN_AS_USER,
        "runAsGroup": c.RUN_AS_USER,
        "fsGroup": c.RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _store_volume(store: contract.StoreSpec) -> tuple[list[Manifest], list[Manifest]]:
    """Return (volumes, volumeMounts) for spec.store.volume; empty when absent."""
    volume = store.volume
    if volume is None:
        return [], []
    return (
        [{"name": "store", "persistentVolumeClaim": {"claimName": volume.claim_name}}],
        [{"name": "store", "mountPath": volume.mount_path}],
    )


def _store_env(store: contract.StoreSpec) -> list[Manifest]:
    """Return the env for an object store: its endpoint, and its key pair as Secret refs.

    The key pair never appears as a value: only ``secretKeyRef`` to the Secret named by
    ``spec.store.credentials``, so nothing secret lands in a manifest or the job config.

    >>> store = contract.StoreSpec.model_validate(
    ...     {"uri": "s3://b/p", "credentials": {"secretName": "s3"}})
    >>> env = _store_env(store)
    >>> env[0]["name"], env[0]["valueFrom"]
    ('AWS_ACCESS_KEY_ID', {'secretKeyRef': {'name': 's3', 'key': 'AWS_ACCESS_KEY_ID'}})
    """
    env: list[Manifest] = []
    if store.endpoint:
        env.append({"name": contract.ENV_S3_ENDPOINT, "value": store.endpoint})
    credentials = store.credentials
    if credentials is not None:
        for name, key in (
            (contract.ENV_S3_ACCESS_KEY_ID, credentials.access_key_id_key),
            (contract.ENV_S3_SECRET_ACCESS_KEY, credentials.secret_access_key_key),
        ):
            ref = {"name": credentials.secret_name, "key": key}
            env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return env


def build_job_pod_template(
    mm: Monitor,
    *,
    container: str,
    args: list[str],
    labels: Mapping[str, str],
    resources: Document | None = None,
) -> Manifest:
    """Return the pod template shared by check and retrain Jobs.

    Restricted security context, the config ConfigMap at ``contract.CONFIG_MOUNT_DIR``, the
    store PVC at its mount path, an emptyDir at /tmp, and the result in the termination
    message (``FallbackToLogsOnError`` so a crash still leaves its reason).
    """
    store_volumes, store_mounts = _store_volume(mm.spec.store)
    volumes: list[Manifest] = [
        {"name": "config", "configMap": {"name": c.config_map_name(mm.name)}},
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
        "image": mm.spec.images.monitor,
        "imagePullPolicy": mm.spec.images.pull_policy,
        "command": ["modelwatch"],
        "args": args,
        "env": [
            {"name": "HOME", "value": c.TMP_MOUNT},
            {"name": "TMPDIR", "value": c.TMP_MOUNT},
            {"name": "MPLCONFIGDIR", "value": c.TMP_MOUNT},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            *_store_env(mm.spec.store),
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


def check_labels(mm: Monitor) -> dict[str, str]:
    return {**get_labels(mm, component="check"), c.LABEL_JOB_KIND: c.JOB_KIND_CHECK}


def check_args(status: contract.MonitorStatus) -> list[str]:
    """Return the check's arguments: the job config, and the version that serves.

    The version that serves (``status.currentVersion``) and when it began serving
    (``status.servingSince``) go on the command line, so each check judges only the
    traffic that version served. The CronJob is re-applied when they change.

    >>> serving = contract.MonitorStatus(current_version=2, serving_since="2026-11-29T12:00:00Z")
    >>> check_args(serving)[3:]
    ['--serving-version', '2', '--serving-since', '2026-11-29T12:00:00Z']
    >>> check_args(contract.MonitorStatus())
    ['check', '--config', '/etc/modelwatch/config.json']
    """
    args = ["check", "--config", contract.CONFIG_PATH]
    if status.current_version is not None:
        args += [contract.ARG_SERVING_VERSION, str(status.current_version)]
        if status.serving_since:
            args += [contract.ARG_SERVING_SINCE, status.serving_since]
    return args


def build_check_job_spec(mm: Monitor) -> Manifest:
    """Return the Job spec of one check run (used by the CronJob and by check-now).

    With ``spec.check.parallelism`` N > 1 the Job is Indexed: N pods run at once, each
    sketching its share of the window (``--shards N``; Kubernetes sets
    ``JOB_COMPLETION_INDEX``, and the Job's uid names the run the shards share); index 0
    merges and carries the result. A failed pod retries only its own index
    (``backoffLimitPerIndex``), except when the check could not do its job (exit code 1:
    the same data gives the same answer), which fails the index, and with it the Job
    (``maxFailedIndexes: 0``). Evictions do not count against the retries.
    """
    labels = check_labels(mm)
    shards = mm.spec.check.parallelism
    args = check_args(mm.status)
    if shards > 1:
        args += [contract.ARG_SHARDS, str(shards)]
    template = build_job_pod_template(
        mm,
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


def build_cronjob(mm: Monitor) -> Manifest:
    """Return CronJob ``<mm>-check``: one check per schedule tick, never two at once.

    >>> from modelwatch_operator.monitors import read_monitor
    >>> mm = read_monitor({"metadata": {"name": "iris", "namespace": "ml", "uid": "u"},
    ...     "spec": {"model": {"name": "iris", "target": "y"}, "store": {"uri": "/store"},
    ...              "data": {"reference": {"uri": "/store/ref.csv"}},
    ...              "schedule": "*/5 * * * *", "suspend": True}})
    >>> cj = build_cronjob(mm)
    >>> cj["metadata"]["name"], cj["spec"]["concurrencyPolicy"], cj["spec"]["suspend"]
    ('iris-check', 'Forbid', True)
    """
    labels = check_labels(mm)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _child_metadata(mm, c.cronjob_name(mm.name), component="check"),
        "spec": {
            "schedule": mm.spec.schedule,
            "suspend": mm.spec.suspend,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": c.CRON_STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": c.HISTORY_LIMIT_SUCCESSFUL,
            "failedJobsHistoryLimit": c.HISTORY_LIMIT_FAILED,
            "jobTemplate": {"metadata": {"labels": labels}, "spec": build_check_job_spec(mm)},
        },
    }


def build_check_job(mm: Monitor, *, name: str) -> Manifest:
    """Return a one-off check Job (``modelwatch.io/check-now``), owned by the monitor."""
    meta = _child_metadata(mm, name, component="check")
    meta["labels"] = check_labels(mm)
    meta["annotations"] = {c.ANNOTATION_TRIGGER: "manual"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": build_check_job_spec(mm),
    }


def build_retrain_job(
    mm: Monitor,
    *,
    version: int,
    champion_version: int | None = None,
    champion_sha256: str | None = None,
    trigger_report: str | None = None,
    trigger: str = "",
    since: str | None = None,
) -> Manifest:
    """Return Job ``<mm>-retrain-<version>``: train a challenger and write it as ``version``.

    >>> from modelwatch_operator.monitors import read_monitor
    >>> mm = read_monitor({"metadata": {"name": "iris", "namespace": "ml", "uid": "u"},
    ...     "spec": {"model": {"name": "iris", "target": "y"}, "store": {"uri": "/store"},
    ...              "data": {"reference": {"uri": "/store/ref.csv"}}}})
    >>> job = build_retrain_job(mm, version=3, champion_version=2)
    >>> job["metadata"]["name"], job["spec"]["template"]["spec"]["containers"][0]["args"][-2:]
    ('iris-retrain-3', ['--champion-version', '2'])

    ``champion_sha256`` (from ``status.versions``) goes along as ``--champion-sha256``:
    the Job refuses a champion artifact with another hash. ``since`` (when the violations
    began, :func:`policies.drift_onset`) goes along as ``--since``: recent training data
    starts there.
    """
    retrain = mm.spec.retrain
    labels = {
        **get_labels(mm, component="retrain"),
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
        mm,
        container=c.RETRAIN_CONTAINER,
        args=args,
        labels=labels,
        resources=retrain.resources,
    )
    budget = retrain.automl.time_budget_seconds
    meta = _child_metadata(mm, c.retrain_job_name(mm.name, version), component="retrain")
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


def build_takeover_patch(mm: Monitor) -> Manifest:
    """Return the merge patch that labels the serving Deployment as watched by this monitor."""
    return {"metadata": {"labels": {c.LABEL_MONITOR: mm.name}}}


def build_rollout_patch(mm: Monitor, *, container: str, version: int, sha256: str) -> Manifest:
    """Return the strategic merge patch that rolls the serving Deployment to ``version``.

    It sets the container env MODEL_VERSION/MODEL_SHA256 (merged by name) and the pod
    template annotation ``modelwatch.io/model-version``, so the pod template changes and the
    Deployment controller performs a real rolling update. A monitor without
    ``spec.deployment`` has nothing to roll: ValueError.

    >>> from modelwatch_operator.monitors import read_monitor
    >>> mm = read_monitor({"metadata": {"name": "iris"},
    ...     "spec": {"model": {"name": "iris", "target": "y"}, "store": {"uri": "/store"},
    ...              "data": {"reference": {"uri": "/store/ref.csv"}},
    ...              "deployment": {"name": "srv", "progressDeadlineSeconds": 60}}})
    >>> p = build_rollout_patch(mm, container="server", version=2, sha256="ab")
    >>> p["spec"]["progressDeadlineSeconds"], p["spec"]["template"]["spec"]["containers"][0]["env"]
    (60, [{'name': 'MODEL_VERSION', 'value': '2'}, {'name': 'MODEL_SHA256', 'value': 'ab'}])
    """
    deployment = mm.spec.deployment
    if deployment is None:
        raise ValueError(f"ModelMonitor {mm.namespace}/{mm.name} has no spec.deployment")
    return {
        "metadata": {"labels": {c.LABEL_MONITOR: mm.name}},
        "spec": {
            "progressDeadlineSeconds": deployment.progress_deadline_seconds,
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
