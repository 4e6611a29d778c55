#!/usr/bin/env bash
# Build the project image gyre:dev (and gyre-prometheus:dev for the e2e tier) and import them into the test cluster's containerd.
#
# No registry is needed: the base image is bootstrapped locally with debootstrap (cached in
# $GYRE_CACHE/images, keyed by DEBIAN_SUITE and BASE_IMAGE_VERSION), the Dockerfile is built
# on it by a private dockerd (no bridge, no iptables, no ip_forward; builds use the host
# network), and the result goes to containerd with `docker save | ctr import`.
# Usage: hack/image.sh [--no-import]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/cluster/lib.sh
source "$HERE/cluster/lib.sh"

T0=$(date +%s)
IMPORT=1
[ "${1:-}" = --no-import ] && IMPORT=0
[ "$(id -u)" = 0 ] || die "building the image needs root (dockerd, debootstrap)"
"$HERE/cluster/deps.sh" image

IMAGE=gyre:dev
BASE_TAG="gyre-base:$DEBIAN_SUITE-$BASE_IMAGE_VERSION"
BASE_TAR="$IMAGES_DIR/gyre-base-$DEBIAN_SUITE-$BASE_IMAGE_VERSION.tar"
DOCKER_RUN=/run/gyre-docker
DOCKER_SOCK="$DOCKER_RUN/docker.sock"
DOCKER_CG=gyre-docker
mkdir -p "$IMAGES_DIR" "$GYRE_CACHE/logs" "$GYRE_CACHE/docker"
DLOG="$GYRE_CACHE/logs/dockerd.log"
BLOG="$GYRE_CACHE/logs/image-build.log"
# The Debian docker CLI speaks the daemon's API; the classic builder needs no buildx.
docker() { DOCKER_BUILDKIT=0 /usr/bin/docker -H "unix://$DOCKER_SOCK" "$@"; }

fail() { # REASON LOG
  echo "ERROR: $1" >&2
  if [ -f "$2" ]; then
    echo "--- last 40 lines of $2 ---" >&2
    tail -n 40 "$2" >&2
  fi
  exit 1
}

# ------------------------------------------------------------ base image (debootstrap)
if [ ! -f "$BASE_TAR" ]; then
  log "bootstrapping the base image $BASE_TAG (once; cached in $BASE_TAR)"
  root="$(mktemp -d /var/tmp/gyre-base.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$DEBIAN_SUITE" "$root" http://deb.debian.org/debian >"$GYRE_CACHE/logs/debootstrap.log" 2>&1 ||
    fail "debootstrap failed" "$GYRE_CACHE/logs/debootstrap.log"
  # pip inside `docker build` must trust the host's (possibly intercepting) TLS roots.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/var/log/*
  tar --numeric-owner -C "$root" -cf "$BASE_TAR.tmp" .
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$root"
  trap - EXIT
fi

