"""Names and limits both sides agree on: the config mount, env vars, arguments, bounds."""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 1

CONFIG_KEY: Final = "config.json"
CONFIG_MOUNT_DIR: Final = "/etc/modelwatch"
CONFIG_PATH: Final = f"{CONFIG_MOUNT_DIR}/{CONFIG_KEY}"
TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"
MAX_RESULT_BYTES: Final = 4096

# Environment of the model server (set by the operator on the serving Deployment).
ENV_MODEL_VERSION: Final = "MODEL_VERSION"
ENV_MODEL_SHA256: Final = "MODEL_SHA256"
ENV_MODEL_NAME: Final = "MODEL_NAME"
ENV_STORE_URI: Final = "MODELWATCH_STORE"
#: "true" lets the server load a version without MODEL_SHA256, trusting its metadata.json:
#: only for the first deploy of a model, before any sha256 is known. Never set by modelwatch.
ENV_ALLOW_UNVERIFIED: Final = "MODELWATCH_ALLOW_UNVERIFIED_FIRST_DEPLOY"

# Environment of every pod that reads the store when it is an object store: the standard
# names botocore (under s3fs) reads. The operator sets them on its Jobs from spec.store;
# the model server's Deployment sets them itself (README, "An S3 store").
ENV_S3_ENDPOINT: Final = "AWS_ENDPOINT_URL"
ENV_S3_ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
ENV_S3_SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"

# Check arguments the operator adds to every check Job: the version that serves
# (status.currentVersion) and when it began serving (status.servingSince, RFC 3339).
ARG_SERVING_VERSION: Final = "--serving-version"
ARG_SERVING_SINCE: Final = "--serving-since"

# A sharded check (spec.check.parallelism > 1) runs as an Indexed Job: each pod sketches
# its share of the window (JOB_COMPLETION_INDEX, set by Kubernetes) into the store under
# shards_dir(store, model, run), the run being the Job's uid (MODELWATCH_SHARD_RUN, from
# the pod's label); the pod of index 0 plans the shares, merges and carries the result.
ARG_SHARDS: Final = "--shards"
ENV_SHARD_INDEX: Final = "JOB_COMPLETION_INDEX"
ENV_SHARD_RUN: Final = "MODELWATCH_SHARD_RUN"
SHARD_RESULT_INDEX: Final = "0"
MAX_PARALLELISM: Final = 64

DEFAULT_MIN_ROWS: Final = 100
#: A prediction log partition older than this many windows is deleted, unless
#: ``spec.data.current.retention`` says otherwise.
RETENTION_WINDOWS: Final = 4

# Bounds of a Job result. Over-long strings are rejected, not truncated: encode_result
# never writes one, so a result that does is not trusted at all.
MAX_MESSAGE_CHARS: Final = MAX_RESULT_BYTES  # ``message``: at most the whole result
MAX_STRING_CHARS: Final = 1024  # any other string
MAX_ITEMS: Final = 64  # entries of any list or object
MAX_DEPTH: Final = 4  # nesting below the result object
MAX_LISTED: Final = 5  # topFeatures, quality
INT64_MAX: Final = 2**63 - 1

SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"
REPORT_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: The CRD's pattern of every duration field (``spec.data.current.window`` etc.).
DURATION_PATTERN: Final = "^[0-9]+[smhd]$"

__all__ = [
    "ARG_SERVING_SINCE",
    "ARG_SERVING_VERSION",
    "ARG_SHARDS",
    "CONFIG_KEY",
    "CONFIG_MOUNT_DIR",
    "CONFIG_PATH",
    "DEFAULT_MIN_ROWS",
    "DURATION_PATTERN",
    "ENV_ALLOW_UNVERIFIED",
    "ENV_MODEL_NAME",
    "ENV_MODEL_SHA256",
    "ENV_MODEL_VERSION",
    "ENV_S3_ACCESS_KEY_ID",
    "ENV_S3_ENDPOINT",
    "ENV_S3_SECRET_ACCESS_KEY",
    "ENV_SHARD_INDEX",
    "ENV_SHARD_RUN",
    "ENV_STORE_URI",
    "IDENTIFIER_PATTERN",
    "INT64_MAX",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_LISTED",
    "MAX_MESSAGE_CHARS",
    "MAX_PARALLELISM",
    "MAX_RESULT_BYTES",
    "MAX_STRING_CHARS",
    "NAME_PATTERN",
    "REPORT_ID_PATTERN",
    "RETENTION_WINDOWS",
    "SCHEMA_VERSION",
    "SHA256_PATTERN",
    "SHARD_RESULT_INDEX",
    "TERMINATION_MESSAGE_PATH",
]
