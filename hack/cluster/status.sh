#!/usr/bin/env bash
# Quick health check of the test cluster: components, node, system pods.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/cluster/lib.sh
source "$HERE/lib.sh"
if [ -z "$(holder_pid)" ]; then
  echo "test cluster: down"
  exit 1
fi
rc=0
for c in etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy pv-reclaimer; do
  if [ -f "$PIDS/$c" ] && kill -0 "$(cat "$PIDS/$c")" 2>/dev/null; then
    printf '  %-24s running (pid %s)\n' "$c" "$(cat "$PIDS/$c")"
  else
    printf '  %-24s NOT RUNNING (log: %s)\n' "$c" "$LOGS/$c.log"
    rc=1
  fi
done
k=("$KUBECTL" --kubeconfig "$KUBECONFIG_FILE")
"${k[@]}" get nodes -o wide || rc=1
"${k[@]}" -n kube-system get pods -o wide || rc=1
exit $rc
