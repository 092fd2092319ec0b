#!/usr/bin/env bash
# Build etcd and the Kubernetes components from pinned Go modules into a cache
# outside the repo, keyed by version. A second run with the cache warm is a no-op; a cache
# that lacks some binaries (kubeadm, added for the kind node image) builds only those.
# Long steps print progress lines every 30 s, with an estimate from the last run's time.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm)

have_all() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "${KUBE_BIN_DIR}/${b}" ]] || return 1; done
}

if have_all; then
  log "kubernetes ${KUBE_VERSION} and etcd ${ETCD_VERSION} already built in ${KUBE_BIN_DIR}"
  exit 0
fi

require_go
require_disk "${CACHE_ROOT}" 6000
GOPATH_MOD="$(go env GOMODCACHE)"
require_disk "${GOPATH_MOD%/*}" 4000

work="$(dirname "${KUBE_BIN_DIR}")/src"
rm -rf "${work}"
mkdir -p "${work}/cmd/etcd" "${KUBE_BIN_DIR}"
cd "${work}"

minor="${KUBE_VERSION#v1.}"                # 34.12
staging_version="v0.${minor}"              # v0.34.12
log "resolving k8s.io/kubernetes ${KUBE_VERSION} (staging modules ${staging_version})"
mod_file="$(mktemp)"
trap 'rm -f "${mod_file}"' EXIT
(cd / && go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}") > "${mod_file}" \
  || die "cannot download k8s.io/kubernetes@${KUBE_VERSION} from the Go module proxy"
gomod_path="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["GoMod"])' "${mod_file}")"

{
  echo "module modelwatch.local/kubebuild"
  echo
  echo "go 1.25.0"
  echo
  echo "godebug default=go1.24"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes ${KUBE_VERSION}"
  echo "	go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
  echo ")"
  echo
  echo "replace ("
  # Every staging module kubernetes replaces with ./staging/src/... is published at v0.<minor>.
  awk '/=> \.\/staging\/src\// {print $1}' "${gomod_path}" | sort -u | while read -r m; do
    echo "	${m} => ${m} ${staging_version}"
  done
  echo ")"
} > go.mod

cat > cmd/etcd/main.go <<'GO'
// Command etcd runs the etcd server from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

cat > tools.go <<'GO'
//go:build tools

package kubebuild

import (
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
tidy() { GOFLAGS=-mod=mod go mod tidy; }
run_timed kubernetes-tidy "go mod tidy (downloads modules through the Go module proxy)" \
  "${work}/tidy.log" "a few minutes the first time" -- tidy || die "go mod tidy failed"

build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ver_pkg=k8s.io/component-base/version
cli_pkg=k8s.io/client-go/pkg/version
ldflags="-s -w"
for p in "${ver_pkg}" "${cli_pkg}"; do
  ldflags+=" -X ${p}.gitVersion=${KUBE_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${minor%%.*}"
  ldflags+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=${build_date}"
done

# Only the binaries the cache lacks: the others may be running (the local cluster).
targets=()
for b in "${BINARIES[@]}"; do
  [[ -x "${KUBE_BIN_DIR}/${b}" ]] && continue
  if [[ ${b} == etcd ]]; then targets+=(./cmd/etcd); else targets+=("k8s.io/kubernetes/cmd/${b}"); fi
done
build() { CGO_ENABLED=0 go build -trimpath -ldflags "${ldflags}" -o "${KUBE_BIN_DIR}/" "$@"; }
# The estimate is the last build's, whichever binaries it built (usually all of them).
run_timed kubernetes-build "go build ${targets[*]##*/}" "${work}/build.log" \
  "a first build takes ten minutes or more on 2 cores" -- build "${targets[@]}" \
  || die "go build of kubernetes ${KUBE_VERSION} failed"
log "built into ${KUBE_BIN_DIR}"
have_all || die "build finished but binaries are missing from ${KUBE_BIN_DIR}"
