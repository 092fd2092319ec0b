#!/bin/bash
# runc, less the capabilities named in RUNC_DROP_CAPS (CAP_* names separated by spaces; the
# environment of the dockerd that hack/kind-docker.sh starts, handed down through containerd
# and its shims): docker gives a --privileged container or exec every capability the kernel
# knows, and runc fails ("unable to apply caps") on one this machine's bounding set lacks.
# hack/kind-docker.sh makes this dockerd's default runtime only where that is the case.
drop="${RUNC_DROP_CAPS:-}"
args=("$@")
bundle="" process=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --bundle | -b) bundle="${args[i + 1]}" ;;
    --bundle=*) bundle="${args[i]#--bundle=}" ;;
    --process | -p) process="${args[i + 1]}" ;;
    --process=*) process="${args[i]#--process=}" ;;
  esac
done
# FILE JQ-PATH: remove the dropped capabilities from each set under JQ-PATH, in place.
strip() {
  jq --arg drop "${drop}" "(\$drop | split(\" \")) as \$d
    | if $2 then $2 |= with_entries(.value -= \$d) else . end" "$1" > "$1.tmp" && mv "$1.tmp" "$1"
}
if [[ -n "${drop}" ]]; then
  [[ -n "${bundle}" && -f "${bundle}/config.json" ]] && strip "${bundle}/config.json" .process.capabilities
  [[ -n "${process}" && -f "${process}" ]] && strip "${process}" .capabilities
fi
exec runc "$@"
