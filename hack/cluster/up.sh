#!/usr/bin/env bash
# Bring up Gyre's single-node test cluster (idempotent: running parts are kept).
#
# The node runs in its own network and mount namespaces, held open by one "holder"
# process and linked to the host by a veth pair (host $HOST_IP, node $NODE_IP). Every
# iptables rule, the CNI bridge, ip_forward and every mount the cluster makes stay inside
# them, so hack/cluster/down.sh restores the host by ending the processes.
# Afterwards: KUBECONFIG=.cluster/kubeconfig (context gyre-test).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/cluster/lib.sh
source "$HERE/lib.sh"

T0=$(date +%s)
[ "$(id -u)" = 0 ] || die "the test cluster needs root (namespaces, cgroups, containerd)"
[ "$(uname -m)" = x86_64 ] || die "only x86_64 is supported (images are built for amd64)"
[ -d /sys/fs/cgroup/pids ] && [ -d /sys/fs/cgroup/memory ] ||
  die "cgroup v1 hierarchies (pids, memory) are not mounted under /sys/fs/cgroup; this cluster uses cgroupfs on v1"

"$HERE/deps.sh" cluster
"$HERE/build.sh"
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [ -x "$K8S_BIN/$b" ] || die "$K8S_BIN/$b missing after build"
done

mkdir -p "$STATE" "$LOGS" "$PIDS" "$PKI" "$STATE/config" "$STATE/manifests" "$STATE/bin" "$RUN_DIR" \
  "$CONTAINERD_ROOT" "$IMAGES_DIR"

# ---------------------------------------------------------------- host checks
check_host_network() {
  # Our link must not collide with an address or route the host already uses.
  if ip -4 -o addr show | grep -v " $HOST_VETH " | grep -q " ${HOST_IP%.*}\."; then
    die "the host already has an address in ${HOST_IP%.*}.0/$LINK_CIDR: $(ip -4 -o addr show | grep " ${HOST_IP%.*}\." | head -n1)"
  fi
  if ip link show "$HOST_VETH" >/dev/null 2>&1 && [ -z "$(holder_pid)" ]; then
    die "interface $HOST_VETH exists but this cluster is not running (another checkout's cluster?); run its hack/cluster/down.sh"
  fi
}

# check_port PORT NAME: fail, naming the owner, when something else listens on PORT in the node.
check_port() {
  local port="$1" name="$2" owner
  owner="$(in_node ss -Htlnp "sport = :$port" 2>/dev/null | head -n1 || true)"
  if [ -n "$owner" ]; then
    die "port $port needed by $name is already in use in the node: $owner"
  fi
}

# ---------------------------------------------------------------- namespaces
start_holder() {
  [ -n "$(holder_pid)" ] && return 0
  check_host_network
  # The holder's mount namespace hides the cluster's mounts (pod netns, overlays, secrets);
  # these host paths are mount points for it, created now and removed by down.sh.
  for p in /run/netns /run/containerd /var/lib/cni /var/log/pods; do
    if [ ! -e "$p" ]; then
      mkdir -p "$p"
      echo "$p" >>"$STATE/created-host-paths" # kept across failed attempts until down.sh
    fi
  done
  mkdir -p "$STATE/host/var-lib-cni" "$STATE/host/var-log-pods"
  ln -sf "$(command -v sleep)" "$STATE/bin/gyre-holder"
  local cg
  for cg in $(cgroup_dirs); do
    mkdir -p "$cg"
    # A new v1 cpuset cgroup starts with no CPUs or memory nodes: inherit the parent's.
    if [ -f "$cg/cpuset.cpus" ] && [ -z "$(cat "$cg/cpuset.cpus")" ]; then
      cat "$(dirname "$cg")/cpuset.cpus" >"$cg/cpuset.cpus"
      cat "$(dirname "$cg")/cpuset.mems" >"$cg/cpuset.mems"
    fi
  done
  (
    for cg in $(cgroup_dirs); do echo "$BASHPID" >"$cg/cgroup.procs"; done
    exec unshare --net --mount --propagation slave -- /bin/sh -ec '
      mount -t tmpfs -o mode=0755 gyre-netns /run/netns
      mount -t tmpfs -o mode=0711 gyre-containerd /run/containerd
      mount --bind "$1/host/var-lib-cni" /var/lib/cni
      mount --bind "$1/host/var-log-pods" /var/log/pods
      ip link set lo up
      exec "$1/bin/gyre-holder" infinity' sh "$STATE"
  ) >>"$LOGS/holder.log" 2>&1 </dev/null &
  echo $! >"$PIDS/holder"
  local i
  for i in $(seq 50); do
    [ -n "$(holder_pid)" ] && break
    sleep 0.1
  done
  [ -n "$(holder_pid)" ] || fail_with_log holder "could not create the node's namespaces"
  local h
  h="$(holder_pid)"
  ip link add "$HOST_VETH" type veth peer name eth0 netns "$h" ||
    fail_with_log holder "could not create the veth pair $HOST_VETH"
  ip addr add "$HOST_IP/$LINK_CIDR" dev "$HOST_VETH"
  ip link set "$HOST_VETH" up
  in_node ip addr add "$NODE_IP/$LINK_CIDR" dev eth0
  in_node ip link set eth0 up
  # Only the host end of our own link is reachable; the host does not forward.
  in_node ip route add default via "$HOST_IP"
  in_node sysctl -qw net.ipv4.ip_forward=1
  if in_node test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
    in_node sysctl -qw net.bridge.bridge-nf-call-iptables=1
  fi
  log "node namespaces ready (node $NODE_IP, host $HOST_IP on $HOST_VETH)"
}

