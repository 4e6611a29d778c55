#!/usr/bin/env bash
# Install (or with --delete remove) the CRDs and the operator into the cluster that KUBECONFIG names.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(hack/cluster/env.sh)"
: "${KUBECONFIG:?KUBECONFIG must name a cluster}"
if [ "${1:-}" = --delete ]; then
  # Gyre objects first, while the operator still runs to release its finalizers; else the CRDs never go.
  kinds=datasets.gyre.dev,trainingruns.gyre.dev,modeldeployments.gyre.dev,driftmonitors.gyre.dev
  if kubectl get crd datasets.gyre.dev >/dev/null 2>&1; then
    kubectl delete "$kinds" --all-namespaces --all --wait=true --timeout=180s || {
      echo "undeploy: Gyre objects were not released in time; removing their finalizers" >&2
      kubectl get "$kinds" -A -o jsonpath='{range .items[*]}{.kind} {.metadata.namespace} {.metadata.name}{"\n"}{end}' |
        while read -r kind ns name; do
          kubectl -n "$ns" patch "$kind.gyre.dev" "$name" --type=merge -p '{"metadata":{"finalizers":null}}' || true
        done
    }
  fi
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
# rollout status returns once the new pods are ready; an old pod may still lead (and run old code) while it
# terminates, so wait until it is gone before anything is created against this install.
old_pods=$(kubectl -n gyre-system get pods -l app.kubernetes.io/name=gyre,app.kubernetes.io/component=operator \
  -o jsonpath='{range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name}{" "}{end}')
if [ -n "$old_pods" ]; then
  # shellcheck disable=SC2086 # one word per pod name
  kubectl -n gyre-system wait --for=delete pod $old_pods --timeout=120s
fi
