#!/usr/bin/env bash
# Install the host packages the test cluster and the image build need (Debian), once.
# Idempotent: does nothing when every command is already present.
# Usage: hack/cluster/deps.sh [cluster|image|all]   (default all)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/cluster/lib.sh
source "$HERE/lib.sh"

want="${1:-all}"
# command -> Debian package
declare -A pkgs=()
if [ "$want" = cluster ] || [ "$want" = all ]; then
  pkgs[containerd]=containerd pkgs[runc]=runc pkgs[iptables]=iptables
  pkgs[/usr/lib/cni/bridge]=containernetworking-plugins pkgs[conntrack]=conntrack
  pkgs[openssl]=openssl pkgs[ip]=iproute2 pkgs[gcc]=gcc pkgs[ss]=iproute2 pkgs[nsenter]=util-linux
  pkgs[socat]=socat
fi
if [ "$want" = image ] || [ "$want" = all ]; then
  pkgs[/usr/sbin/dockerd]=docker.io pkgs[/usr/bin/docker]=docker.io pkgs[debootstrap]=debootstrap
  pkgs[containerd]=containerd pkgs[runc]=runc pkgs[iptables]=iptables
fi

missing=()
for cmd in "${!pkgs[@]}"; do
  if [[ "$cmd" == /* ]]; then [ -x "$cmd" ] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
  missing+=("${pkgs[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
[ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
log "installing: ${missing[*]}"
mkdir -p "$GYRE_CACHE/logs"
alog="$GYRE_CACHE/logs/apt.log"
# Installing docker.io or containerd must not start daemons on the host: policy-rc.d says no.
policy_added=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
cleanup() { [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d; return 0; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$alog" 2>&1; then
  echo "deps: apt-get failed" >&2
  tail -n 40 "$alog" >&2
  exit 1
fi
log "installed: ${missing[*]}"
