#!/usr/bin/env bash
# Build a kind node image locally, for machines that cannot pull kindest/node, and load it
# into the Docker engine as KIND_NODE_IMAGE (modelwatch-kind/node:<kubernetes version>).
#
# What kind's own images/base and `kind build node-image` put in a node, made from here:
#   - the root file system: Debian bookworm from debootstrap (like the project's base image)
#     with systemd, containerd, runc, the CNI plugins, iptables and friends from Debian, and
#     the files of kind's images/base (entrypoint, units, containerd config) taken from the
#     sigs.k8s.io/kind Go module at KIND_VERSION;
#   - kubeadm, kubelet and kubectl in /usr/bin, built by hack/build-kubernetes.sh;
#   - preloaded in the node's containerd, under the names kubeadm asks for: kube-apiserver,
#     kube-controller-manager, kube-scheduler, kube-proxy (same build), etcd and CoreDNS (their
#     Go modules at the versions kubeadm lists), the pause image (hack/pause);
#   - /kind/manifests/default-cni.yaml: the Debian bridge plugin, configured per node from its
#     podCIDR by a small DaemonSet (kindnetd's module is not on the Go module proxy);
#   - /kind/manifests/default-storage.yaml: kind's local-path-provisioner manifest, the
#     provisioner built from its Go module, the helper image a Debian userland.
# Everything is cached under CACHE_ROOT by version; a warm run only checks the cache.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "${HACK_DIR}/kind-lib.sh"
require_root
require_go

COREDNS_MODULE_VERSION="${COREDNS_MODULE_VERSION:-}" # from kubeadm's image list when empty
LOCAL_PATH_VERSION="${LOCAL_PATH_VERSION:-v0.0.30}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.34.0}"
NODE_PACKAGES="systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod"
NODE_PACKAGES+=",libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps,containerd,runc"
NODE_PACKAGES+=",containernetworking-plugins"
TOOLS_DIR="${CACHE_ROOT}/kind-tools"
BUILD_STATE="/run/modelwatch-kind/build-containerd"
START=$(date +%s)

exec 9>"/run/lock/modelwatch-kind-node-image.lock"
flock 9

command -v buildah >/dev/null 2>&1 || apt_install buildah
command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
command -v jq >/dev/null 2>&1 || apt_install jq
command -v containerd >/dev/null 2>&1 || apt_install containerd
docker version >/dev/null 2>&1 || die "no Docker engine answers: run 'hack/kind-docker.sh up' first"

# --- 1. the node's root file system (debootstrap, cached) ---------------------------
pkg_key="$(echo "${NODE_PACKAGES}" | sha256sum | cut -c1-8)"
NODE_BASE="localhost/modelwatch-kind/node-base:bookworm-${pkg_key}"
TOOLS_IMAGE="docker.io/modelwatch-kind/tools:bookworm-${pkg_key}"
require_disk /var/lib/containers 8000
debootstrap_image "${NODE_BASE}" "${NODE_PACKAGES}" "${CACHE_ROOT}/debootstrap-kind-node.log"

# --- binaries ---------------------------------------------------------------------
bash "${HACK_DIR}/build-kubernetes.sh"
KUBEADM="${KUBE_BIN_DIR}/kubeadm"
mapfile -t KUBEADM_IMAGES < <("${KUBEADM}" config images list --kubernetes-version "${KUBE_VERSION}")
image_for() { printf '%s\n' "${KUBEADM_IMAGES[@]}" | grep -m1 "/$1:" || die "kubeadm lists no $1 image"; }
ETCD_REF="$(image_for etcd)"          # registry.k8s.io/etcd:3.6.5-0
COREDNS_REF="$(image_for coredns)"    # registry.k8s.io/coredns/coredns:v1.12.1
PAUSE_REF="$(image_for pause)"        # registry.k8s.io/pause:3.10.1
kind_etcd_version="v${ETCD_REF##*:}"
kind_etcd_version="${kind_etcd_version%-*}"
COREDNS_MODULE_VERSION="${COREDNS_MODULE_VERSION:-${COREDNS_REF##*:}}"

