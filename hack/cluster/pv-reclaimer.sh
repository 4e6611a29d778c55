#!/usr/bin/env bash
# Runs beside the test cluster: wipes released test PersistentVolumes and makes them
# Available again, so the pre-made volumes behave like a small dynamic pool.
# Usage: pv-reclaimer.sh KUBECTL KUBECONFIG VOLUMES_DIR
set -uo pipefail
kubectl="$1" kubeconfig="$2" volumes="$3"
while sleep 3; do
  released="$("$kubectl" --kubeconfig "$kubeconfig" get pv -l gyre.dev/test-volume=true \
    -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name} {.spec.hostPath.path}{"\n"}{end}' 2>/dev/null)" || continue
  while read -r name path; do
    [ -n "$name" ] || continue
    # Only ever wipe our own volume directories.
    case "$path" in "$volumes"/pv-*) ;; *) continue ;; esac
    find "$path" -mindepth 1 -delete 2>/dev/null
    if "$kubectl" --kubeconfig "$kubeconfig" patch pv "$name" --type json \
      -p '[{"op":"remove","path":"/spec/claimRef"}]' >/dev/null; then
      echo "$(date -Is) reclaimed $name"
    fi
  done <<<"$released"
done
