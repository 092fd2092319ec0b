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
if ! buildah inspect --type image "${BASE_IMAGE}" >/dev/null 2>&1; then
  rootfs="$(mktemp -d)"
  trap 'rm -rf "${rootfs}"' EXIT
  log "debootstrap: Debian bookworm + ${BASE_PACKAGES} (a few minutes, once)"
  mirror="$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)"
  debootstrap --variant=minbase --include="${BASE_PACKAGES}" bookworm "${rootfs}" \
    "${mirror:-http://deb.debian.org/debian}" > "${CACHE_ROOT}/debootstrap.log" 2>&1 \
    || { tail -20 "${CACHE_ROOT}/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
  ctr_id="$(buildah from scratch)"
  mnt="$(buildah mount "${ctr_id}")"
  cp -a "${rootfs}/." "${mnt}/"
  buildah umount "${ctr_id}" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd /bin/bash "${ctr_id}"
  buildah commit --quiet --rm "${ctr_id}" "${BASE_IMAGE}" >/dev/null
  log "base image ${BASE_IMAGE} built"
fi

# --- 2. the repo's images ------------------------------------------------------
secrets=()
pipconf="$(mktemp)"
trap 'rm -f "${pipconf}"' EXIT
# The effective pip configuration of this machine, files and PIP_* environment alike.
python3 - "${pipconf}" <<'PY'
import configparser, subprocess, sys
out = subprocess.run(
    [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
).stdout
conf = configparser.ConfigParser()
conf["global"] = {}
for line in out.splitlines():
    key, _, value = line.partition("=")
    option = key.rpartition(".")[2]
    value = value.strip().strip("'\"")
    # Host paths (the CA bundle, local wheel folders) do not exist in the build
    # container; the CA bundle travels as its own secret.
    if value.startswith("/"):
        continue
    conf["global"][option] = value
with open(sys.argv[1], "w") as fh:
    conf.write(fh)
PY
secrets+=(--secret "id=pipconf,src=${pipconf}")
for ca in "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [[ -n "${ca}" && -s "${ca}" ]]; then secrets+=(--secret "id=cabundle,src=${ca}"); break; fi
done

build() { # dockerfile ref
  log "buildah build -f $1 -> $2"
  buildah build --quiet --layers --format docker --build-arg "BASE_IMAGE=${BASE_IMAGE}" \
    "${secrets[@]}" -f "${REPO_ROOT}/$1" -t "$2" "${REPO_ROOT}" > "${CACHE_ROOT}/build-$(basename "$(dirname "$1")").log" 2>&1 \
    || { tail -30 "${CACHE_ROOT}/build-$(basename "$(dirname "$1")").log" >&2; die "buildah build of $1 failed (log above)"; }
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
