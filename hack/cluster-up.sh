#!/usr/bin/env bash
# Bring up a real single-node Kubernetes cluster from upstream parts:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler (built from Go
# modules), containerd + runc + CNI plugins (Debian), the kubelet and kube-proxy.
# Idempotent: against a running cluster it only checks health and returns.
# The last line of output is `export KUBECONFIG=<path>`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

START=$(date +%s)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

all_running() {
  local c
  for c in "${COMPONENTS[@]}"; do component_alive "${c}" || return 1; done
  component_alive local-provisioner python3.11 || return 1
  [[ -f "${KUBECONFIG_PATH}" ]] || return 1
  kubectl_admin get --raw /readyz >/dev/null 2>&1
}

if [[ -x "${KUBE_BIN_DIR}/kubectl" ]] && all_running; then
  log "cluster already running ($(kubectl_admin get node "${NODE_NAME}" --no-headers 2>/dev/null | awk '{print $2}'))"
  echo "export KUBECONFIG=${KUBECONFIG_PATH}"
  exit 0
fi

require_root
require_disk "$(dirname "${STATE_DIR}")" 4000

# State left by a cluster whose processes are all gone (a reboot, an ended session):
# start from a clean slate rather than from half-stale pods, IP leases and mounts.
if [[ -d "${STATE_DIR}" ]]; then
  any_alive=false
  for c in "${COMPONENTS[@]}"; do component_alive "${c}" && any_alive=true; done
  if [[ "${any_alive}" == false ]]; then
    log "found state of a stopped cluster in ${STATE_DIR}; resetting it"
    bash "${HACK_DIR}/cluster-down.sh"
  fi
fi
apt_install containerd runc containernetworking-plugins buildah debootstrap iptables \
  conntrack openssl socat ethtool iproute2 curl ca-certificates kmod util-linux
bash "${HACK_DIR}/build-kubernetes.sh"

NODE_IP="$(node_ip)"
[[ -n "${NODE_IP}" ]] || die "cannot find this host's IPv4 address (ip route get failed)"
mkdir -p "${STATE_DIR}" "${PID_DIR}" "${LOG_DIR}" "${PKI_DIR}"

# --- kernel settings the kubelet and kube-proxy rely on -----------------------
sysctl -qw net.ipv4.ip_forward=1 || die "cannot enable net.ipv4.ip_forward"
if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null; then
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
else
  log "warning: br_netfilter is unavailable; pod-to-service traffic on the bridge may bypass kube-proxy"
fi

# --- PKI ---------------------------------------------------------------------
gen_cert() { # name cn org sans(comma list, may be empty) usage(client|server|both)
  local name="$1" cn="$2" org="$3" sans="$4" usage="$5" ext="${PKI_DIR}/$1.ext" eku
  [[ -f "${PKI_DIR}/${name}.crt" ]] && return 0
  case "${usage}" in
    client) eku="clientAuth" ;; server) eku="serverAuth" ;; *) eku="serverAuth,clientAuth" ;;
  esac
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=${eku}"
    [[ -n "${sans}" ]] && echo "subjectAltName=${sans}"
  } > "${ext}"
  local subj="/CN=${cn}"
  [[ -n "${org}" ]] && subj="/O=${org}${subj}"
  openssl req -new -newkey rsa:2048 -nodes -keyout "${PKI_DIR}/${name}.key" \
    -subj "${subj}" -out "${PKI_DIR}/${name}.csr" 2>/dev/null
  openssl x509 -req -in "${PKI_DIR}/${name}.csr" -CA "${PKI_DIR}/ca.crt" -CAkey "${PKI_DIR}/ca.key" \
    -CAcreateserial -days 825 -extfile "${ext}" -out "${PKI_DIR}/${name}.crt" 2>/dev/null \
    || die "openssl failed to sign the ${name} certificate"
  rm -f "${PKI_DIR}/${name}.csr" "${ext}"
}

if [[ ! -f "${PKI_DIR}/ca.crt" ]]; then
  log "generating the CA and certificates"
  openssl req -x509 -new -newkey rsa:2048 -nodes -days 3650 -subj "/CN=modelwatch-local-ca" \
    -keyout "${PKI_DIR}/ca.key" -out "${PKI_DIR}/ca.crt" 2>/dev/null || die "openssl failed to create the CA"
  openssl genrsa -out "${PKI_DIR}/sa.key" 2048 2>/dev/null
  openssl rsa -in "${PKI_DIR}/sa.key" -pubout -out "${PKI_DIR}/sa.pub" 2>/dev/null
fi
gen_cert apiserver kube-apiserver "" \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:${KUBERNETES_SVC_IP},IP:${NODE_IP}" server
gen_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "" client
gen_cert admin modelwatch-admin system:masters "" client
gen_cert controller-manager system:kube-controller-manager "" "" client
gen_cert scheduler system:kube-scheduler "" "" client
gen_cert kube-proxy system:kube-proxy "" "" client
gen_cert kubelet-client "system:node:${NODE_NAME}" system:nodes "" client
gen_cert kubelet-serving "system:node:${NODE_NAME}" system:nodes \
  "DNS:${NODE_NAME},DNS:localhost,IP:127.0.0.1,IP:${NODE_IP}" server

