# shellcheck shell=bash
# Common settings and helpers for the local-cluster tooling. Sourced, never run.

set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${HACK_DIR}/.." && pwd)"

# Pinned upstream versions. The build cache is keyed by these.
KUBE_VERSION="${KUBE_VERSION:-v1.34.10}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.4}"
# SeaweedFS (the S3-compatible object store) is built from its Go module at this version.
SEAWEEDFS_VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"

CACHE_ROOT="${MODELWATCH_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/modelwatch}"
KUBE_BIN_DIR="${CACHE_ROOT}/kubernetes-${KUBE_VERSION}-etcd-${ETCD_VERSION}/bin"
WEED_BIN="${CACHE_ROOT}/seaweedfs-${SEAWEEDFS_VERSION}/bin/weed"
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
# The object store: its S3 gateway listens on the node IP (pods reach it there); master,
# volume server and filer only on loopback. Each gRPC port is its HTTP port + 10000.
S3_PORT=8333
S3_MASTER_PORT=9333
S3_VOLUME_PORT=9340
S3_FILER_PORT=8888
S3_BUCKET="${S3_BUCKET:-modelwatch}"
S3_DIR="${STATE_DIR}/s3"
# KEY=value lines (endpoint, bucket, access key, secret) for tests and tools on the host.
S3_ENV_FILE="${S3_DIR}/s3.env"

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

# Run a long step (a build, a download) with its output in LOGFILE and a progress line at
# least every ${MODELWATCH_PROGRESS_SECONDS:-30} s. The time of a run that succeeds is
# cached in ${CACHE_ROOT}/NAME-seconds; the next run's lines estimate from it, and a first
# run's say HINT instead. On failure the tail of LOGFILE is printed and the status returned.
# Usage: run_timed NAME "WHAT" LOGFILE "HINT" -- COMMAND [ARGS...]
run_timed() {
  local name="$1" what="$2" logfile="$3" hint="$4"
  shift 4
  [[ ${1:-} == -- ]] && shift
  local timing="${CACHE_ROOT}/${name}-seconds" every="${MODELWATCH_PROGRESS_SECONDS:-30}"
  local estimate="" start pid elapsed rc=0 waited
  [[ -s ${timing} ]] && estimate="$(head -c 20 "${timing}")"
  [[ ${estimate} =~ ^[0-9]+$ ]] || estimate=""
  mkdir -p "$(dirname "${logfile}")" "${CACHE_ROOT}"
  if [[ -n ${estimate} ]]; then
    log "${what} (the last run took ${estimate}s; output in ${logfile})"
  else
    log "${what} (${hint:+${hint}; }output in ${logfile})"
  fi
  start=$(date +%s)
  "$@" > "${logfile}" 2>&1 &
  pid=$!
  while kill -0 "${pid}" 2>/dev/null; do
    waited=0
    while (( waited < every )) && kill -0 "${pid}" 2>/dev/null; do
      sleep 1
      waited=$(( waited + 1 ))
    done
    kill -0 "${pid}" 2>/dev/null || break
    elapsed=$(( $(date +%s) - start ))
    if [[ -z ${estimate} ]]; then
      log "${what}: ${elapsed}s${hint:+ (${hint})}"
    elif (( estimate - elapsed >= 60 )); then
      log "${what}: ${elapsed}s of about ${estimate}s, $(( (estimate - elapsed + 30) / 60 )) min left"
    elif (( elapsed <= estimate )); then
      log "${what}: ${elapsed}s of about ${estimate}s, $(( estimate - elapsed ))s left"
    else
      log "${what}: ${elapsed}s, past the ${estimate}s of the last run"
    fi
  done
  wait "${pid}" || rc=$?
  elapsed=$(( $(date +%s) - start ))
  if (( rc != 0 )); then
    tail -n 20 "${logfile}" >&2 || true
    log "${what} failed after ${elapsed}s (the tail of ${logfile} is above)"
    return "${rc}"
  fi
  echo "${elapsed}" > "${timing}"
  log "${what}: done in ${elapsed}s"
}

# Build the buildah image REF once: Debian bookworm from debootstrap (minbase) with PACKAGES
# (comma-separated); LOGFILE keeps debootstrap's output.
debootstrap_image() {
  local ref="$1" packages="$2" logfile="$3" rootfs mirror ctr_id mnt
  buildah inspect --type image "${ref}" >/dev/null 2>&1 && return 0
  rootfs="$(mktemp -d)"
  mirror="$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)"
  if ! run_timed debootstrap "debootstrap: Debian bookworm + ${packages}" "${logfile}" \
    "a few minutes, once" -- debootstrap --variant=minbase --include="${packages}" bookworm \
    "${rootfs}" "${mirror:-http://deb.debian.org/debian}"; then
    rm -rf "${rootfs}"
    die "debootstrap failed (log above)"
  fi
  rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
  ctr_id="$(buildah from scratch)"
  mnt="$(buildah mount "${ctr_id}")"
  cp -a "${rootfs}/." "${mnt}/"
  buildah umount "${ctr_id}" >/dev/null
  rm -rf "${rootfs}"
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd /bin/bash "${ctr_id}"
  buildah commit --quiet --rm "${ctr_id}" "${ref}" >/dev/null
  log "base image ${ref} built"
}

