"""Fixtures of the monitoring cluster test."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.mw_operator_env import deploy_operator, operator_ready


@pytest.fixture(scope="session")
def operator(kube: Any) -> Any:
    """The operator in-cluster: the running one if it is ready (tests/cluster may have
    started it; restarting it would disturb other tests), else deployed as there."""
    if not operator_ready(kube):
        deploy_operator(kube)
    return kube