write_kubeconfig() { # path user cert key
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: modelwatch
  cluster:
    server: https://127.0.0.1:${APISERVER_PORT}
    certificate-authority: ${PKI_DIR}/ca.crt
users:
- name: $2
  user:
    client-certificate: $3
    client-key: $4
contexts:
- name: modelwatch
  context: {cluster: modelwatch, user: $2}
current-context: modelwatch
KC
}
write_kubeconfig "${KUBECONFIG_PATH}" admin "${PKI_DIR}/admin.crt" "${PKI_DIR}/admin.key"
for c in controller-manager scheduler kube-proxy; do
  write_kubeconfig "${STATE_DIR}/${c}.kubeconfig" "${c}" "${PKI_DIR}/${c}.crt" "${PKI_DIR}/${c}.key"
done
write_kubeconfig "${STATE_DIR}/kubelet.kubeconfig" kubelet "${PKI_DIR}/kubelet-client.crt" "${PKI_DIR}/kubelet-client.key"

B="${KUBE_BIN_DIR}"

# --- etcd --------------------------------------------------------------------
if ! component_alive etcd; then
  require_port_free "${ETCD_CLIENT_PORT}" etcd
  require_port_free "${ETCD_PEER_PORT}" etcd
  start_component etcd "${B}/etcd" --name modelwatch --data-dir "${STATE_DIR}/etcd" \
    --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster "modelwatch=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --listen-metrics-urls "http://127.0.0.1:2381" --quota-backend-bytes 4294967296 \
    --unsafe-no-fsync --log-level warn
fi
wait_healthy etcd 60 curl -fsS "http://127.0.0.1:${ETCD_CLIENT_PORT}/health"

# --- kube-apiserver ----------------------------------------------------------
if ! component_alive kube-apiserver; then
  require_port_free "${APISERVER_PORT}" kube-apiserver
  start_component kube-apiserver "${B}/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --bind-address 0.0.0.0 --secure-port "${APISERVER_PORT}" --advertise-address "${NODE_IP}" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --client-ca-file "${PKI_DIR}/ca.crt" \
    --tls-cert-file "${PKI_DIR}/apiserver.crt" --tls-private-key-file "${PKI_DIR}/apiserver.key" \
    --kubelet-client-certificate "${PKI_DIR}/apiserver-kubelet-client.crt" \
    --kubelet-client-key "${PKI_DIR}/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "${PKI_DIR}/ca.crt" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-key-file "${PKI_DIR}/sa.pub" \
    --service-account-signing-key-file "${PKI_DIR}/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --event-ttl 2h --v 1
fi
wait_healthy kube-apiserver 120 curl -fsS --cacert "${PKI_DIR}/ca.crt" "https://127.0.0.1:${APISERVER_PORT}/readyz"

# --- kube-controller-manager and kube-scheduler ------------------------------
if ! component_alive kube-controller-manager; then
  require_port_free 10257 kube-controller-manager
  start_component kube-controller-manager "${B}/kube-controller-manager" \
    --kubeconfig "${STATE_DIR}/controller-manager.kubeconfig" \
    --authentication-kubeconfig "${STATE_DIR}/controller-manager.kubeconfig" \
    --authorization-kubeconfig "${STATE_DIR}/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false \
    --controllers '*' --use-service-account-credentials=true \
    --service-account-private-key-file "${PKI_DIR}/sa.key" --root-ca-file "${PKI_DIR}/ca.crt" \
    --cluster-signing-cert-file "${PKI_DIR}/ca.crt" --cluster-signing-key-file "${PKI_DIR}/ca.key" \
    --allocate-node-cidrs=true --cluster-cidr "${CLUSTER_CIDR}" --node-cidr-mask-size 24 \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --concurrent-deployment-syncs 10 --concurrent-job-syncs 10 --concurrent-cron-job-syncs 10 \
    --v 1
fi
if ! component_alive kube-scheduler; then
  require_port_free 10259 kube-scheduler
  start_component kube-scheduler "${B}/kube-scheduler" \
    --kubeconfig "${STATE_DIR}/scheduler.kubeconfig" \
    --authentication-kubeconfig "${STATE_DIR}/scheduler.kubeconfig" \
    --authorization-kubeconfig "${STATE_DIR}/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --v 1
fi
wait_healthy kube-controller-manager 60 curl -fsSk https://127.0.0.1:10257/healthz
wait_healthy kube-scheduler 60 curl -fsSk https://127.0.0.1:10259/healthz

# --- containerd ----------------------------------------------------------------
mkdir -p "${STATE_DIR}/cni/net.d" "$(dirname "${CONTAINERD_SOCK}")"
# Without CAP_SYS_RESOURCE in the bounding set, runc cannot set the kubelet's
# negative oom_score_adj for sandboxes ("failed to update /proc/self/oom_score_adj").
RESTRICT_OOM=false
if ! capsh --has-p=cap_sys_resource 2>/dev/null && \
   (( (0x$(awk '/^CapBnd/ {print $2}' /proc/self/status) >> 24 & 1) == 0 )); then
  RESTRICT_OOM=true
