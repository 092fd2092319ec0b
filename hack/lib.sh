# shellcheck shell=bash
# Common settings and helpers for the local-cluster tooling. Sourced, never run.

set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${HACK_DIR}/.." && pwd)"

# Pinned upstream versions. The build cache is keyed by these.
KUBE_VERSION="${KUBE_VERSION:-v1.34.10}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.4}"

CACHE_ROOT="${MODELWATCH_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/modelwatch}"
KUBE_BIN_DIR="${CACHE_ROOT}/kubernetes-${KUBE_VERSION}-etcd-${ETCD_VERSION}/bin"
# Cluster state (pids, certs, etcd data, logs) lives outside the repo too.
STATE_DIR="${MODELWATCH_STATE:-/var/lib/modelwatch-cluster}"
PID_DIR="${STATE_DIR}/pids"
LOG_DIR="${STATE_DIR}/logs"
PKI_DIR="${STATE_DIR}/pki"
KUBECONFIG_PATH="${STATE_DIR}/admin.kubeconfig"

NODE_NAME="${NODE_NAME:-modelwatch-node}"
SERVICE_CIDR="10.96.0.0/16"
KUBERNETES_SVC_IP="10.96.0.1"
DNS_SVC_IP="10.96.0.10"
POD_CIDR="10.244.0.0/24"
CLUSTER_CIDR="10.244.0.0/16"
APISERVER_PORT=6443
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380

CONTAINERD_ROOT="${STATE_DIR}/containerd"
CONTAINERD_SOCK="/run/modelwatch/containerd/containerd.sock"
PAUSE_IMAGE="localhost/modelwatch/pause:3.10"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Fail with a named cause when the disk holding PATH has less than MB megabytes free.
require_disk() {
  local path="$1" need_mb="$2" avail_mb
  mkdir -p "${path}"
  avail_mb=$(df -Pm "${path}" | awk 'NR==2 {print $4}')
  if (( avail_mb < need_mb )); then
    die "disk full: ${path} has ${avail_mb} MB free, ${need_mb} MB needed"
  fi
}

require_go() {
  command -v go >/dev/null 2>&1 || die "Go is missing: install Go >= 1.24 (https://go.dev/dl) and put 'go' on PATH"
}

# The kube-apiserver, kubelet and friends need root for iptables, mounts and cgroups.
require_root() {
  [[ ${EUID} -eq 0 ]] || die "the local cluster needs root (iptables, mounts, cgroups); re-run with sudo"
}

apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' || missing+=("${pkg}")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing from Debian: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}
