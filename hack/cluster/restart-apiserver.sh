#!/usr/bin/env bash
# Restart the local test cluster's kube-apiserver with the arguments it runs with, and wait for /readyz.
# Used by the fault tests (tests/integration/test_faults.py): every client's watch breaks, nothing else changes.
#   GYRE_CLUSTER_STATE  the cluster's state directory (default: this checkout's .cluster)
#   DOWN_SECONDS        how long the API server stays down before it starts again (default 0)
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pidf="$PIDS/kube-apiserver"
pid="$(cat "$pidf" 2>/dev/null || true)"
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || die "kube-apiserver is not running ($pidf); run hack/cluster/up.sh"
# up.sh starts it through nsenter, which execs it: the pid's cmdline is the server's own command line.
mapfile -d '' args <"/proc/$pid/cmdline"
[ "$(basename "${args[0]}")" = kube-apiserver ] || die "pid $pid in $pidf is not kube-apiserver: ${args[0]}"
h="$(holder_pid)"
[ -n "$h" ] || die "the cluster's namespaces are gone (no holder process); run hack/cluster/up.sh"

kill -TERM "$pid"
for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
log "stopped kube-apiserver (pid $pid)"
sleep "${DOWN_SECONDS:-0}"

echo "=== $(date -Is) restarting kube-apiserver" >>"$LOGS/kube-apiserver.log"
(
  for cg in $(cgroup_dirs); do echo "$BASHPID" >"$cg/cgroup.procs"; done
  exec nsenter -t "$h" -m -n -- "${args[@]}"
) >>"$LOGS/kube-apiserver.log" 2>&1 </dev/null &
echo $! >"$pidf"
log "started kube-apiserver (pid $!, log $LOGS/kube-apiserver.log)"
api_ready() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" get --raw /readyz; }
wait_for 90 kube-apiserver "the API server to be ready again (/readyz)" api_ready
log "kube-apiserver is ready"