fi
write_if_changed "${STATE_DIR}/containerd.toml" <<TOML
version = 2
root = "${CONTAINERD_ROOT}/root"
state = "$(dirname "${CONTAINERD_SOCK}")/state"
[grpc]
  address = "${CONTAINERD_SOCK}"
[plugins."io.containerd.internal.v1.opt"]
  path = "${CONTAINERD_ROOT}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # This sandbox withholds CAP_SYS_RESOURCE (see CapBnd in /proc/self/status), so
  # the kernel refuses a negative oom_score_adj; clamp to containerd's own value.
  restrict_oom_score_adj = ${RESTRICT_OOM}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${STATE_DIR}/cni/net.d"
TOML
write_if_changed "${STATE_DIR}/cni/net.d/10-modelwatch.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "modelwatch",
  "plugins": [
    {
      "type": "bridge", "bridge": "mw0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "${POD_CIDR}"}]],
               "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "${STATE_DIR}/cni/ipam"}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CNI
if ! component_alive containerd; then
  start_component containerd containerd --config "${STATE_DIR}/containerd.toml"
fi
wait_healthy containerd 60 ctr -a "${CONTAINERD_SOCK}" version

# The sandbox (pause) image is built locally: nothing is pulled from a registry.
bash "${HACK_DIR}/pause-image.sh"

# --- kubelet -----------------------------------------------------------------
write_if_changed "${STATE_DIR}/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI_DIR}/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
tlsCertFile: ${PKI_DIR}/kubelet-serving.crt
tlsPrivateKeyFile: ${PKI_DIR}/kubelet-serving.key
failSwapOn: false
podCIDR: ${POD_CIDR}
resolvConf: /etc/resolv.conf
healthzBindAddress: 127.0.0.1
healthzPort: 10248
serializeImagePulls: false
maxPods: 250
# Images are built and imported locally and cannot be pulled again: never GC them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
YAML
if ! component_alive kubelet; then
  require_port_free 10250 kubelet
  start_component kubelet "${B}/kubelet" --config "${STATE_DIR}/kubelet.yaml" \
    --kubeconfig "${STATE_DIR}/kubelet.kubeconfig" --root-dir "${STATE_DIR}/kubelet" \
    --hostname-override "${NODE_NAME}" --node-ip "${NODE_IP}" --v 1
fi
wait_healthy kubelet 90 curl -fsS http://127.0.0.1:10248/healthz

# --- kube-proxy --------------------------------------------------------------
write_if_changed "${STATE_DIR}/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${STATE_DIR}/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: ${CLUSTER_CIDR}
hostnameOverride: ${NODE_NAME}
conntrack: {maxPerCore: 0}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
YAML
if ! component_alive kube-proxy; then
  require_port_free 10256 kube-proxy
  start_component kube-proxy "${B}/kube-proxy" --config "${STATE_DIR}/kube-proxy.yaml" --v 1
fi
wait_healthy kube-proxy 60 curl -fsS http://127.0.0.1:10256/healthz

# --- the node, storage and RBAC the rest of the tooling expects -----------------
deadline=$(( $(date +%s) + 120 ))
until [[ "$(kubectl_admin get node "${NODE_NAME}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == "True" ]]; do
  if (( $(date +%s) >= deadline )); then
    tail -n 30 "${LOG_DIR}/kubelet.log" >&2
    die "node ${NODE_NAME} did not become Ready within 120s; the tail of the kubelet log is above"
  fi
  sleep 1
done

# A default StorageClass named like kind's, served by a small provisioner that
# creates host directories, so a PVC binds here as it does on kind.
kubectl_admin apply --server-side -f - >/dev/null <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: modelwatch.io/local-hostpath
reclaimPolicy: Delete
volumeBindingMode: Immediate
YAML
if ! component_alive local-provisioner python3.11; then
  start_component local-provisioner /usr/bin/python3.11 "${HACK_DIR}/local-provisioner.py" \
    --kubectl "${B}/kubectl" --kubeconfig "${KUBECONFIG_PATH}" --root "${STATE_DIR}/volumes"
fi

# The S3-compatible object store (SeaweedFS) is not started here: only an s3:// store needs
# it, and hack/s3-up.sh (make s3-up; make test and make bench run it) builds and starts it.

# Wait for the default ServiceAccount, so a Pod can be created right away.
deadline=$(( $(date +%s) + 60 ))
until kubectl_admin get serviceaccount default -n default >/dev/null 2>&1; do
  (( $(date +%s) < deadline )) || die "the default ServiceAccount did not appear within 60s (kube-controller-manager log: ${LOG_DIR}/kube-controller-manager.log)"
  sleep 1
done

log "cluster up in $(( $(date +%s) - START ))s: $(kubectl_admin version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
echo "export KUBECONFIG=${KUBECONFIG_PATH}"
