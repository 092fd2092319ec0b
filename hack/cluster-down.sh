#!/usr/bin/env bash
# Stop only the processes cluster-up started (by their recorded pid, after checking
# the pid still runs the expected binary), then remove the cluster's state.
# The build cache stays.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

stop() { # name [binary]
  local name="$1" binary="${2:-$1}" pid i
  if ! component_alive "${name}" "${binary}"; then
    rm -f "$(pid_file "${name}")"
    return 0
  fi
  pid="$(cat "$(pid_file "${name}")")"
  log "stopping ${name} (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  for i in $(seq 1 40); do [[ -d "/proc/${pid}" ]] || break; sleep 0.25; done
  component_alive "${name}" "${binary}" && kill -KILL "${pid}" 2>/dev/null || true
  rm -f "$(pid_file "${name}")"
}

stop local-provisioner python3.11
stop seaweedfs weed
stop kube-proxy
stop kubelet
# Pods keep running under containerd's shims once the kubelet is gone: stop them
# through containerd (they are ours: they live in our containerd's own root).
if component_alive containerd; then
  for task in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "${task}" >/dev/null 2>&1 || true; done
  sleep 1
  for task in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "${task}" >/dev/null 2>&1 || true; done
  for c in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers rm "${c}" >/dev/null 2>&1 || true; done
fi
stop containerd
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd

if [[ -x "${KUBE_BIN_DIR}/kube-proxy" ]]; then
  "${KUBE_BIN_DIR}/kube-proxy" --cleanup >/dev/null 2>&1 || true
fi
ip link del mw0 >/dev/null 2>&1 || true
# Unmount what the kubelet and containerd mounted under our state (deepest first).
if [[ -d "${STATE_DIR}" ]]; then
  awk -v s="${STATE_DIR}" -v r="$(dirname "${CONTAINERD_SOCK}")" \
    'index($2, s) == 1 || index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "${m}" 2>/dev/null || true
  done
  rm -rf "${STATE_DIR}"
fi
rm -rf "$(dirname "${CONTAINERD_SOCK}")"
log "cluster down; build cache kept in ${CACHE_ROOT}"