# go install MODULE@VERSION into TOOLS_DIR/NAME-VERSION once.
go_tool() { # name module-path@version binary
  local name="$1" pkg="$2" bin="$3" dir
  dir="${TOOLS_DIR}/${name}-${pkg##*@}"
  if [[ ! -x "${dir}/${bin}" ]]; then
    log "go install ${pkg}"
    GOBIN="${dir}" CGO_ENABLED=0 nice -n 10 go install -trimpath -ldflags "-s -w" "${pkg}" \
      || die "go install ${pkg} failed"
  fi
  echo "${dir}/${bin}"
}

KIND_BIN="$(go_tool kind "sigs.k8s.io/kind@${KIND_VERSION}" kind)"
CRICTL_BIN="$(go_tool crictl "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}" crictl)"
COREDNS_BIN="$(go_tool coredns "github.com/coredns/coredns@${COREDNS_MODULE_VERSION}" coredns)"
LOCAL_PATH_BIN="$(go_tool local-path-provisioner \
  "github.com/rancher/local-path-provisioner@${LOCAL_PATH_VERSION}" local-path-provisioner)"

# etcd at the version kubeadm expects (the local cluster's may differ).
if [[ "${kind_etcd_version}" == "${ETCD_VERSION}" ]]; then
  ETCD_BIN="${KUBE_BIN_DIR}/etcd"
else
  ETCD_BIN="${TOOLS_DIR}/etcd-${kind_etcd_version}/etcd"
  if [[ ! -x "${ETCD_BIN}" ]]; then
    log "go build etcd ${kind_etcd_version}"
    src="$(mktemp -d)"
    mkdir -p "$(dirname "${ETCD_BIN}")"
    cat > "${src}/main.go" <<'GO'
// Command etcd runs the etcd server from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    (cd "${src}" && go mod init modelwatch.local/etcd >/dev/null 2>&1 \
      && GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@${kind_etcd_version}" >/dev/null 2>&1 \
      && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 \
      && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "${ETCD_BIN}" .) \
      || die "go build of etcd ${kind_etcd_version} failed"
    rm -rf "${src}"
  fi
fi
PAUSE_BIN="${CACHE_ROOT}/pause/pause" # the same binary hack/pause-image.sh builds
if [[ ! -x "${PAUSE_BIN}" ]]; then
  mkdir -p "$(dirname "${PAUSE_BIN}")"
  (cd "${HACK_DIR}/pause" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${PAUSE_BIN}" .) \
    || die "go build of the pause binary failed"
fi

KIND_MOD_DIR="$(cd / && go mod download -json "sigs.k8s.io/kind@${KIND_VERSION}" \
  | jq -r '.Dir // empty')"
[[ -d "${KIND_MOD_DIR}/images/base/files" ]] || die "cannot read kind ${KIND_VERSION}'s images/base from the Go module proxy"
KIND_FILES="${KIND_MOD_DIR}/images/base/files"

# The cache key: every input of the node image.
key="$(
  {
    echo "${KIND_VERSION} ${KUBE_VERSION} ${NODE_PACKAGES} ${LOCAL_PATH_VERSION} ${CRICTL_VERSION}"
    sha256sum "${BASH_SOURCE[0]}" "${HACK_DIR}/kind-node/"* | cut -d' ' -f1
    for b in "${KUBE_BIN_DIR}"/{kubeadm,kubelet,kubectl,kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy} \
      "${ETCD_BIN}" "${COREDNS_BIN}" "${LOCAL_PATH_BIN}" "${PAUSE_BIN}" "${CRICTL_BIN}"; do
      stat -c '%n %s %Y' "${b}"
    done
  } | sha256sum | cut -c1-12
)"
if [[ "$(docker image inspect --format '{{index .Config.Labels "io.modelwatch.kind-node-key"}}' \
  "${KIND_NODE_IMAGE}" 2>/dev/null)" == "${key}" ]]; then
  log "kind node image ${KIND_NODE_IMAGE} is up to date (key ${key})"
  exit 0
