#!/usr/bin/env bash
# Report the local cluster's state: each component, the node, the server version.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rc=0
printf '%-26s %-8s %s\n' COMPONENT STATE PID
for c in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy local-provisioner seaweedfs; do
  bin="${c}"; [[ "${c}" == local-provisioner ]] && bin=python3.11; [[ "${c}" == seaweedfs ]] && bin=weed
  if component_alive "${c}" "${bin}"; then
    printf '%-26s %-8s %s\n' "${c}" running "$(cat "$(pid_file "${c}")")"
  elif [[ "${c}" == seaweedfs ]]; then
    # Started on demand (an s3:// store): not running is no fault.
    printf '%-26s %-8s %s\n' "${c}" stopped "- (make s3-up starts it)"
  else
    printf '%-26s %-8s %s\n' "${c}" stopped -; rc=1
  fi
done
if [[ -f "${KUBECONFIG_PATH}" && -x "${KUBE_BIN_DIR}/kubectl" ]] && kubectl_admin get --raw /readyz >/dev/null 2>&1; then
  echo
  kubectl_admin version 2>/dev/null | grep -i server || true
  kubectl_admin get nodes -o wide 2>/dev/null || true
  echo
  echo "logs: ${LOG_DIR}"
  echo "export KUBECONFIG=${KUBECONFIG_PATH}"
else
  echo; echo "the apiserver is not answering; run 'make cluster-up'"; rc=1
fi
exit "${rc}"
