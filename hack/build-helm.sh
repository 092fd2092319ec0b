#!/usr/bin/env bash
# Build helm from its Go module (helm.sh/helm/v4) into a cache outside the repo, keyed by
# version, like hack/build-kubernetes.sh. A warm cache is a no-op. A cold build prints a
# progress line every 30 s, with an estimate from the last build's time when there is one.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
HELM_DIR="${CACHE_ROOT}/helm-${HELM_VERSION}"
HELM_BIN="${HELM_DIR}/bin/helm"
TIMING_FILE="${CACHE_ROOT}/helm-build-seconds"

if [[ ${1:-} == --print-path ]]; then
  echo "${HELM_BIN}"
  exit 0
fi
if [[ -x ${HELM_BIN} ]]; then
  log "helm ${HELM_VERSION} already built in ${HELM_DIR}/bin"
  exit 0
fi

require_go
require_disk "${CACHE_ROOT}" 1500
mkdir -p "${HELM_DIR}/bin"
estimate=""
[[ -s ${TIMING_FILE} ]] && estimate="$(cat "${TIMING_FILE}")"
log "go install helm.sh/helm/v4/cmd/helm@${HELM_VERSION}${estimate:+ (the last build took ${estimate}s)}"
build_log="${HELM_DIR}/build.log"
start=$(date +%s)
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}"
(cd / && CGO_ENABLED=0 GOBIN="${HELM_DIR}/bin" GOFLAGS=-mod=mod \
  go install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}") \
  > "${build_log}" 2>&1 &
pid=$!
while kill -0 "${pid}" 2>/dev/null; do
  for _ in $(seq 30); do
    sleep 1
    kill -0 "${pid}" 2>/dev/null || break
  done
  kill -0 "${pid}" 2>/dev/null || break
  elapsed=$(( $(date +%s) - start ))
  if [[ -n ${estimate} ]]; then
    log "building helm ${HELM_VERSION}: ${elapsed}s of about ${estimate}s"
  else
    log "building helm ${HELM_VERSION}: ${elapsed}s (first build: a few minutes on 2 cores)"
  fi
done
if ! wait "${pid}"; then
  tail -20 "${build_log}" >&2
  die "go install of helm ${HELM_VERSION} failed (log above, in ${build_log})"
fi
elapsed=$(( $(date +%s) - start ))
echo "${elapsed}" > "${TIMING_FILE}"
[[ -x ${HELM_BIN} ]] || die "build finished but ${HELM_BIN} is missing"
log "helm ${HELM_VERSION} built in ${elapsed}s: $("${HELM_BIN}" version --short)"
