"""Fixtures shared by the cluster tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.mw_operator_env import deploy_operator


@pytest.fixture(scope="session")
def operator(kube: Any) -> Any:
    """The operator running in-cluster under its own ServiceAccount, once per session."""
    deploy_operator(kube)
    return kube