# ------------------------------------------------------------ private dockerd
# Paths dockerd creates on the host outside its data/exec roots; removed again if new.
created=()
for p in /run/docker /run/containerd /var/lib/docker /etc/docker /etc/docker/key.json; do [ -e "$p" ] || created+=("$p"); done
cg_dirs=()
for d in /sys/fs/cgroup/*/; do
  d="${d%/}"
  [ "$(basename "$d")" = unified ] && continue
  [ -f "$d/cgroup.procs" ] || continue
  mkdir -p "$d/$DOCKER_CG"
  if [ -f "$d/$DOCKER_CG/cpuset.cpus" ] && [ -z "$(cat "$d/$DOCKER_CG/cpuset.cpus")" ]; then
    cat "$d/cpuset.cpus" >"$d/$DOCKER_CG/cpuset.cpus"
    cat "$d/cpuset.mems" >"$d/$DOCKER_CG/cpuset.mems"
  fi
  cg_dirs+=("$d/$DOCKER_CG")
done

stop_dockerd() {
  local i pids pid
  pid="$(cat "$DOCKER_RUN/dockerd.pid" 2>/dev/null || true)"
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  for i in $(seq 50); do
    pids="$(cat /sys/fs/cgroup/pids/$DOCKER_CG/cgroup.procs 2>/dev/null || true)"
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  for d in "${cg_dirs[@]}"; do
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$DOCKER_RUN"
  for p in "${created[@]}"; do rm -rf "$p"; done
}
trap stop_dockerd EXIT

mkdir -p "$DOCKER_RUN"
: >"$DLOG"
(
  for d in "${cg_dirs[@]}"; do echo "$BASHPID" >"$d/cgroup.procs"; done
  # A private mount namespace keeps dockerd's overlay mounts off the host.
  exec unshare --mount --propagation slave -- dockerd \
    --host "unix://$DOCKER_SOCK" --data-root "$GYRE_CACHE/docker" --exec-root "$DOCKER_RUN/exec" \
    --pidfile "$DOCKER_RUN/dockerd.pid" --bridge none --iptables=false --ip6tables=false \
    --ip-forward=false --ip-masq=false --userland-proxy=false \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$DOCKER_CG" --storage-driver overlay2
) >>"$DLOG" 2>&1 </dev/null &
for i in $(seq 100); do
  docker version >/dev/null 2>&1 && break
  kill -0 $! 2>/dev/null || fail "dockerd exited" "$DLOG"
  sleep 0.2
done
docker version >/dev/null 2>&1 || fail "dockerd did not answer on $DOCKER_SOCK" "$DLOG"

if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    -c 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    -c 'CMD ["python3"]' "$BASE_TAR" "$BASE_TAG" >/dev/null
  log "imported the base image $BASE_TAG"
fi

# ------------------------------------------------------------ build
log "building $IMAGE on $BASE_TAG (log: $BLOG)"
if ! docker build --network host --build-arg "BASE_IMAGE=$BASE_TAG" -t "$IMAGE" "$REPO_ROOT" >"$BLOG" 2>&1; then
  fail "docker build failed" "$BLOG"
fi
log "built $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE")) in $(($(date +%s) - T0)) s"
# The Prometheus the e2e tier runs in the cluster: upstream's server (hack/prometheus/build.sh), same base.
PROMETHEUS_IMAGE=gyre-prometheus:dev
prom_ctx="$(mktemp -d)"
cp "$REPO_ROOT/hack/prometheus/Dockerfile" "$("$REPO_ROOT/hack/prometheus/build.sh")" "$prom_ctx/"
if ! docker build --network host --build-arg "BASE_IMAGE=$BASE_TAG" -t "$PROMETHEUS_IMAGE" "$prom_ctx" >>"$BLOG" 2>&1; then
  fail "docker build of $PROMETHEUS_IMAGE failed" "$BLOG"
fi
rm -rf "$prom_ctx"

# ------------------------------------------------------------ import into the cluster
import_image() { # IMAGE: docker save | ctr import, skipped when containerd already has this build
  local image=$1 id marker
  id="$(docker image inspect -f '{{.Id}}' "$image")"
  marker="$CONTAINERD_ROOT/${image%%:*}-${image##*:}.imported"
  if [ "$(cat "$marker" 2>/dev/null)" = "$id" ] && "${CTR[@]}" images ls -q | grep -qx "docker.io/library/$image"; then
    log "$image already in the cluster's containerd"
  else
    docker save "$image" | "${CTR[@]}" images import - >>"$BLOG" 2>&1 ||
      fail "ctr images import failed" "$BLOG"
    echo "$id" >"$marker"
    log "imported $image into the cluster's containerd"
  fi
}
if [ "$IMPORT" = 1 ]; then
  if [ ! -S "$CONTAINERD_SOCK" ]; then
    die "the test cluster is not running (no $CONTAINERD_SOCK): run make cluster-up first, or pass --no-import"
  fi
  import_image "$IMAGE"
  import_image "$PROMETHEUS_IMAGE"
fi
echo "image seconds: $(($(date +%s) - T0))"
