#!/usr/bin/env bash
# make demo: the whole loop on the local cluster, or on the cluster KUBECONFIG names.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
START=$(date +%s)

if [[ -n "${KUBECONFIG:-}" && "${KUBECONFIG}" != "${KUBECONFIG_PATH}" ]] \
   && "${HACK_DIR}/kubectl" cluster-info >/dev/null 2>&1; then
  log "using the current kube context ($(${HACK_DIR}/kubectl config current-context)); images must be loaded (make kind-load)"
  export KUBECONFIG
else
  bash "${HACK_DIR}/cluster-up.sh" >/dev/null
  bash "${HACK_DIR}/images.sh"
  export KUBECONFIG="${KUBECONFIG_PATH}"
fi

rc=0
"${REPO_ROOT}/.venv/bin/python" "${HACK_DIR}/demo.py" "$@" || rc=$?
log "make demo finished in $(( $(date +%s) - START ))s"
echo "export KUBECONFIG=${KUBECONFIG}"
exit "${rc}"
