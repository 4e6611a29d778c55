# Shared settings and helpers for hack/cluster/*.sh (sourced, not run).
# shellcheck shell=bash
CLUSTER_HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLUSTER_HACK/../.." && pwd)"
# shellcheck source=hack/cluster/versions.env
source "$CLUSTER_HACK/versions.env"

# Builds and images are cached outside the repo, keyed by version.
GYRE_CACHE="${GYRE_CACHE:-$HOME/.cache/gyre}"
K8S_BIN="$GYRE_CACHE/bin/kubernetes-$KUBERNETES_VERSION"
ETCD_BIN="$GYRE_CACHE/bin/etcd-$ETCD_VERSION"
COREDNS_BIN="$GYRE_CACHE/bin/coredns-$COREDNS_VERSION"
HELM_BIN="$GYRE_CACHE/bin/helm-$HELM_VERSION"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

# Runtime state of the cluster: in the repo (git-ignored) so each clone has its own, except
# containerd's image store, which is cached so images survive a down/up cycle.
STATE="${GYRE_CLUSTER_STATE:-$REPO_ROOT/.cluster}"
KUBECONFIG_FILE="$STATE/kubeconfig"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
PKI="$STATE/pki"
RUN_DIR=/run/gyre-cluster
CONTAINERD_ROOT="$GYRE_CACHE/containerd"
CONTAINERD_SOCK="$RUN_DIR/containerd/containerd.sock"
IMAGES_DIR="$GYRE_CACHE/images"

# The node lives in its own network namespace, linked to the host by a veth pair:
# its iptables rules, bridge, routes and ip_forward vanish with it.
HOST_VETH=gyre-host
HOST_IP=10.213.0.1
NODE_IP=10.213.0.2
LINK_CIDR=30
NODE_NAME=gyre-test-node
CONTEXT=gyre-test
API_PORT=6443
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
POD_CIDR=10.244.0.0/16
POD_SUBNET=10.244.0.0/24
# Every cluster process lives under this cgroup in each v1 hierarchy, so teardown finds them all.
CGROUP_NAME=gyre-cluster

PAUSE_IMAGE="gyre.local/pause:$PAUSE_IMAGE_VERSION"
COREDNS_IMAGE="gyre.local/coredns:$COREDNS_VERSION"

KUBECTL="$K8S_BIN/kubectl"
CTR=(ctr --address "$CONTAINERD_SOCK" -n k8s.io)

# holder_pid: the process whose network and mount namespaces the cluster runs in (empty if none).
holder_pid() {
  local pid
  pid="$(cat "$PIDS/holder" 2>/dev/null || true)"
  if [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -q '^gyre-holder' "/proc/$pid/comm" 2>/dev/null; then
    echo "$pid"
  fi
}

# in_node cmd...: run a command inside the node's namespaces.
in_node() {
  local h
  h="$(holder_pid)"
  [ -n "$h" ] || die "the cluster's namespaces are gone (no holder process); run hack/cluster/up.sh"
  nsenter -t "$h" -m -n -- "$@"
}

# cgroup_dirs: this cluster's cgroup directory in every v1 hierarchy that is mounted.
cgroup_dirs() {
  local d
  for d in /sys/fs/cgroup/*/; do
    d="${d%/}"
    case "$(basename "$d")" in unified) continue ;; esac
    [ -f "$d/cgroup.procs" ] && echo "$d/$CGROUP_NAME"
  done
}

# cluster_pids: every process in the cluster's cgroup tree (pids hierarchy).
cluster_pids() {
  local root=/sys/fs/cgroup/pids/$CGROUP_NAME
  [ -d "$root" ] || root=/sys/fs/cgroup/memory/$CGROUP_NAME
  [ -d "$root" ] || return 0
  find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}

# fail_with_log NAME REASON: the failure message every script ends with.
fail_with_log() {
  local name="$1" reason="$2" f="$LOGS/$1.log"
  printf 'ERROR: %s\n' "$reason" >&2
  if [ -f "$f" ]; then
    printf -- '--- last 40 lines of %s ---\n' "$f" >&2
    tail -n 40 "$f" >&2
    printf -- '--- end of %s ---\n' "$f" >&2
  fi
  exit 1
}

# wait_for SECONDS NAME DESCRIPTION cmd...: poll until cmd succeeds, else fail with NAME's log.
wait_for() {
  local timeout="$1" name="$2" what="$3"
  shift 3
  local deadline=$((SECONDS + timeout)) pidf="$PIDS/$name"
  until "$@" >/dev/null 2>&1; do
    if [ -f "$pidf" ] && ! kill -0 "$(cat "$pidf")" 2>/dev/null; then
      fail_with_log "$name" "$name exited while waiting for $what"
    fi
    if [ $SECONDS -ge $deadline ]; then
      fail_with_log "$name" "timed out after ${timeout}s waiting for $what"
    fi
    sleep 0.5
  done
}

# image_tar ROOTFS NAME ENTRYPOINT_JSON USER OUT: write a one-layer docker-archive that
# `ctr images import` accepts, without needing a container engine.
image_tar() {
  local rootfs="$1" name="$2" entry="$3" user="$4" out="$5" tmp
  tmp="$(mktemp -d)"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -C "$rootfs" -cf "$tmp/layer.tar" .
  local diff cfg
  diff="$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)"
  mkdir "$tmp/$diff"
  mv "$tmp/layer.tar" "$tmp/$diff/layer.tar"
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Entrypoint":%s,"User":"%s","WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entry" "$user" "$diff" >"$tmp/config.json"
  cfg="$(sha256sum "$tmp/config.json" | cut -d' ' -f1)"
  mv "$tmp/config.json" "$tmp/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$name" "$diff" >"$tmp/manifest.json"
  tar -C "$tmp" -cf "$out.tmp" manifest.json "$cfg.json" "$diff"
  mv "$out.tmp" "$out"
  rm -rf "$tmp"
}
