#!/usr/bin/env bash
# Create the kind cluster (make kind-up): `kind create cluster --config hack/kind.yaml`.
# With Docker and the internet that is all it does. Where the published node image cannot be
# pulled, it builds one here (hack/kind-node-image.sh) and creates the cluster from that;
# MODELWATCH_KIND_NODE=published|local forces either. kind itself is built from its Go module
# when it is not installed, and a Docker engine is started when none answers (as root).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "${HACK_DIR}/kind-lib.sh"
START=$(date +%s)

ensure_kind
ensure_docker
if kind_cluster_exists; then
  log "kind cluster ${KIND_CLUSTER} exists"
  kind export kubeconfig --name "${KIND_CLUSTER}" >/dev/null
  exit 0
fi

published="$(awk '$1 == "image:" {print $2; exit}' "${KIND_CONFIG}")"
args=()
case "${MODELWATCH_KIND_NODE}" in
  published) ;;
  local) args=(--image "${KIND_NODE_IMAGE}") ;;
  auto)
    if [[ -z "${published}" ]] || docker_has_or_pulls "${published}"; then
      :
    else
      log "cannot pull ${published}: using a node image built here (${KIND_NODE_IMAGE})"
      args=(--image "${KIND_NODE_IMAGE}")
    fi
    ;;
  *) die "MODELWATCH_KIND_NODE must be auto, published or local, not ${MODELWATCH_KIND_NODE}" ;;
esac
if ((${#args[@]})); then
  bash "${HACK_DIR}/kind-node-image.sh"
fi

kind create cluster --name "${KIND_CLUSTER}" --config "${KIND_CONFIG}" "${args[@]}" --wait 5m
log "kind cluster ${KIND_CLUSTER} up in $(( $(date +%s) - START ))s (context kind-${KIND_CLUSTER})"