# The machine's effective pip configuration (files and PIP_* environment alike) as a pip.conf
# in FILE, for a build secret; host paths are left out (the CA bundle is its own secret).
write_pip_build_conf() {
  python3 - "$1" <<'PY'
import configparser, subprocess, sys
out = subprocess.run(
    [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
).stdout
conf = configparser.ConfigParser()
conf["global"] = {}
for line in out.splitlines():
    key, _, value = line.partition("=")
    option = key.rpartition(".")[2]
    value = value.strip().strip("'\"")
    # Host paths (the CA bundle, local wheel folders) do not exist in the build
    # container; the CA bundle travels as its own secret.
    if value.startswith("/"):
        continue
    conf["global"][option] = value
with open(sys.argv[1], "w") as fh:
    conf.write(fh)
PY
}

# The CA bundle pip uses here, for a build secret; nothing when there is none.
pip_ca_bundle() {
  local ca
  for ca in "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" /etc/ssl/certs/ca-certificates.crt; do
    if [[ -n "${ca}" && -s "${ca}" ]]; then echo "${ca}"; return 0; fi
  done
}

# ---------------------------------------------------------------------------
# Processes started by the tooling: one pid file each, checked against the
# binary before anything is signalled, so nothing we did not start is touched.

pid_file() { echo "${PID_DIR}/$1.pid"; }

# Write stdin to PATH only when the content differs (atomically): a running kube-proxy
# exits when its configuration file is written, even with the same content, so a
# cluster-up that restarts one stopped component must leave the others' files alone.
write_if_changed() {
  local target="$1" tmp
  tmp="$(mktemp "${target}.XXXXXX")"
  cat > "${tmp}"
  if [[ -f "${target}" ]] && cmp -s "${tmp}" "${target}"; then
    rm -f "${tmp}"
  else
    mv -f "${tmp}" "${target}"
  fi
}

# True when the pid recorded for NAME is alive and still runs BINARY.
component_alive() {
  local name="$1" binary="${2:-$1}" pf pid exe
  pf="$(pid_file "${name}")"
  [[ -f "${pf}" ]] || return 1
  pid="$(cat "${pf}")"
  [[ -n "${pid}" && -d "/proc/${pid}" ]] || return 1
  exe="$(readlink "/proc/${pid}/exe" 2>/dev/null || true)"
  [[ "$(basename "${exe% (deleted)}")" == "${binary}" ]]
}

# Start a long-running component in its own session, logging to LOG_DIR/NAME.log.
start_component() {
  local name="$1"; shift
  mkdir -p "${PID_DIR}" "${LOG_DIR}"
  log "starting ${name}"
  setsid "$@" >>"${LOG_DIR}/${name}.log" 2>&1 < /dev/null &
  echo $! > "$(pid_file "${name}")"
}

# Fail naming the owner when PORT is taken by a process that is not NAME's.
require_port_free() {
  local port="$1" name="$2" owner_pid
  owner_pid="$(ss -Hltnp "sport = :${port}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)"
  [[ -z "${owner_pid}" ]] && return 0
  if [[ -f "$(pid_file "${name}")" && "$(cat "$(pid_file "${name}")")" == "${owner_pid}" ]]; then
    return 0
  fi
  die "port ${port} (needed by ${name}) is already in use by pid ${owner_pid} ($(tr '\0' ' ' < "/proc/${owner_pid}/cmdline" 2>/dev/null | cut -c1-120))"
}

# Wait until CHECK (a command) succeeds; on timeout print the tail of NAME's log and fail.
wait_healthy() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if ! component_alive "${name}" "${COMPONENT_BINARY:-${name}}"; then
      tail -n 30 "${LOG_DIR}/${name}.log" >&2 2>/dev/null || true
      die "${name} exited while starting; the tail of its log (${LOG_DIR}/${name}.log) is above"
    fi
    if (( $(date +%s) >= deadline )); then
      tail -n 30 "${LOG_DIR}/${name}.log" >&2 2>/dev/null || true
      die "${name} did not become healthy within ${timeout}s; the tail of its log (${LOG_DIR}/${name}.log) is above"
    fi
    sleep 0.5
  done
}

kubectl_admin() { KUBECONFIG="${KUBECONFIG_PATH}" "${KUBE_BIN_DIR}/kubectl" "$@"; }

node_ip() { ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="src") print $(i+1)}' | head -1; }

ctr_k8s() { ctr -a "${CONTAINERD_SOCK}" -n k8s.io "$@"; }

image_in_containerd() { ctr_k8s images ls -q 2>/dev/null | grep -qx "$1"; }

# Copy a buildah image into containerd's k8s.io namespace under REF (fully qualified).
import_image() {
  local src="$1" ref="$2" tar
  tar="$(mktemp -d)/image.tar"
  buildah push --quiet "${src}" "docker-archive:${tar}:${ref}" >/dev/null \
    || die "buildah push of ${src} failed"
  ctr_k8s images import --no-unpack=false "${tar}" >/dev/null || die "ctr import of ${ref} failed"
  rm -rf "$(dirname "${tar}")"
  local i
  for i in 1 2 3 4 5; do image_in_containerd "${ref}" && return 0; sleep 1; done
  die "${ref} is not in containerd after the import"
}
