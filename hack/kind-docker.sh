#!/usr/bin/env bash
# Start (or stop) a Docker engine for kind on a machine that has none, beside the local cluster.
#   hack/kind-docker.sh up     install docker.io from Debian if needed, start dockerd
#   hack/kind-docker.sh down   stop the dockerd this script started (its containers stop with it)
#   hack/kind-docker.sh status
#
# The engine is kept apart from the local cluster (hack/cluster-up.sh):
#   - its own data root, exec root and pid file under KIND_STATE, and its own containerd, which
#     dockerd starts and supervises (never the local cluster's containerd socket);
#   - --iptables=false and --ip-masq=false: dockerd leaves the host's iptables alone (the FORWARD
#     policy and the KUBE-* and CNI-* chains of the local cluster). kind needs no more: the node
#     container is reached through ports published on 127.0.0.1 by docker's userland proxy, and
#     nothing in the kind cluster pulls from the internet (every image is preloaded). Containers
#     get no NAT to the outside, so builds that download (pip) run with --network host;
#   - its API on the default socket, /var/run/docker.sock, so `kind` and `docker` work unchanged;
#   - where this process's capability bounding set lacks capabilities the kernel knows (a
#     sandbox without CAP_SYS_RESOURCE, say), hack/kind-runc-bounded.sh is the default runtime:
#     docker gives a --privileged container (a kind node) every capability, and runc fails with
#     "unable to apply caps" on one it may not hold; the wrapper drops those from the spec.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KIND_STATE="${KIND_STATE:-/var/lib/modelwatch-kind}"
DOCKER_DATA="${KIND_STATE}/docker"
DOCKER_EXEC="/run/modelwatch-kind/docker"
DOCKER_PIDFILE="/run/modelwatch-kind/dockerd.pid"
DOCKER_LOG="${KIND_STATE}/dockerd.log"
DOCKER_SOCK="/var/run/docker.sock"

# The capabilities (CAP_* names) the kernel knows but this process's bounding set lacks.
missing_caps() {
  local bnd last i
  bnd=$((16#$(awk '/^CapBnd:/ {print $2}' /proc/self/status)))
  last="$(cat /proc/sys/kernel/cap_last_cap)"
  for ((i = 0; i <= last; i++)); do
    if (( ((bnd >> i) & 1) == 0 )); then
      capsh --decode="$(printf '%x' $((1 << i)))" | cut -d= -f2 | tr '[:lower:]' '[:upper:]'
    fi
  done
}

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ours_alive() {
  [[ -f "${DOCKER_PIDFILE}" ]] || return 1
  local pid exe
  pid="$(cat "${DOCKER_PIDFILE}")"
  exe="$(readlink "/proc/${pid}/exe" 2>/dev/null || true)"
  [[ "$(basename "${exe% (deleted)}")" == dockerd ]]
}

up() {
  if engine_up; then
    log "a Docker engine answers on ${DOCKER_HOST:-${DOCKER_SOCK}}; using it"
    return 0
  fi
  require_root
  # policy-rc.d keeps the package from starting a dockerd with default settings (iptables on).
  if ! command -v dockerd >/dev/null 2>&1; then
    local policy=/usr/sbin/policy-rc.d added=0
    if [[ ! -e ${policy} ]]; then printf '#!/bin/sh\nexit 101\n' > "${policy}"; chmod +x "${policy}"; added=1; fi
    apt_install docker.io
    ((added)) && rm -f "${policy}"
  fi
  mkdir -p "${DOCKER_DATA}" "${DOCKER_EXEC}" "$(dirname "${DOCKER_PIDFILE}")"
  command -v capsh >/dev/null 2>&1 || apt_install libcap2-bin
  command -v jq >/dev/null 2>&1 || apt_install jq
  local missing runtime_args=()
  missing="$(missing_caps | paste -sd' ')"
  if [[ -n "${missing}" ]]; then
    log "this machine withholds ${missing}: containers run through hack/kind-runc-bounded.sh"
    install -D -m 0755 "${HACK_DIR}/kind-runc-bounded.sh" "${KIND_STATE}/bin/runc-bounded"
    runtime_args=(--add-runtime "runc-bounded=${KIND_STATE}/bin/runc-bounded" --default-runtime runc-bounded)
  fi
  log "starting dockerd (data root ${DOCKER_DATA}, iptables off)"
  RUNC_DROP_CAPS="${missing}" setsid dockerd \
    --data-root "${DOCKER_DATA}" \
    --exec-root "${DOCKER_EXEC}" \
    --pidfile "${DOCKER_PIDFILE}" \
    --host "unix://${DOCKER_SOCK}" \
    --iptables=false --ip-masq=false --ip6tables=false \
    --userland-proxy=true \
    --storage-driver overlay2 \
    --log-driver json-file --log-opt max-size=10m \
    "${runtime_args[@]}" \
    >>"${DOCKER_LOG}" 2>&1 </dev/null &
  local deadline=$(( $(date +%s) + 60 ))
  until engine_up; do
    if (( $(date +%s) >= deadline )); then
      tail -n 30 "${DOCKER_LOG}" >&2
      die "dockerd did not answer within 60s; the tail of ${DOCKER_LOG} is above"
    fi
    sleep 0.5
  done
  log "dockerd $(docker version --format '{{.Server.Version}}') is up"
}

down() {
  if ! ours_alive; then
    log "no dockerd started by this script is running"
    return 0
  fi
  local pid bridges
  pid="$(cat "${DOCKER_PIDFILE}")"
  # The bridges of its networks (docker0, br-<id> of kind's) outlive dockerd: removed below.
  bridges="$(docker network ls -q --filter driver=bridge 2>/dev/null | while read -r id; do
    docker network inspect -f \
      '{{with index .Options "com.docker.network.bridge.name"}}{{.}}{{else}}br-{{printf "%.12s" $.Id}}{{end}}' "${id}"
  done)"
  log "stopping dockerd (pid ${pid}) and its containers"
  kill -TERM "${pid}"
  local i
  for i in $(seq 1 60); do [[ -d /proc/${pid} ]] || break; sleep 1; done
  [[ -d /proc/${pid} ]] && die "dockerd (pid ${pid}) did not stop within 60s"
  local br
  for br in ${bridges}; do
    ip link show "${br}" >/dev/null 2>&1 && ip link delete "${br}" && log "removed bridge ${br}"
  done
  log "dockerd stopped"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) if engine_up; then docker info --format 'dockerd {{.ServerVersion}}, {{.Containers}} containers, root {{.DockerRootDir}}'; else echo "no Docker engine"; exit 1; fi ;;
  *) die "usage: $0 up|down|status" ;;
esac
