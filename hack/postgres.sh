#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests (Debian's `postgresql` package): `hack/postgres.sh start` prints shell
# assignments (GYRE_PG_HOST, GYRE_PG_PORT, GYRE_PG_SOCKET, GYRE_PG_USER, GYRE_PG_PASSWORD, GYRE_PG_DATABASE) for a
# server in a temp dir, on a free port; `hack/postgres.sh stop` ends it and removes the dir.
#
# Idempotent: a second start finds the running server and prints the same values. Cached: the initialised cluster
# is kept under ~/.cache/gyre/postgres and copied, so a start costs a server start, not an initdb. It listens on
# its unix socket, on 127.0.0.1 and, when the test cluster's host link exists (10.213.0.1, docs/cluster.md), there
# too, so the cluster's pods reach it. PostgreSQL refuses to run as root: as root it runs as the `postgres` user.
set -euo pipefail
cmd=${1:-start}
dir=${GYRE_PG_DIR:-/tmp/gyre-postgres-$(id -u)}
cache=${GYRE_CACHE:-$HOME/.cache/gyre}/postgres
user=gyre password=gyre-test-password database=gyre
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)

if [ -z "$bindir" ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "postgres: installing Debian's postgresql package" >&2
  # The package would start a system cluster where init runs services; the tests start their own.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

emit() {
  local port host=127.0.0.1
  port=$(cat "$dir/port")
  ip -4 addr show 2>/dev/null | grep -q 'inet 10\.213\.0\.1/' && host=10.213.0.1
  echo "GYRE_PG_HOST=$host"
  echo "GYRE_PG_PORT=$port"
  echo "GYRE_PG_SOCKET=$dir"
  echo "GYRE_PG_USER=$user"
  echo "GYRE_PG_PASSWORD=$password"
  echo "GYRE_PG_DATABASE=$database"
}

case "$cmd" in
  start)
    if [ -f "$dir/port" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      emit
      exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    if [ ! -f "$cache/data/PG_VERSION" ] || [ "$(cat "$cache/bindir" 2>/dev/null)" != "$bindir" ]; then
      tmp=$(mktemp -d)
      [ "$(id -u)" = 0 ] && chown postgres: "$tmp"
      printf '%s\n' "$password" >"$tmp/pw"
      chmod 644 "$tmp/pw"
      as_owner "$bindir/initdb" -D "$tmp/data" -U "$user" --pwfile="$tmp/pw" -A scram-sha-256 \
        --auth-local=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      rm -rf "$cache" && mkdir -p "$(dirname "$cache")"
      mv "$tmp" "$cache"
      echo "$bindir" >"$cache/bindir"
    fi
    cp -a "$cache/data" "$dir/data"
    # Any address may connect with the password (the pods' addresses are the cluster's pod CIDR). The role
    # gyre_cleartext (when a test creates it) is asked for its password in clear text: Gyre's reader must refuse.
    sed -i '1i host all gyre_cleartext all password' "$dir/data/pg_hba.conf"
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$dir/data/pg_hba.conf"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    listen=127.0.0.1
    ip -4 addr show 2>/dev/null | grep -q 'inet 10\.213\.0\.1/' && listen="$listen,10.213.0.1"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-p $port -k $dir -c listen_addresses=$listen -c fsync=off -c full_page_writes=off" >/dev/null
    as_owner "$bindir/createdb" -h "$dir" -p "$port" -U "$user" "$database" 2>/dev/null || true
    emit
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
