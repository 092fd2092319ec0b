#!/usr/bin/env bash
# Build SeaweedFS's `weed` (master, volume server, filer and S3 gateway in one binary)
# from its pinned Go module into a cache outside the repo, keyed by version.
# A second run with the cache warm is a no-op. Only the S3 store needs it: hack/s3-up.sh
# (make s3-up, make test, make bench) builds it on first use, with progress lines.
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
build_dir="$(dirname "${WEED_BIN}")"
mkdir -p "${build_dir}"
download_json="${build_dir}/download.json"
download() { cd / && go mod download -json "${module}" > "${download_json}"; }
run_timed seaweedfs-download "go mod download ${module}" "${build_dir}/download.log" \
  "the Go module proxy; a minute or two" -- download \
  || die "cannot download ${module} from the Go module proxy"
src="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Dir"])' "${download_json}")" \
  || die "go mod download of ${module} wrote no module folder (${download_json})"
[[ -d "${src}/weed" ]] || die "${module} has no weed/ folder at ${src}"

tmp="${WEED_BIN}.tmp-$$"
trap 'rm -f "${tmp}"' EXIT
build() { cd "${src}" && go build -o "${tmp}" ./weed; }
run_timed seaweedfs-build "go build ./weed of ${module}" "${build_dir}/build.log" \
  "a first build takes about six minutes on 2 cores" -- build \
  || die "go build of ${module} failed"
"${tmp}" version >/dev/null 2>&1 || die "the built weed binary does not run ('weed version' failed)"
mv -f "${tmp}" "${WEED_BIN}"
log "seaweedfs ${SEAWEEDFS_VERSION} built into ${WEED_BIN}"
