#!/usr/bin/env bash
# `make test`: every tier, in order of cost. Static checks, unit, then the real cluster (integration, e2e).
# Each tier runs even when an earlier one failed, so one CI run shows everything; the exit code is non-zero if any
# failed. The cluster is brought up here unless KUBECONFIG names one; under CI it is torn down at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
REPORTS=$ROOT/.cluster/reports
mkdir -p "$REPORTS"
rm -f "$REPORTS"/*.xml

declare -a SUMMARY=()
FAILED=0
stage() { # stage NAME CMD... : run, time and record one stage
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name"
  if "$@"; then
    SUMMARY+=("$(printf '%-22s ok      %5ss' "$name" $((SECONDS - t0)))")
  else
    local rc=$?
    SUMMARY+=("$(printf '%-22s FAILED  %5ss (exit %s)' "$name" $((SECONDS - t0)) "$rc")")
    FAILED=1
    return $rc
  fi
}
pytest_tier() { # pytest_tier NAME DIR
  "$PY" -m pytest "$2" -q -p no:cacheprovider --junitxml="$REPORTS/$1.xml" -o junit_family=xunit2
}

stage tools hack/tools.sh
stage verify make -s verify
stage unit pytest_tier unit tests/unit

# The component build is its own stage so the summary shows cold (a real build) and warm (cached) setup apart.
external=0
if [ -n "${KUBECONFIG:-}" ] && [ "$(realpath -m "$KUBECONFIG")" != "$ROOT/.cluster/kubeconfig" ]; then
  external=1
fi
if { [ $external = 1 ] || stage cluster-build make -s cluster-build; } && stage cluster-up make -s cluster-up; then
  stage integration pytest_tier integration tests/integration
  stage image make -s image && stage e2e pytest_tier e2e tests/e2e
else
  echo "The test cluster did not come up: integration and e2e tiers cannot run (see the log above)." >&2
fi
# CI leaves the machine as it found it; a developer keeps the cluster for the next run.
if [ "${CI:-}" = true ] && [ "${GYRE_KEEP_CLUSTER:-0}" != 1 ]; then
  stage cluster-down make -s cluster-down
fi

echo
echo "=== summary"
printf '%s\n' "${SUMMARY[@]}"
"$PY" - "$REPORTS" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(f).getroot().iter("testsuite"):
        t, fl, er, sk = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        passed += t - fl - er - sk; failed += fl + er; skipped += sk
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $FAILED
