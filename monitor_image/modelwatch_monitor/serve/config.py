"""The model server's settings: the contract's environment variables and the CLI's options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from modelwatch_monitor import contract

#: Seconds the server keeps serving after SIGTERM, not ready, while endpoints move.
ENV_DRAIN_SECONDS = "MODELWATCH_DRAIN_SECONDS"
#: kube-proxy applies an endpoint change within about a second (its minSyncPeriod), an
#: ingress or cloud load balancer within a few: 5 s covers both with room on a busy node.
DEFAULT_DRAIN_SECONDS = 5.0


@dataclass
class ServerConfig:
    """Settings of one server process.

    Parameters
    ----------
    store, model : str
        Where the registry is and which model to serve.
    version : int or None
        The version to load; None when ``MODEL_VERSION`` is unset or invalid.
    sha256 : str
        The expected artifact hash (``MODEL_SHA256``); empty only with
        ``allow_unverified``, to trust ``metadata.json``.
    allow_unverified : bool
        ``MODELWATCH_ALLOW_UNVERIFIED_FIRST_DEPLOY=true``.
    drain_seconds : float
        ``MODELWATCH_DRAIN_SECONDS``: how long to serve on after SIGTERM.
    config_problem : str
        Why the environment is unusable, or empty.
    """

    store: str = ""
    model: str = ""
    version: int | None = None
    sha256: str = ""
    allow_unverified: bool = False
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    config_problem: str = ""
    log_predictions: bool = True
    log_max_rows: int = 200_000
    log_flush_rows: int = 20_000
    log_flush_seconds: float = 10.0
    max_rows_per_request: int = 100_000
    retry_seconds: float = 30.0
    id_column: str | None = None
    threads: int = 1

    @classmethod
    def from_env(cls, env: Any = None, **overrides: Any) -> ServerConfig:
        """Read the contract's environment variables."""
        env = os.environ if env is None else env
        problems = []
        model = env.get(contract.ENV_MODEL_NAME, "")
        store = env.get(contract.ENV_STORE_URI, "")
        raw_version = env.get(contract.ENV_MODEL_VERSION, "")
        version: int | None = None
        for name, value in ((contract.ENV_MODEL_NAME, model), (contract.ENV_STORE_URI, store)):
            if not value:
                problems.append(f"{name} is not set")
        try:
            version = int(raw_version)
            if version < 1:
                raise ValueError
        except ValueError:
            problems.append(
                f"{contract.ENV_MODEL_VERSION} must be a version >= 1, got {raw_version!r}"
            )
            version = None
        sha256 = env.get(contract.ENV_MODEL_SHA256, "").strip().lower()
        flag = env.get(contract.ENV_ALLOW_UNVERIFIED, "").strip().lower()
        allow_unverified = flag == "true"
        if flag not in ("", "true", "false"):
            problems.append(f"{contract.ENV_ALLOW_UNVERIFIED} must be true or false, got {flag!r}")
        elif not sha256 and not allow_unverified:
            problems.append(
                f"{contract.ENV_MODEL_SHA256} is not set: refusing to load an artifact whose "
                f"hash nobody vouches for; set it to the version's sha256 (status.versions of "
                f"the ModelMonitor, or the sha256 the training Job printed), or set "
                f"{contract.ENV_ALLOW_UNVERIFIED}=true for a first deploy"
            )
        raw_drain = env.get(ENV_DRAIN_SECONDS, "").strip()
        drain_seconds = DEFAULT_DRAIN_SECONDS
        if raw_drain:
            try:
                drain_seconds = float(raw_drain)
                if not 0 <= drain_seconds < float("inf"):
                    raise ValueError
            except ValueError:
                problems.append(
                    f"{ENV_DRAIN_SECONDS} must be a number of seconds >= 0, got {raw_drain!r}"
                )
                drain_seconds = DEFAULT_DRAIN_SECONDS
        return cls(
            store=store,
            model=model,
            version=version,
            sha256=sha256,
            allow_unverified=allow_unverified,
            drain_seconds=drain_seconds,
            config_problem="; ".join(problems),
            **overrides,
        )