fi

# --- 2. the images preloaded into the node ------------------------------------------
IMAGES_DIR="${CACHE_ROOT}/kind-node-${KUBE_VERSION}/images-${key}"
rm -rf "$(dirname "${IMAGES_DIR}")"/images-*
mkdir -p "${IMAGES_DIR}"
PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# image REF FROM BINARY DEST [buildah config args...]: FROM plus one binary, saved as an archive.
image() {
  local ref="$1" from="$2" bin="$3" dest="$4"; shift 4
  local c name local_ref
  name="$(basename "${ref%%:*}")"
  local_ref="localhost/modelwatch-kind/build-${name}:latest" # never the registry name locally
  c="$(buildah from "${from}")"
  buildah copy --quiet --chmod 0755 "${c}" "${bin}" "${dest}" >/dev/null
  buildah config --env "${PATH_ENV}" "$@" "${c}"
  buildah commit --quiet --rm "${c}" "${local_ref}" >/dev/null
  buildah push --quiet "${local_ref}" "docker-archive:${IMAGES_DIR}/${name}.tar:${ref}" >/dev/null \
    || die "buildah push of ${ref} failed"
  buildah rmi "${local_ref}" >/dev/null 2>&1 || true
}
log "building the preloaded images"
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  image "registry.k8s.io/${c}:${KUBE_VERSION}" scratch "${KUBE_BIN_DIR}/${c}" "/usr/local/bin/${c}"
done
# kube-proxy and the helpers need a userland (iptables, conntrack, sh): the node base.
image "registry.k8s.io/kube-proxy:${KUBE_VERSION}" "${NODE_BASE}" "${KUBE_BIN_DIR}/kube-proxy" \
  /usr/local/bin/kube-proxy
image "${ETCD_REF}" scratch "${ETCD_BIN}" /usr/local/bin/etcd
image "${COREDNS_REF}" scratch "${COREDNS_BIN}" /coredns --entrypoint '["/coredns"]'
image "${PAUSE_REF}" scratch "${PAUSE_BIN}" /pause --entrypoint '["/pause"]' --user 65535:65535
image "${TOOLS_IMAGE}" "${NODE_BASE}" "${KUBE_BIN_DIR}/kubectl" /usr/local/bin/kubectl
LOCAL_PATH_IMAGE="docker.io/modelwatch-kind/local-path-provisioner:${LOCAL_PATH_VERSION}"
image "${LOCAL_PATH_IMAGE}" scratch "${LOCAL_PATH_BIN}" /usr/local/bin/local-path-provisioner \
  --entrypoint '["/usr/local/bin/local-path-provisioner"]'

