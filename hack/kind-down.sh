#!/usr/bin/env bash
# Delete the kind cluster (make kind-down). The node image, the loaded images and the caches
# stay; `hack/kind-docker.sh down` stops a Docker engine that hack/kind-docker.sh started.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "${HACK_DIR}/kind-lib.sh"

ensure_kind
if ! docker version >/dev/null 2>&1 || ! kind_cluster_exists; then
  log "no kind cluster ${KIND_CLUSTER}"
  exit 0
fi
kind delete cluster --name "${KIND_CLUSTER}"
