#!/usr/bin/env bash
# Build the two images with docker and load them into the kind cluster (make kind-load).
# With the internet: `docker build` of both Dockerfiles as they are, then `kind load`.
# Where the Dockerfiles' default base (python:3.11-slim) cannot be pulled, the builds use:
#   - the project's Debian base (hack/images.sh's debootstrap image, built here when missing),
#     copied into docker and passed as BASE_IMAGE;
#   - the Dockerfile frontend their `# syntax=` line names, built from the BuildKit Go module
#     and tagged as docker/dockerfile:1.4 in docker (BuildKit prefers a local frontend image);
#   - this machine's pip configuration and CA bundle as build secrets (never in a layer) and
#     the host network (the engine of hack/kind-docker.sh does no NAT for containers).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "${HACK_DIR}/kind-lib.sh"
START=$(date +%s)

MONITOR_REF="modelwatch/monitor:dev"
OPERATOR_REF="modelwatch/operator:dev"
UPSTREAM_BASE="$(awk -F= '/^ARG BASE_IMAGE=/ {print $2; exit}' "${REPO_ROOT}/operator/Dockerfile")"
LOCAL_BASE_BUILDAH="localhost/modelwatch/base:bookworm-py311"
LOCAL_BASE_PACKAGES="python3,python3-venv,ca-certificates,libgomp1,passwd,tzdata"
LOCAL_BASE="modelwatch-kind/base:bookworm-py311"
FRONTEND_REF="$(awk -F= '/^# syntax=/ {print $2; exit}' "${REPO_ROOT}/operator/Dockerfile")"
BUILDKIT_VERSION="${BUILDKIT_VERSION:-v0.10.6}" # its Dockerfile frontend is docker/dockerfile:1.4

ensure_kind
ensure_docker
kind_cluster_exists || die "no kind cluster ${KIND_CLUSTER}: run 'make kind-up' first"

if docker_has_or_pulls "${UPSTREAM_BASE}"; then
  docker build -t "${MONITOR_REF}" -f "${REPO_ROOT}/monitor_image/Dockerfile" "${REPO_ROOT}"
  docker build -t "${OPERATOR_REF}" -f "${REPO_ROOT}/operator/Dockerfile" "${REPO_ROOT}"
else
  log "cannot pull ${UPSTREAM_BASE}: building on the project's Debian base"
  require_root
  command -v buildah >/dev/null 2>&1 || apt_install buildah
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  # 1. the base, from buildah's store into docker's.
  if ! docker image inspect "${LOCAL_BASE}" >/dev/null 2>&1; then
    debootstrap_image "${LOCAL_BASE_BUILDAH}" "${LOCAL_BASE_PACKAGES}" "${CACHE_ROOT}/debootstrap.log"
    buildah push --quiet "${LOCAL_BASE_BUILDAH}" "docker-daemon:${LOCAL_BASE}" >/dev/null \
      || die "buildah push of ${LOCAL_BASE_BUILDAH} into docker failed"
  fi
  # 2. the Dockerfile frontend.
  if [[ -n "${FRONTEND_REF}" ]] && ! docker image inspect "${FRONTEND_REF}" >/dev/null 2>&1; then
    bin="${CACHE_ROOT}/kind-tools/dockerfile-frontend-${BUILDKIT_VERSION}/dockerfile-frontend"
    if [[ ! -x "${bin}" ]]; then
      require_go
      log "go build: the Dockerfile frontend of github.com/moby/buildkit ${BUILDKIT_VERSION}"
      src="$(mktemp -d)"
      # BuildKit's own go.mod replaces github.com/docker/docker; a main module must repeat it.
      replace="$(cd / && go mod download -json "github.com/moby/buildkit@${BUILDKIT_VERSION}" \
        | jq -r .GoMod | xargs grep '^replace github.com/docker/docker' || true)"
      printf 'module modelwatch.local/dockerfile-frontend\n\ngo 1.21\n\nrequire github.com/moby/buildkit %s\n\n%s\n' \
        "${BUILDKIT_VERSION}" "${replace}" > "${src}/go.mod"
      printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/moby/buildkit/frontend/dockerfile/cmd/dockerfile-frontend"\n' \
        > "${src}/tools.go"
      (cd "${src}" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 \
        && CGO_ENABLED=0 nice -n 10 go build -trimpath -tags "netgo static_build osusergo" -ldflags "-s -w" \
          -o "${bin}" github.com/moby/buildkit/frontend/dockerfile/cmd/dockerfile-frontend) \
        || die "go build of the Dockerfile frontend failed"
      rm -rf "${src}"
    fi
    ctx="$(mktemp -d)"
    cp "${bin}" "${ctx}/dockerfile-frontend"
    # The labels of BuildKit's own frontend image: it runs without network.
    cat > "${ctx}/Dockerfile" <<'EOF'
FROM scratch
LABEL moby.buildkit.frontend.network.none="true"
LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
COPY dockerfile-frontend /bin/dockerfile-frontend
ENTRYPOINT ["/bin/dockerfile-frontend"]
EOF
    DOCKER_BUILDKIT=0 docker build -q -t "${FRONTEND_REF}" "${ctx}" >/dev/null 2>&1 \
      || docker build -q -t "${FRONTEND_REF}" "${ctx}" >/dev/null \
      || die "cannot build the ${FRONTEND_REF} image"
    rm -rf "${ctx}"
  fi
  # 3. a BuildKit client: buildx when installed, else the Debian engine's own CLI.
  docker_build=(docker build)
  if ! docker buildx version >/dev/null 2>&1; then
    [[ -x /usr/bin/docker ]] || die "docker build needs BuildKit: install docker-buildx or docker.io"
    docker_build=(env DOCKER_BUILDKIT=1 /usr/bin/docker build)
  fi
  pipconf="$(mktemp)"
  trap 'rm -f "${pipconf}"' EXIT
  write_pip_build_conf "${pipconf}"
  secrets=(--secret "id=pipconf,src=${pipconf}")
  ca="$(pip_ca_bundle)"
  [[ -n "${ca}" ]] && secrets+=(--secret "id=cabundle,src=${ca}")
  for pair in "monitor_image:${MONITOR_REF}" "operator:${OPERATOR_REF}"; do
    dir="${pair%%:*}" ref="${pair#*:}"
    log "docker build -f ${dir}/Dockerfile -> ${ref}"
    "${docker_build[@]}" --network host --build-arg "BASE_IMAGE=${LOCAL_BASE}" "${secrets[@]}" \
      -t "${ref}" -f "${REPO_ROOT}/${dir}/Dockerfile" "${REPO_ROOT}" > "${CACHE_ROOT}/kind-build-${dir}.log" 2>&1 \
      || { tail -30 "${CACHE_ROOT}/kind-build-${dir}.log" >&2; die "docker build of ${dir}/Dockerfile failed (log above)"; }
  done
  # No build secret may remain in an image.
  for ref in "${MONITOR_REF}" "${OPERATOR_REF}"; do
    docker run --rm --network none --entrypoint /bin/sh "${ref}" -c \
      'test ! -e /run/secrets/pipconf && test ! -e /etc/pip.conf && test ! -e /tmp/.config/pip/pip.conf' \
      || die "${ref} contains a pip configuration"
  done
fi

kind load docker-image --name "${KIND_CLUSTER}" "${MONITOR_REF}" "${OPERATOR_REF}"
log "images loaded into kind cluster ${KIND_CLUSTER} in $(( $(date +%s) - START ))s"
