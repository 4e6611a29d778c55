#!/usr/bin/env bash
# Install (or with --delete remove) the CRDs and the operator into the cluster that KUBECONFIG names.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(hack/cluster/env.sh)"
: "${KUBECONFIG:?KUBECONFIG must name a cluster}"
if [ "${1:-}" = --delete ]; then
  kubectl delete -k manifests/ --ignore-not-found --wait=true
  exit 0
fi
kubectl apply --server-side --force-conflicts -k manifests/
kubectl wait --for condition=Established --timeout=60s crd \
  datasets.gyre.dev trainingruns.gyre.dev modeldeployments.gyre.dev driftmonitors.gyre.dev
# A rebuilt gyre:dev keeps its tag: restart so the operator runs the image just imported.
kubectl -n gyre-system rollout restart deployment/gyre-operator
if ! kubectl -n gyre-system rollout status deployment/gyre-operator --timeout=180s; then
  echo "deploy: the operator did not become ready; its pods and log:" >&2
  kubectl -n gyre-system get pods -o wide >&2 || true
  kubectl -n gyre-system logs deployment/gyre-operator --tail=40 >&2 || true
  exit 1
fi
