#!/usr/bin/env bash
# Print export lines for the test cluster: eval "$(hack/cluster/env.sh)".
# KUBECONFIG names the local cluster unless one is already set in the environment;
# PATH starts with the pinned kubectl and helm.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/cluster/lib.sh
source "$HERE/lib.sh"
# An explicit KUBECONFIG (as `make` passes on) wins, as everywhere else in the Makefile.
kc="${KUBECONFIG:-$KUBECONFIG_FILE}"
printf 'export KUBECONFIG=%q\n' "$kc"
printf 'export PATH=%q:%q:"$PATH"\n' "$K8S_BIN" "$HELM_BIN"
