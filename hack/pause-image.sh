#!/usr/bin/env bash
# Build the sandbox (pause) image from hack/pause with Go and buildah, and import it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

image_in_containerd "${PAUSE_IMAGE}" && exit 0
require_go
out="${CACHE_ROOT}/pause"
mkdir -p "${out}"
(cd "${HACK_DIR}/pause" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${out}/pause" .) \
  || die "go build of the pause binary failed"
ctr_id="$(buildah from scratch)"
trap 'buildah rm "${ctr_id}" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "${ctr_id}" "${out}/pause" /pause >/dev/null
buildah config --entrypoint '["/pause"]' --user 65535:65535 "${ctr_id}"
buildah commit --quiet "${ctr_id}" "${PAUSE_IMAGE}" >/dev/null
import_image "${PAUSE_IMAGE}" "${PAUSE_IMAGE}"
log "pause image ${PAUSE_IMAGE} imported"
