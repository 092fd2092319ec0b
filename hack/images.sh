#!/usr/bin/env bash
# Build the images with buildah and import them into containerd's k8s.io namespace:
#   1. a base image, Debian bookworm + Python 3.11, made with debootstrap (cached);
#   2. modelwatch/monitor:dev and modelwatch/operator:dev from this repo's Dockerfiles.
# The machine's pip configuration and CA bundle are passed as build secrets, used
# at build time only, and never stored in an image.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
# One build at a time: concurrent runs would race on the same tags.
exec 9>"/run/lock/modelwatch-images.lock"
flock 9

BASE_IMAGE="localhost/modelwatch/base:bookworm-py311"
MONITOR_REF="docker.io/modelwatch/monitor:dev"
OPERATOR_REF="docker.io/modelwatch/operator:dev"
BASE_PACKAGES="python3,python3-venv,ca-certificates,libgomp1,passwd,tzdata"
START=$(date +%s)

command -v buildah >/dev/null 2>&1 || apt_install buildah
command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
[[ -S "${CONTAINERD_SOCK}" ]] || die "containerd is not running: run 'make cluster-up' first"
require_disk /var/lib/containers 6000

# --- 1. base image --------------------------------------------------------------
debootstrap_image "${BASE_IMAGE}" "${BASE_PACKAGES}" "${CACHE_ROOT}/debootstrap.log"

# --- 2. the repo's images ------------------------------------------------------
secrets=()
pipconf="$(mktemp)"
trap 'rm -f "${pipconf}"' EXIT
write_pip_build_conf "${pipconf}"
secrets+=(--secret "id=pipconf,src=${pipconf}")
ca="$(pip_ca_bundle)"
[[ -n "${ca}" ]] && secrets+=(--secret "id=cabundle,src=${ca}")

build() { # dockerfile ref
  local dir
  dir="$(basename "$(dirname "$1")")"
  # The estimate is the last build's: seconds when its layers are cached, minutes when not.
  run_timed "image-${dir}-build" "buildah build -f $1 -> $2" "${CACHE_ROOT}/build-${dir}.log" \
    "a first build takes a few minutes" -- \
    buildah build --quiet --layers --format docker --build-arg "BASE_IMAGE=${BASE_IMAGE}" \
    "${secrets[@]}" -f "${REPO_ROOT}/$1" -t "$2" "${REPO_ROOT}" \
    || die "buildah build of $1 failed (log above)"
  import_image "$2" "$2"
  log "imported $2 ($(buildah inspect --type image --format '{{.FromImageID}}' "$2" | cut -c1-12))"
}
build monitor_image/Dockerfile "${MONITOR_REF}"
build operator/Dockerfile "${OPERATOR_REF}"

# No build secret may remain in an image.
for ref in "${MONITOR_REF}" "${OPERATOR_REF}"; do
  ctr_id="$(buildah from "${ref}")"
  mnt="$(buildah mount "${ctr_id}")"
  if [[ -e "${mnt}/run/secrets/pipconf" || -e "${mnt}/etc/pip.conf" || -e "${mnt}/root/.config/pip/pip.conf" ]]; then
    buildah rm "${ctr_id}" >/dev/null; die "${ref} contains a pip configuration"
  fi
  buildah rm "${ctr_id}" >/dev/null
done
log "images ready in $(( $(date +%s) - START ))s"
