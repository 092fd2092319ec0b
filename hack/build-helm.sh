#!/usr/bin/env bash
# Build helm from its Go module (helm.sh/helm/v4) into a cache outside the repo, keyed by
# version, like hack/build-kubernetes.sh. A warm cache is a no-op. A cold build prints a
# progress line every 30 s, with an estimate from the last build's time when there is one
# (lib.sh's run_timed).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
HELM_DIR="${CACHE_ROOT}/helm-${HELM_VERSION}"
HELM_BIN="${HELM_DIR}/bin/helm"

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
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}"
install_helm() {
  cd / && CGO_ENABLED=0 GOBIN="${HELM_DIR}/bin" GOFLAGS=-mod=mod \
    go install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}"
}
run_timed helm-build "go install helm.sh/helm/v4/cmd/helm@${HELM_VERSION}" \
  "${HELM_DIR}/build.log" "a first build takes a few minutes on 2 cores" -- install_helm \
  || die "go install of helm ${HELM_VERSION} failed (log above, in ${HELM_DIR}/build.log)"
[[ -x ${HELM_BIN} ]] || die "build finished but ${HELM_BIN} is missing"
log "helm ${HELM_VERSION} built: $("${HELM_BIN}" version --short)"