# start NAME PORTS cmd...: start a component in the node unless it already runs.
start() {
  local name="$1" ports="$2"
  shift 2
  local pidf="$PIDS/$name"
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    return 0
  fi
  local p
  for p in $ports; do check_port "$p" "$name"; done
  local h
  h="$(holder_pid)"
  {
    echo "=== $(date -Is) starting $name"
  } >>"$LOGS/$name.log"
  (
    for cg in $(cgroup_dirs); do echo "$BASHPID" >"$cg/cgroup.procs"; done
    exec nsenter -t "$h" -m -n -- "$@"
  ) >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$pidf"
  log "started $name (pid $!, log $LOGS/$name.log)"
}

# ---------------------------------------------------------------- PKI
cert() { # NAME CN ORG EKU [SANS]
  local name="$1" cn="$2" org="$3" eku="$4" sans="${5:-}"
  [ -f "$PKI/$name.crt" ] && return 0
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

make_pki() {
  if [ ! -f "$PKI/ca.crt" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=gyre-test-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/ca.crt" 2>/dev/null
  fi
  if [ ! -f "$PKI/sa.key" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" serverAuth \
    "IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
  cert admin gyre-test-admin system:masters clientAuth
  cert controller-manager system:kube-controller-manager "" clientAuth
  cert scheduler system:kube-scheduler "" clientAuth
  cert kube-proxy system:kube-proxy "" clientAuth
  cert kubelet-client "system:node:$NODE_NAME" system:nodes clientAuth
  cert kubelet-serving "$NODE_NAME" "" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
  chmod 600 "$PKI"/*.key
}

# write_config FILE < content: replace FILE only when the content differs. A re-run of this script
# must not touch the files of running components: kube-proxy exits when its config file is written.
write_config() {
  local tmp="$1.new"
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

kubeconfig() { # FILE CERTNAME
  local f="$1" c="$2"
  [ -f "$f" ] && return 0
  local k=("$KUBECTL" --kubeconfig "$f.tmp" config)
  rm -f "$f.tmp"
  "${k[@]}" set-cluster "$CONTEXT" --server "https://$NODE_IP:$API_PORT" \
    --certificate-authority "$PKI/ca.crt" --embed-certs >/dev/null
  "${k[@]}" set-credentials "$CONTEXT-$c" --client-certificate "$PKI/$c.crt" \
    --client-key "$PKI/$c.key" --embed-certs >/dev/null
  "${k[@]}" set-context "$CONTEXT" --cluster "$CONTEXT" --user "$CONTEXT-$c" >/dev/null
  "${k[@]}" use-context "$CONTEXT" >/dev/null
  chmod 600 "$f.tmp"
  mv "$f.tmp" "$f"
}

# ---------------------------------------------------------------- images
ensure_local_images() {
  # The sandbox image: our own static pause program, alone in a one-layer image.
  local pause_tar="$IMAGES_DIR/pause-$PAUSE_IMAGE_VERSION.tar"
  if [ ! -f "$pause_tar" ]; then
    local root
    root="$(mktemp -d)"
    gcc -static -Os -Wall -o "$root/pause" "$HERE/pause/pause.c" || die "could not compile the pause program"
    strip "$root/pause"
    image_tar "$root" "$PAUSE_IMAGE" '["/pause"]' "65535:65535" "$pause_tar"
    rm -rf "$root"
  fi
  local dns_tar="$IMAGES_DIR/coredns-$COREDNS_VERSION.tar"
  if [ ! -f "$dns_tar" ]; then
    local root
    root="$(mktemp -d)"
    cp "$COREDNS_BIN/coredns" "$root/coredns"
    image_tar "$root" "$COREDNS_IMAGE" '["/coredns"]' "" "$dns_tar"
    rm -rf "$root"
  fi
}

import_image() { # TAR NAME
  if ! "${CTR[@]}" images ls -q 2>/dev/null | grep -qx "$2"; then
    "${CTR[@]}" images import "$1" >>"$LOGS/containerd.log" 2>&1 ||
      fail_with_log containerd "could not import $1 into containerd"
    log "imported $2"
  fi
}

# ---------------------------------------------------------------- configs
write_configs() {
  local c="$STATE/config"
  write_config "$c/containerd.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT/root"
state = "$RUN_DIR/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$RUN_DIR/containerd/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_ROOT/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # CAP_SYS_RESOURCE may be missing: never try to lower oom_score_adj below ours.
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  tolerate_missing_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF
  mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
  write_config "$STATE/cni/net.d/10-gyre.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "gyre",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  write_config "$c/resolv.conf" </dev/null
  write_config "$c/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# containerd 1.6 cannot report its cgroup driver; the kubelet falls back to this.
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_NAME
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: $c/resolv.conf
podLogsDirectory: /var/log/pods
# A shared machine: never evict test pods or collect the locally built images.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
rotateCertificates: false
maxPods: 110
EOF
  write_config "$c/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $STATE/config/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables:
  # Pods reach Services on the same bridge; without br_netfilter the reply would bypass
  # conntrack, so SNAT every Service connection rather than rely on a host module.
  masqueradeAll: true
  localhostNodePorts: false
# Conntrack sysctls may be read-only here: leave them as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  kubeconfig "$KUBECONFIG_FILE" admin
  kubeconfig "$c/controller-manager.kubeconfig" controller-manager
  kubeconfig "$c/scheduler.kubeconfig" scheduler
  kubeconfig "$c/kube-proxy.kubeconfig" kube-proxy
  kubeconfig "$c/kubelet.kubeconfig" kubelet-client
}

# ---------------------------------------------------------------- manifests
apply() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" apply -f "$1" >>"$LOGS/bootstrap.log" 2>&1 ||
  fail_with_log bootstrap "kubectl apply -f $1 failed"; }

write_manifests() {
  local m="$STATE/manifests"
  write_config "$m/coredns.yaml" <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  # No upstream: the node cannot reach outside DNS, and tests only need cluster names.
  Corefile: |
    .:53 {
        errors
        health {
            lameduck 2s
        }
        ready
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        cache 30
        loop
        reload
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      tolerations:
      - {key: CriticalAddonsOnly, operator: Exists}
      - {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        imagePullPolicy: IfNotPresent
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        - {name: metrics, containerPort: 9153, protocol: TCP}
        resources:
          requests: {cpu: 50m, memory: 50Mi}
          limits: {memory: 170Mi}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          initialDelaySeconds: 5
          periodSeconds: 10
          failureThreshold: 5
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
      volumes:
      - name: config
        configMap: {name: coredns}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: $DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153, protocol: TCP}
EOF
  {
    cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
# Pre-made hostPath volumes; hack/cluster/pv-reclaimer.sh makes released ones available again.
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: Immediate
EOF
    local i
    for i in $(seq -w 1 "$PV_COUNT"); do
      mkdir -p "$STATE/volumes/pv-$i"
      chmod 1777 "$STATE/volumes/pv-$i"
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: gyre-pv-$i
  labels: {gyre.dev/test-volume: "true"}
spec:
  storageClassName: standard
  capacity: {storage: 5Gi}
  accessModes: [ReadWriteOnce, ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: $STATE/volumes/pv-$i, type: Directory}
EOF
    done
  } >"$m/storage.yaml"
}
PV_COUNT=20

# ---------------------------------------------------------------- bring-up
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
api_ready() { k get --raw /readyz; }
node_ready() {
  [ "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
etcd_ready() { in_node "$ETCD_BIN/etcdctl" --endpoints http://127.0.0.1:2379 endpoint health; }
containerd_ready() { "${CTR[@]}" version; }
dns_ready() {
  [ "$(k -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = 1 ]
}
default_sa() { k -n default get serviceaccount default; }

make_pki
write_configs
write_manifests
ensure_local_images
start_holder

start etcd "2379 2380" "$ETCD_BIN/etcd" --name gyre-test --data-dir "$STATE/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster gyre-test=http://127.0.0.1:2380 --listen-metrics-urls "" \
  --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
start containerd "" containerd --config "$STATE/config/containerd.toml"
wait_for 60 etcd "etcd to be healthy" etcd_ready

start kube-apiserver "$API_PORT" "$K8S_BIN/kube-apiserver" \
  --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port "$API_PORT" \
  --etcd-servers http://127.0.0.1:2379 \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true --profiling=false \
  --enable-bootstrap-token-auth=false --anonymous-auth=true
wait_for 60 containerd "containerd to answer" containerd_ready
import_image "$IMAGES_DIR/pause-$PAUSE_IMAGE_VERSION.tar" "$PAUSE_IMAGE"
import_image "$IMAGES_DIR/coredns-$COREDNS_VERSION.tar" "$COREDNS_IMAGE"
# Containers left in containerd's (cached) store by a cluster that was not shut down cleanly.
stale="$("${CTR[@]}" containers ls -q 2>/dev/null || true)"
if [ -n "$stale" ] && ! { [ -f "$PIDS/kubelet" ] && kill -0 "$(cat "$PIDS/kubelet")" 2>/dev/null; }; then
  # shellcheck disable=SC2086
  "${CTR[@]}" containers rm $stale >>"$LOGS/containerd.log" 2>&1 || true
fi
wait_for 90 kube-apiserver "the API server to be ready (https://$NODE_IP:$API_PORT/readyz)" api_ready

start kube-controller-manager "10257" "$K8S_BIN/kube-controller-manager" \
  --kubeconfig "$STATE/config/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/config/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/config/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --cluster-name gyre-test \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
  --use-service-account-credentials --service-cluster-ip-range "$SERVICE_CIDR" \
  --controllers '*' --profiling=false
start kube-scheduler "10259" "$K8S_BIN/kube-scheduler" \
  --kubeconfig "$STATE/config/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/config/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/config/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --profiling=false
start kubelet "10250 10248" "$K8S_BIN/kubelet" --config "$STATE/config/kubelet.yaml" \
  --kubeconfig "$STATE/config/kubelet.kubeconfig" --hostname-override "$NODE_NAME" \
  --node-ip "$NODE_IP" --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" \
  --node-labels gyre.dev/test-node=true --v 1
start kube-proxy "10256 10249" "$K8S_BIN/kube-proxy" --config "$STATE/config/kube-proxy.yaml"
start pv-reclaimer "" "$HERE/pv-reclaimer.sh" "$KUBECTL" "$KUBECONFIG_FILE" "$STATE/volumes"

wait_for 120 kubelet "node $NODE_NAME to be Ready" node_ready
wait_for 60 kube-controller-manager "the default ServiceAccount" default_sa
apply "$STATE/manifests/storage.yaml"
apply "$STATE/manifests/coredns.yaml"
wait_for 120 kubelet "CoreDNS to be ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)" dns_ready

log "cluster $CONTEXT is up in $(($(date +%s) - T0)) s: export KUBECONFIG=$KUBECONFIG_FILE"
echo "bring-up seconds: $(($(date +%s) - T0))"
