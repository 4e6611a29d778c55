#!/usr/bin/env bash
# Tear the test cluster down and leave the host as up.sh found it: no processes, mounts,
# iptables rules, bridges, veths or sysctl changes (they all lived in the node's namespaces),
# no cgroups, and none of up.sh's state in .cluster/. Cached builds and images stay in $GYRE_CACHE.
# Safe to run when nothing is up.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/cluster/lib.sh
source "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || die "need root to stop the test cluster"

stop_pid() { # NAME: SIGTERM, then SIGKILL after a grace period
  local f="$PIDS/$1" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

if [ -n "$(holder_pid)" ]; then
  # The kubelet first, so nothing restarts the containers we remove next.
  stop_pid pv-reclaimer
  stop_pid kubelet
  stop_pid kube-proxy
  if [ -S "$CONTAINERD_SOCK" ]; then
    # containerd's store is cached between runs: leave no containers behind in it.
    tasks="$("${CTR[@]}" tasks ls -q 2>/dev/null || true)"
    for t in $tasks; do "${CTR[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    for t in $tasks; do "${CTR[@]}" tasks rm -f "$t" >/dev/null 2>&1 || true; done
    containers="$("${CTR[@]}" containers ls -q 2>/dev/null || true)"
    # shellcheck disable=SC2086
    [ -z "$containers" ] || "${CTR[@]}" containers rm $containers >/dev/null 2>&1 || true
  fi
  stop_pid containerd
  stop_pid kube-scheduler
  stop_pid kube-controller-manager
  stop_pid kube-apiserver
  stop_pid etcd
fi

# Whatever is left in the cluster's cgroups (shims, container processes, the holder) goes now;
# with its last process the node's network and mount namespaces disappear.
for i in $(seq 100); do
  pids="$(cluster_pids)"
  [ -z "$pids" ] && break
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  sleep 0.1
done
[ -z "$(cluster_pids)" ] || die "processes survive in cgroup $CGROUP_NAME: $(cluster_pids | tr '\n' ' ')"

# Remove the cgroup trees, deepest first.
for cg in $(cgroup_dirs); do
  [ -d "$cg" ] || continue
  find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  [ ! -d "$cg" ] || log "warning: could not remove cgroup $cg"
done

# The veth's host end goes with the namespace; wait for the kernel to finish.
for i in $(seq 50); do
  ip link show "$HOST_VETH" >/dev/null 2>&1 || break
  sleep 0.1
done
if ip link show "$HOST_VETH" >/dev/null 2>&1; then
  ip link del "$HOST_VETH" 2>/dev/null || true
fi

# Mount points up.sh had to create on the host, removed when still empty.
if [ -f "$STATE/created-host-paths" ]; then
  while read -r p; do
    [ -n "$p" ] && rmdir "$p" 2>/dev/null || true
  done <"$STATE/created-host-paths"
fi
rm -rf "$RUN_DIR"

if [ -d "$STATE" ]; then
  # Keep the last cluster's logs for post-mortems; drop what up.sh made. Other files in
  # .cluster/ (test reports of hack/test-all.sh) are not ours to delete.
  if [ -d "$LOGS" ]; then
    rm -rf "$GYRE_CACHE/logs/last-cluster"
    mkdir -p "$GYRE_CACHE/logs"
    mv "$LOGS" "$GYRE_CACHE/logs/last-cluster"
  fi
  for entry in kubeconfig pki config manifests bin cni etcd kubelet volumes host pids created-host-paths; do
    rm -rf "${STATE:?}/$entry"
  done
  rmdir "$STATE" 2>/dev/null || true
fi
log "test cluster is down (logs of the last run: $GYRE_CACHE/logs/last-cluster)"
