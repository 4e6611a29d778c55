#!/usr/bin/env bash
# Build (or reuse) the pinned cluster components from the Go module proxy.
#
# Every component lands in $GYRE_CACHE/bin/<component>-<version>/ with a .complete stamp,
# so a second run builds nothing. Kubernetes and etcd keep replace directives in their
# own go.mod files, which `go install pkg@version` refuses; they are built from a small
# wrapper module generated in the cache that requires the release and pins every
# k8s.io staging module to its published version.
#
# Usage: hack/cluster/build.sh [component...]   (kubernetes etcd coredns helm; default all)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/cluster/lib.sh
source "$HERE/lib.sh"

START=$(date +%s)

need_go() {
  command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null 2>&1 ||
    die "Go is not installed (need go >= $GO_MIN_VERSION on PATH or in /usr/local/go/bin)"
  local have
  have="$(go env GOVERSION)"
  have="${have#go}"
  if [ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$have" | sort -V | head -n1)" != "$GO_MIN_VERSION" ]; then
    die "Go $have is too old: the pinned components need go >= $GO_MIN_VERSION"
  fi
  # Never fetch another toolchain behind our back; never let the caller's flags change the build.
  export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
}

# run_logged LOG cmd...: run a build step, and on failure show why with the log tail.
run_logged() {
  local log="$1"
  shift
  if ! "$@" >>"$log" 2>&1; then
    echo "build: FAILED: $*" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

build_kubernetes() {
  local dest="$GYRE_CACHE/bin/kubernetes-$KUBERNETES_VERSION"
  [ -f "$dest/.complete" ] && { log "kubernetes $KUBERNETES_VERSION: cached"; return; }
  need_go
  local src="$GYRE_CACHE/src/kubernetes-$KUBERNETES_VERSION" blog="$GYRE_CACHE/logs/build-kubernetes.log"
  mkdir -p "$src" "$dest" "$(dirname "$blog")"
  : >"$blog"
  log "kubernetes $KUBERNETES_VERSION: building (log: $blog)"
  # The release's own go.mod lists the staging modules (later releases add some).
  local gomod
  gomod="$(cd "$src" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [ -f "$gomod" ] || die "could not download the go.mod of k8s.io/kubernetes@$KUBERNETES_VERSION"
  local staging
  staging="$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod")"
  [ -n "$staging" ] || die "no staging modules found in $gomod"
  {
    echo "module gyre.local/kubernetes-build"
    echo
    echo "go $(sed -n 's/^go //p' "$gomod")"
    grep '^godebug' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $KUBERNETES_STAGING_VERSION"; done
    echo ")"
  } >"$src/go.mod"
  # A blank import keeps the requirement meaningful for the go command.
  printf 'package build\n\nimport _ "k8s.io/kubernetes/cmd/kubelet/app"\n' >"$src/deps.go"
  local major minor date
  major="${KUBERNETES_VERSION#v}"
  major="${major%%.*}"
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  date="$(cd "$src" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"Time": "\(.*\)",*$/\1/p')"
  date="${date%%.*}"
  [[ "$date" == *Z ]] || date="${date}Z"
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  (
    cd "$src"
    run_logged "$blog" go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$dest/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubelet \
      k8s.io/kubernetes/cmd/kube-proxy \
      k8s.io/kubernetes/cmd/kubectl
  )
  touch "$dest/.complete"
  log "kubernetes $KUBERNETES_VERSION: built"
}

build_etcd() {
  local dest="$GYRE_CACHE/bin/etcd-$ETCD_VERSION"
  [ -f "$dest/.complete" ] && { log "etcd $ETCD_VERSION: cached"; return; }
  need_go
  local src="$GYRE_CACHE/src/etcd-$ETCD_VERSION" blog="$GYRE_CACHE/logs/build-etcd.log"
  mkdir -p "$src" "$dest" "$(dirname "$blog")"
  : >"$blog"
  log "etcd $ETCD_VERSION: building (log: $blog)"
  # server/v3's go.mod points its sibling modules at ../ with replace directives: wrap it.
  cat >"$src/go.mod" <<EOF
module gyre.local/etcd-build

go 1.26.0

require (
	go.etcd.io/etcd/server/v3 $ETCD_VERSION
	go.etcd.io/etcd/etcdctl/v3 $ETCD_VERSION
)
EOF
  printf 'package build\n\nimport (\n\t_ "go.etcd.io/etcd/server/v3/embed"\n\t_ "go.etcd.io/etcd/etcdctl/v3/ctlv3"\n)\n' >"$src/deps.go"
  (
    cd "$src"
    run_logged "$blog" go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
      -o "$dest/etcd" go.etcd.io/etcd/server/v3
    run_logged "$blog" go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
      -o "$dest/etcdctl" go.etcd.io/etcd/etcdctl/v3
  )
  touch "$dest/.complete"
  log "etcd $ETCD_VERSION: built"
}

# go_install NAME VERSION PKG LDFLAGS: modules without replace directives install directly.
go_install() {
  local name="$1" version="$2" pkg="$3" ld="$4"
  local dest="$GYRE_CACHE/bin/$name-$version" blog="$GYRE_CACHE/logs/build-$name.log"
  [ -f "$dest/.complete" ] && { log "$name $version: cached"; return; }
  need_go
  mkdir -p "$dest" "$(dirname "$blog")"
  : >"$blog"
  log "$name $version: building (log: $blog)"
  GOBIN="$dest" run_logged "$blog" go install -trimpath -ldflags "$ld" "$pkg@$version"
  touch "$dest/.complete"
  log "$name $version: built"
}

build_coredns() {
  go_install coredns "$COREDNS_VERSION" github.com/coredns/coredns \
    "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
}

build_helm() {
  go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
    "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
}

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(etcd kubernetes coredns helm)
for c in "${components[@]}"; do
  case "$c" in
    kubernetes | etcd | coredns | helm) "build_$c" ;;
    *) die "unknown component '$c' (kubernetes etcd coredns helm)" ;;
  esac
done
log "components ready in $GYRE_CACHE/bin ($(($(date +%s) - START)) s)"
