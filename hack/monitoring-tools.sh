#!/usr/bin/env bash
# The tools some tests run: promtool (Debian's prometheus package) and helm (built from its
# Go module by hack/build-helm.sh, cached outside the repo) for the monitoring tests, and
# headless Chromium (Debian's chromium package) for the report test.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-all}" in
  promtool | all)
    if ! command -v promtool >/dev/null 2>&1; then
      [[ ${EUID} -eq 0 ]] || die "promtool is missing: apt-get install prometheus (as root)"
      apt_install prometheus
    fi
    log "promtool: $(promtool --version 2>&1 | head -1)"
    ;;&
  helm | all)
    bash "${HACK_DIR}/build-helm.sh"
    ;;&
  chromium | all)
    if ! command -v chromium >/dev/null 2>&1; then
      [[ ${EUID} -eq 0 ]] || die "chromium is missing: apt-get install chromium (as root)"
      apt_install chromium
    fi
    log "chromium: $(chromium --version 2>/dev/null | head -1)"
    ;;
  promtool | helm) ;;
  *) die "usage: $0 [promtool|helm|chromium|all]" ;;
esac
