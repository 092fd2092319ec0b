#!/usr/bin/env bash
# Start (or reuse) the local S3-compatible object store: SeaweedFS's master, volume
# server, filer and S3 gateway in one `weed server` process, as a host process like the
# other cluster components. The S3 gateway listens on the node IP, which pods reach
# through the bridge's gateway; everything else listens on loopback only.
# An access key and secret are generated on the first start and kept in
# ${S3_ENV_FILE} (mode 600); tests and tools put them into the Secret named by a
# ModelMonitor's spec.store.credentials. The bucket ${S3_BUCKET} is created at start.
# Not part of cluster-up: only an s3:// store needs it (the S3 tests, make bench), so it is
# built (hack/build-seaweedfs.sh, minutes on a cold cache) and started on first use.
# Usage: hack/s3-up.sh [NODE_IP]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -d "${STATE_DIR}" ]] || die "no local cluster state in ${STATE_DIR}: run 'make cluster-up' first"

NODE_IP="${1:-$(node_ip)}"
[[ -n "${NODE_IP}" ]] || die "cannot find this host's IPv4 address (ip route get failed)"
bash "${HACK_DIR}/build-seaweedfs.sh"
mkdir -p "${S3_DIR}/data" "${PID_DIR}" "${LOG_DIR}"
chmod 700 "${S3_DIR}"
ENDPOINT="http://${NODE_IP}:${S3_PORT}"

# Credentials: generated once per cluster state, never printed.
if [[ ! -s "${S3_ENV_FILE}" ]]; then
  access_key="MW$(openssl rand -hex 9 | tr 'a-f' 'A-F')"
  secret_key="$(openssl rand -base64 30 | tr -d '/+=\n')"
  (
    umask 077
    {
      echo "MODELWATCH_S3_ENDPOINT=${ENDPOINT}"
      echo "MODELWATCH_S3_BUCKET=${S3_BUCKET}"
      echo "AWS_ACCESS_KEY_ID=${access_key}"
      echo "AWS_SECRET_ACCESS_KEY=${secret_key}"
    } > "${S3_ENV_FILE}"
    cat > "${S3_DIR}/identities.json" <<JSON
{
  "identities": [
    {
      "name": "modelwatch",
      "credentials": [{"accessKey": "${access_key}", "secretKey": "${secret_key}"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
JSON
  )
fi
s3_var() { sed -n "s/^$1=//p" "${S3_ENV_FILE}"; }
# The node IP may change between starts of one state (a new lease): keep the endpoint current.
sed -i "s|^MODELWATCH_S3_ENDPOINT=.*|MODELWATCH_S3_ENDPOINT=${ENDPOINT}|" "${S3_ENV_FILE}"

if ! component_alive seaweedfs weed; then
  for port in "${S3_PORT}" "${S3_MASTER_PORT}" "${S3_VOLUME_PORT}" "${S3_FILER_PORT}"; do
    require_port_free "${port}" seaweedfs
    require_port_free "$(( port + 10000 ))" seaweedfs
  done
  start_component seaweedfs "${WEED_BIN}" server -dir "${S3_DIR}/data" \
    -ip 127.0.0.1 -ip.bind 127.0.0.1 \
    -master.port "${S3_MASTER_PORT}" -master.port.grpc "$(( S3_MASTER_PORT + 10000 ))" \
    -master.volumeSizeLimitMB 1024 -master.telemetry=false \
    -volume.port "${S3_VOLUME_PORT}" -volume.port.grpc "$(( S3_VOLUME_PORT + 10000 ))" \
    -volume.max 0 -volume.preStopSeconds 1 \
    -filer -filer.port "${S3_FILER_PORT}" -filer.port.grpc "$(( S3_FILER_PORT + 10000 ))" \
    -s3 -s3.port "${S3_PORT}" -s3.port.grpc "$(( S3_PORT + 10000 ))" -s3.ip.bind "${NODE_IP}" \
    -s3.port.iceberg 0 -s3.port.lance 0 -s3.config "${S3_DIR}/identities.json"
fi
COMPONENT_BINARY=weed wait_healthy seaweedfs 120 curl -fsS "${ENDPOINT}/healthz"

# Signed requests (SigV4) with the generated key; the credentials reach curl on stdin,
# never on its command line.
s3_curl() { # curl args...
  printf 'user = "%s:%s"\n' "$(s3_var AWS_ACCESS_KEY_ID)" "$(s3_var AWS_SECRET_ACCESS_KEY)" \
    | curl -K - -sS --aws-sigv4 "aws:amz:us-east-1:s3" "$@"
}
deadline=$(( $(date +%s) + 60 ))
until s3_curl -f -o /dev/null -I "${ENDPOINT}/${S3_BUCKET}" 2>/dev/null \
   || s3_curl -f -o /dev/null -X PUT "${ENDPOINT}/${S3_BUCKET}" 2>/dev/null; do
  # The filer may still be connecting to the master: retry until the deadline.
  if (( $(date +%s) >= deadline )); then
    tail -n 30 "${LOG_DIR}/seaweedfs.log" >&2 || true
    die "cannot create the bucket ${S3_BUCKET} at ${ENDPOINT}; the tail of ${LOG_DIR}/seaweedfs.log is above"
  fi
  sleep 1
done
log "object store up: ${ENDPOINT}, bucket s3://${S3_BUCKET} (credentials in ${S3_ENV_FILE})"
