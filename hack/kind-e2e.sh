#!/usr/bin/env bash
# make kind-e2e: the end-to-end loop on a kind cluster, by the README's path for kind users:
# make kind-up, make kind-load, make deploy, the samples, then the end-to-end test against
# the current context. KUBECONFIG (default ~/.kube/config, kind's own default) must be a file
# of its own or kind's: everything here runs against its kind-<cluster> context only.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "${HACK_DIR}/kind-lib.sh"
export KUBECONFIG="${KUBECONFIG:-${HOME}/.kube/config}"
[[ "${KUBECONFIG}" != "${KUBECONFIG_PATH}" ]] || die "KUBECONFIG is the local cluster's: point it at a file for kind"
PYTEST="${PYTEST:-${REPO_ROOT}/.venv/bin/pytest}"
OUT="${KIND_E2E_LOG:-${CACHE_ROOT}/kind-e2e.log}"
START=$(date +%s)
cd "${REPO_ROOT}"

step() { # name command...
  local name="$1" t0; shift
  t0=$(date +%s)
  log "== ${name}"
  "$@"
  TIMES+=("${name}: $(( $(date +%s) - t0 ))s")
}
TIMES=()
step "make kind-up" make --no-print-directory kind-up
ctx="kind-${KIND_CLUSTER}"
kubectl config use-context "${ctx}" >/dev/null
[[ "$(kubectl config current-context)" == "${ctx}" ]] || die "the current context is not ${ctx}"
step "make kind-load" make --no-print-directory kind-load
step "make deploy" make --no-print-directory deploy
kubectl rollout status deployment/modelwatch-operator -n modelwatch-system --timeout=180s
step "samples" kubectl apply --server-side -k manifests/samples
rc=0
t0=$(date +%s)
log "== the end-to-end test"
MODELWATCH_USE_CURRENT_CONTEXT=1 "${PYTEST}" tests/e2e tests/cluster/test_manifests.py -m cluster -v -s \
  2>&1 | tee "${OUT}" || rc=$?
TIMES+=("e2e test: $(( $(date +%s) - t0 ))s")
# The demo's own clock: from the traffic shift to v2 serving behind the Service.
shift_at="$(grep -m1 'shifting the traffic' "${OUT}" | sed -E 's/^\[([0-9:]+)\].*/\1/' || true)"
v2_at="$(grep -m1 'now to v2' "${OUT}" | sed -E 's/^\[([0-9:]+)\].*/\1/' || true)"
if [[ -n "${shift_at}" && -n "${v2_at}" ]]; then
  TIMES+=("traffic shift -> v2 serving: $(( $(date -d "${v2_at}" +%s) - $(date -d "${shift_at}" +%s) ))s")
fi
TIMES+=("make kind-e2e: $(( $(date +%s) - START ))s")
printf '  %s\n' "${TIMES[@]}" >&2
exit "${rc}"