# --- 3. the node image -----------------------------------------------------------------
log "assembling the node image"
node="$(buildah from "${NODE_BASE}")"
build_ctr_pid=""
cleanup() {
  [[ -n "${build_ctr_pid}" ]] && kill "${build_ctr_pid}" 2>/dev/null && wait "${build_ctr_pid}" 2>/dev/null
  buildah umount "${node}" >/dev/null 2>&1 || true
  buildah rm "${node}" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mnt="$(buildah mount "${node}")"

# kind's images/base files, as its Dockerfile lays them out.
install -d -m 0755 "${mnt}/kind" "${mnt}/kind/bin" "${mnt}/kind/manifests" "${mnt}/etc/kubernetes/manifests" \
  "${mnt}/etc/systemd/system/kubelet.service.d" "${mnt}/opt/cni"
install -m 0755 "${KIND_FILES}"/usr/local/bin/* "${mnt}/usr/local/bin/"
install -m 0644 "${KIND_FILES}"/kind/README.txt "${mnt}/kind/"
install -m 0755 "${KIND_FILES}"/kind/bin/* "${mnt}/kind/bin/"
install -m 0644 "${KIND_FILES}"/etc/crictl.yaml "${mnt}/etc/"
install -m 0644 "${KIND_FILES}"/etc/default/* "${mnt}/etc/default/"
install -m 0644 "${KIND_FILES}"/etc/sysctl.d/* "${mnt}/etc/sysctl.d/"
install -m 0644 "${KIND_FILES}"/etc/systemd/system/{containerd.service,kubelet.service,kubelet.slice,undo-mount-hacks.service} \
  "${mnt}/etc/systemd/system/"
install -m 0644 "${KIND_FILES}"/etc/systemd/system/kubelet.service.d/* "${mnt}/etc/systemd/system/kubelet.service.d/"
# kind's containerd config, less the fuse-overlayfs proxy plugin (rootless only, not built
# here), with the sandbox image kubeadm lists, and oom_score_adj clamped to containerd's own:
# without CAP_SYS_RESOURCE (hack/kind-docker.sh) runc cannot lower a container's below it.
install -d "${mnt}/etc/containerd"
sed -e '/^\[proxy_plugins\]/,/^$/d' -e "s|sandbox_image = .*|sandbox_image = \"${PAUSE_REF}\"|" \
  -e 's|restrict_oom_score_adj = false|restrict_oom_score_adj = true|' \
  "${KIND_FILES}/etc/containerd/config.toml" > "${mnt}/etc/containerd/config.toml"
# Debian puts containerd in /usr/bin and the CNI plugins in /usr/lib/cni; kind expects
# /usr/local/bin and /opt/cni/bin.
for b in containerd ctr containerd-shim-runc-v2; do ln -sf "/usr/bin/${b}" "${mnt}/usr/local/bin/${b}"; done
ln -sfn /usr/lib/cni "${mnt}/opt/cni/bin"
install -m 0755 "${CRICTL_BIN}" "${mnt}/usr/local/bin/crictl"
for b in kubeadm kubelet kubectl; do install -m 0755 "${KUBE_BIN_DIR}/${b}" "${mnt}/usr/bin/${b}"; done
printf '%s' "${KUBE_VERSION}" > "${mnt}/kind/version"
# The base runtime spec: containerd's default plus kind's product-files hook.
chroot "${mnt}" ctr oci spec \
  | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
  | jq 'del(.process.rlimits)' > "${mnt}/etc/containerd/cri-base.json"
# systemd as kind's Dockerfile sets it up.
find "${mnt}/lib/systemd/system/sysinit.target.wants/" -name "systemd-tmpfiles-setup.service" -delete
rm -f "${mnt}"/lib/systemd/system/multi-user.target.wants/* "${mnt}"/etc/systemd/system/*.wants/* \
  "${mnt}"/lib/systemd/system/local-fs.target.wants/* "${mnt}"/lib/systemd/system/sockets.target.wants/*udev* \
  "${mnt}"/lib/systemd/system/sockets.target.wants/*initctl* "${mnt}"/lib/systemd/system/basic.target.wants/*
grep -q '^ReadKMsg=no' "${mnt}/etc/systemd/journald.conf" || echo "ReadKMsg=no" >> "${mnt}/etc/systemd/journald.conf"
[[ -e "${mnt}/sbin/init" ]] || ln -s /usr/lib/systemd/systemd "${mnt}/sbin/init"
chroot "${mnt}" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
chroot "${mnt}" systemctl mask systemd-binfmt.service >/dev/null 2>&1
[[ -L "${mnt}/etc/systemd/system/multi-user.target.wants/kubelet.service" ]] || die "systemctl enable failed in the node image"

# The CNI and storage manifests kind applies.
sed "s|@TOOLS_IMAGE@|${TOOLS_IMAGE}|g" "${HACK_DIR}/kind-node/default-cni.yaml" > "${mnt}/kind/manifests/default-cni.yaml"
# kind's own storage manifest (from its Go source), with the images built here.
awk '/^const defaultStorageManifest = `/ {on=1; next} on && /^`/ {on=0} on' \
  "${KIND_MOD_DIR}/pkg/build/nodeimage/const_storage.go" \
  | sed -e "s|\` + storageProvisionerImage + \`|${LOCAL_PATH_IMAGE}|" \
        -e "s|\` + storageHelperImage + \`|${TOOLS_IMAGE}|" > "${mnt}/kind/manifests/default-storage.yaml"
grep -q "${LOCAL_PATH_IMAGE}" "${mnt}/kind/manifests/default-storage.yaml" \
  && ! grep -q '` +' "${mnt}/kind/manifests/default-storage.yaml" \
  || die "cannot adapt kind's storage manifest (pkg/build/nodeimage/const_storage.go changed?)"

# Preload the images into the node's containerd store: a containerd of our own (no CRI, its own
# socket and state) over the node's /var/lib/containerd, importing without unpacking, as kind's
# node-image build does; the node's containerd unpacks on first use.
mkdir -p "${BUILD_STATE}"
cat > "${BUILD_STATE}/config.toml" <<EOF
version = 2
root = "${mnt}/var/lib/containerd"
state = "${BUILD_STATE}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${BUILD_STATE}/containerd.sock"
[ttrpc]
  address = "${BUILD_STATE}/containerd.sock.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${BUILD_STATE}/opt"
EOF
containerd --config "${BUILD_STATE}/config.toml" > "${BUILD_STATE}/containerd.log" 2>&1 &
build_ctr_pid=$!
for _ in $(seq 1 60); do ctr -a "${BUILD_STATE}/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.5; done
for tar in "${IMAGES_DIR}"/*.tar; do
  ctr -a "${BUILD_STATE}/containerd.sock" -n k8s.io images import --no-unpack --all-platforms "${tar}" >/dev/null \
    || die "importing ${tar} into the node image failed"
done
# The archives also carry the local build names; only the registry names stay.
ctr -a "${BUILD_STATE}/containerd.sock" -n k8s.io images ls -q | grep '^localhost/modelwatch-kind/build-' \
  | xargs -r ctr -a "${BUILD_STATE}/containerd.sock" -n k8s.io images rm >/dev/null || true
ctr -a "${BUILD_STATE}/containerd.sock" -n k8s.io images ls -q > "${IMAGES_DIR}/preloaded.txt"
kill "${build_ctr_pid}"; wait "${build_ctr_pid}" 2>/dev/null || true; build_ctr_pid=""
for ref in "${KUBEADM_IMAGES[@]}"; do
  grep -qx "${ref}" "${IMAGES_DIR}/preloaded.txt" || die "${ref} is missing from the preloaded images"
done
log "preloaded: $(tr '\n' ' ' < "${IMAGES_DIR}/preloaded.txt")"

buildah umount "${node}" >/dev/null
buildah config --cmd '' "${node}" # the base's /bin/bash is no argument of the entrypoint
buildah config --env container=docker --stop-signal SIGRTMIN+3 \
  --entrypoint '["/usr/local/bin/entrypoint", "/sbin/init"]' \
  --label "io.modelwatch.kind-node-key=${key}" "${node}"
local_ref="localhost/modelwatch-kind/node:${KUBE_VERSION}"
buildah commit --quiet --squash "${node}" "${local_ref}" >/dev/null
trap - EXIT
buildah rm "${node}" >/dev/null 2>&1 || true
log "loading ${KIND_NODE_IMAGE} into docker"
buildah push --quiet "${local_ref}" "docker-daemon:${KIND_NODE_IMAGE}" >/dev/null \
  || die "buildah push of the node image into docker failed"
log "kind node image ${KIND_NODE_IMAGE} ready in $(( $(date +%s) - START ))s"
