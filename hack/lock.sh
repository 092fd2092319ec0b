#!/usr/bin/env bash
# One lock for the venv and both images.
#   hack/lock.sh [uv lock flags]   refresh uv.lock from pyproject.toml, export requirements/*.txt
#   hack/lock.sh --check           fail when uv.lock or an export is out of step with pyproject.toml
# uv reads no pip configuration, so the machine's pip CA bundle and index are handed over.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v uv >/dev/null 2>&1 || { echo "lock: uv is not installed (make venv installs it)" >&2; exit 1; }

pip_conf() { python3 -m pip config get "global.$1" 2>/dev/null || true; }
cert="$(pip_conf cert)"; [[ -n "${cert}" && -z "${SSL_CERT_FILE:-}" ]] && export SSL_CERT_FILE="${cert}"
index="$(pip_conf index-url)"; [[ -n "${index}" && -z "${UV_DEFAULT_INDEX:-}" ]] && export UV_DEFAULT_INDEX="${index}"

# name: uv export flags. The images install operator.txt and monitor.txt; the venv dev.txt.
EXPORTS=(
  "operator:--no-dev --extra operator"
  "monitor:--no-dev --extra monitor --extra s3"
  "dev:--all-extras --group dev"
)
export_one() { # name flags...
  local name="$1"; shift
  echo "# requirements/${name}.txt: generated from uv.lock by 'make lock' (hack/lock.sh); do not edit."
  # shellcheck disable=SC2068
  uv export --frozen --no-emit-project --no-header $@ --quiet
}

if [[ "${1:-}" == "--check" ]]; then
  uv lock --check --quiet \
    || { echo "lock: uv.lock is out of step with pyproject.toml; run 'make lock'" >&2; exit 1; }
  for entry in "${EXPORTS[@]}"; do
    name="${entry%%:*}"
    # shellcheck disable=SC2086
    if ! diff -q <(export_one "${name}" ${entry#*:}) "requirements/${name}.txt" >/dev/null; then
      echo "lock: requirements/${name}.txt is out of step with uv.lock; run 'make lock'" >&2
      exit 1
    fi
  done
  echo "lock: uv.lock and requirements/*.txt match pyproject.toml"
  exit 0
fi

uv lock "$@"
mkdir -p requirements
for entry in "${EXPORTS[@]}"; do
  name="${entry%%:*}"
  # shellcheck disable=SC2086
  export_one "${name}" ${entry#*:} > "requirements/${name}.txt"
done
echo "lock: uv.lock and requirements/{operator,monitor,dev}.txt written"
