"""An object store's credentials reach the job pods only as Secret references."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelwatch_monitor import contract
from modelwatch_operator import builders
from tests.operator.test_operator_builders import JOB_BUILDERS, monitor_of, pod_spec_of

S3_STORE = {
    "uri": "s3://modelwatch/iris",
    "endpoint": "http://10.0.0.5:8333",
    "credentials": {"secretName": "modelwatch-s3", "secretAccessKeyKey": "secret"},
}


def env_of(manifest: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec_of(manifest)["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize(("build", "kind"), JOB_BUILDERS)
def test_job_pods_get_the_endpoint_and_secret_refs(build: Any, kind: str) -> None:
    env = env_of(build(monitor_of(store=S3_STORE)))
    assert env["AWS_ENDPOINT_URL"] == "http://10.0.0.5:8333"
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "modelwatch-s3", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "modelwatch-s3", "key": "secret"}
    }


@pytest.mark.parametrize(("build", "kind"), JOB_BUILDERS)
def test_a_file_store_adds_no_store_env(build: Any, kind: str) -> None:
    env = env_of(build(monitor_of()))
    assert not {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)


def test_the_config_map_names_the_secret_only() -> None:
    config_map = builders.build_config_map(monitor_of(store=S3_STORE))
    config = contract.parse_job_config(config_map["data"][contract.CONFIG_KEY])
    assert config.spec.store.credentials == contract.CredentialsSpec(
        secret_name="modelwatch-s3", secret_access_key_key="secret"
    )
    doc = json.loads(config_map["data"][contract.CONFIG_KEY])
    assert set(doc["spec"]["store"]["credentials"]) <= {
        "secretName",
        "accessKeyIdKey",
        "secretAccessKeyKey",
    }


@pytest.mark.parametrize(("build", "kind"), JOB_BUILDERS)
def test_no_key_is_ever_a_literal_value(build: Any, kind: str) -> None:
    (container,) = pod_spec_of(build(monitor_of(store=S3_STORE)))["containers"]
    for entry in container["env"]:
        if entry["name"] in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}:
            assert "value" not in entry
            assert set(entry["valueFrom"]) == {"secretKeyRef"}
