# shellcheck shell=bash
# Settings and helpers of the kind tooling (hack/kind-*.sh). Sourced after lib.sh, never run.

KIND_CLUSTER="${KIND_CLUSTER:-modelwatch}"
KIND_CONFIG="${KIND_CONFIG:-${REPO_ROOT}/hack/kind.yaml}"
KIND_VERSION="${KIND_VERSION:-v0.32.0}"
# Which node image `make kind-up` uses: auto (the published one from hack/kind.yaml when it is
# present or can be pulled, else a local build), published, or local.
MODELWATCH_KIND_NODE="${MODELWATCH_KIND_NODE:-auto}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-modelwatch-kind/node:${KUBE_VERSION}}"

# Put a kind binary on PATH: the one installed, else one built from its Go module (cached).
ensure_kind() {
  command -v kind >/dev/null 2>&1 && return 0
  local dir="${CACHE_ROOT}/kind-tools/kind-${KIND_VERSION}"
  if [[ ! -x "${dir}/kind" ]]; then
    require_go
    log "kind is not installed: building sigs.k8s.io/kind@${KIND_VERSION} from its Go module"
    GOBIN="${dir}" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@${KIND_VERSION}" \
      || die "go install sigs.k8s.io/kind@${KIND_VERSION} failed"
  fi
  export PATH="${dir}:${PATH}"
}

# A Docker engine must answer; where none runs, start one beside the local cluster (root only).
ensure_docker() {
  docker version >/dev/null 2>&1 && return 0
  if [[ ${EUID} -eq 0 ]]; then
    bash "${HACK_DIR}/kind-docker.sh" up
  else
    die "no Docker engine answers: start Docker (or, as root, run hack/kind-docker.sh up)"
  fi
}

# True when IMAGE is in docker or can be pulled.
docker_has_or_pulls() {
  docker image inspect "$1" >/dev/null 2>&1 && return 0
  log "pulling $1"
  timeout 600 docker pull "$1" >/dev/null 2>&1
}

kind_cluster_exists() { kind get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; }
