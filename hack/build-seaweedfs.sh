#!/usr/bin/env bash
# Build SeaweedFS's `weed` (master, volume server, filer and S3 gateway in one binary)
# from its pinned Go module into a cache outside the repo, keyed by version.
# A second run with the cache warm is a no-op.
#
# `go install github.com/seaweedfs/seaweedfs/weed@<v>` is refused because the module's
# go.mod carries replace directives, so the build runs inside the downloaded module source.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -x "${WEED_BIN}" ]]; then
  log "seaweedfs ${SEAWEEDFS_VERSION} already built in $(dirname "${WEED_BIN}")"
  exit 0
fi

require_go
require_disk "${CACHE_ROOT}" 1000
GOPATH_MOD="$(go env GOMODCACHE)"
require_disk "${GOPATH_MOD%/*}" 3000

module="github.com/seaweedfs/seaweedfs@${SEAWEEDFS_VERSION}"
log "downloading ${module} from the Go module proxy"
src="$( (cd / && go mod download -json "${module}") \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')" \
  || die "cannot download ${module} from the Go module proxy"
[[ -d "${src}/weed" ]] || die "${module} has no weed/ folder at ${src}"

mkdir -p "$(dirname "${WEED_BIN}")"
tmp="${WEED_BIN}.tmp-$$"
trap 'rm -f "${tmp}"' EXIT
log "go build ./weed in ${src} (cold: ten minutes or more on 2 cores)"
start=$(date +%s)
(cd "${src}" && go build -o "${tmp}" ./weed) || die "go build of ${module} failed"
"${tmp}" version >/dev/null 2>&1 || die "the built weed binary does not run ('weed version' failed)"
mv -f "${tmp}" "${WEED_BIN}"
log "built in $(( $(date +%s) - start ))s into ${WEED_BIN}"
