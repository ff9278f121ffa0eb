#!/usr/bin/env bash
# The parts of a local single-node Kubernetes (issue 25; src/dev/kubernetes.ts runs them): kube-apiserver, kubelet,
# kube-controller-manager and kube-scheduler v1.35.8, Rancher's local-path-provisioner (volumes) and the CNI plugins
# built from the Go module proxy (no registry image can be pulled here), and Debian's etcd and busybox (the pause and
# helper images are made from it) unpacked, not installed. All in .tools/, keyed by version: a second run is a check
# of versions, not a build. containerd and runc come with Debian's
# docker.io (scripts/ensure-docker.sh); a private containerd instance runs them.
# The route, its settings and its pitfalls: ../shared/reference/kubernetes-local-cluster.md (cold build 4 min 14 s on
# 2 cores, 2.8 GB of Go build cache).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
BIN="$KUBERNETES_DIR/bin"
DEBS="$KUBERNETES_DIR/debian"
COMPONENTS=(kube-apiserver kubelet kube-controller-manager kube-scheduler)

built() {
  for c in "${COMPONENTS[@]}"; do
    [ -x "$BIN/$c" ] || return 1
  done
  "$BIN/kube-apiserver" --version 2>/dev/null | grep -q "Kubernetes v$KUBERNETES_VERSION$"
}

if ! built; then
  command -v go >/dev/null || die "Go is needed to build Kubernetes v$KUBERNETES_VERSION from the module proxy; install Go 1.25 or newer"
  log "building Kubernetes v$KUBERNETES_VERSION (${COMPONENTS[*]}) from the Go module proxy (about 4 minutes the first time)"
  started=$(date +%s)
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  # k8s.io/kubernetes points its staging modules (k8s.io/api, client-go, ...) at ./staging: a module that requires it
  # replaces each with its published v0.x twin, read from the upstream go.mod so the list follows the version.
  gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] || die "the Go module proxy did not serve k8s.io/kubernetes@v$KUBERNETES_VERSION"
  staging="v0.${KUBERNETES_VERSION#1.}"
  {
    echo "module nestor.local/kubernetes-build"
    echo "go 1.25"
    echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$#replace \1 => \1 '"$staging"'#p' "$gomod"
  } >"$build/go.mod"
  grep -q '^replace k8s.io/client-go ' "$build/go.mod" || die "no staging replacements found in $gomod"
  {
    echo "//go:build tools"
    echo "package tools"
    for c in "${COMPONENTS[@]}"; do echo "import _ \"k8s.io/kubernetes/cmd/$c\""; done
  } >"$build/tools.go"
  version=k8s.io/component-base/version
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  ldflags="-s -w -X $version.gitVersion=v$KUBERNETES_VERSION -X $version.gitMajor=1 -X $version.gitMinor=$minor"
  ldflags="$ldflags -X $version.gitTreeState=clean"
  (
    cd "$build"
    go mod tidy >"$build/tidy.log" 2>&1 || { tail -20 "$build/tidy.log" >&2; exit 1; }
    mkdir -p out
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o out/ $(printf 'k8s.io/kubernetes/cmd/%s ' "${COMPONENTS[@]}")
  ) || die "building Kubernetes v$KUBERNETES_VERSION failed (output above)"
  mkdir -p "$BIN"
  for c in "${COMPONENTS[@]}"; do mv "$build/out/$c" "$BIN/$c"; done
  built || die "the built kube-apiserver does not report v$KUBERNETES_VERSION"
  log "Kubernetes v$KUBERNETES_VERSION built in $(($(date +%s) - started)) s into $BIN"
fi

# The storage provisioner (a claim's volume is a directory on the node), keyed by version like the rest.
PROVISIONER="$BIN/local-path-provisioner"
if [ ! -x "$PROVISIONER" ] || ! "$PROVISIONER" --version 2>/dev/null | grep -q "v$LOCAL_PATH_PROVISIONER_VERSION"; then
  log "building local-path-provisioner v$LOCAL_PATH_PROVISIONER_VERSION from the Go module proxy (about 90 s the first time)"
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  version="-X main.VERSION=v$LOCAL_PATH_PROVISIONER_VERSION"
  GOBIN="$build" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w $version" \
    "github.com/rancher/local-path-provisioner@v$LOCAL_PATH_PROVISIONER_VERSION" ||
    die "building local-path-provisioner v$LOCAL_PATH_PROVISIONER_VERSION failed (output above)"
  mkdir -p "$BIN"
  mv "$build/local-path-provisioner" "$PROVISIONER"
  rm -rf "$build"
fi

# The CNI plugins the pods' network uses, keyed by version (the file VERSION beside them).
CNI="$KUBERNETES_DIR/cni"
if [ "$(cat "$CNI/VERSION" 2>/dev/null)" != "$CNI_PLUGINS_VERSION" ]; then
  log "building the CNI plugins v$CNI_PLUGINS_VERSION (bridge, host-local, loopback, portmap) from the Go module proxy"
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  for p in main/bridge main/loopback ipam/host-local meta/portmap; do
    GOBIN="$build" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
      "github.com/containernetworking/plugins/plugins/$p@v$CNI_PLUGINS_VERSION" ||
      die "building the CNI plugin $p v$CNI_PLUGINS_VERSION failed (output above)"
  done
  rm -rf "$CNI" && mkdir -p "$CNI"
  mv "$build"/* "$CNI/"
  rm -rf "$build"
  echo "$CNI_PLUGINS_VERSION" >"$CNI/VERSION"
fi

# Debian's parts, unpacked into .tools (apt-get download needs no root; nothing lands in the system's paths).
if [ ! -x "$DEBS/usr/bin/etcd" ] || [ ! -x "$DEBS/bin/busybox" ]; then
  command -v apt-get >/dev/null || die "apt-get is needed to fetch etcd-server and busybox-static"
  log "fetching Debian's etcd-server and busybox-static"
  fetch=$(mktemp -d)
  (
    cd "$fetch"
    apt-get download etcd-server busybox-static >"$fetch/apt.log" 2>&1 || {
      [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1
      apt-get download etcd-server busybox-static >"$fetch/apt.log" 2>&1
    } || { tail -5 "$fetch/apt.log" >&2; exit 1; }
    mkdir -p "$DEBS"
    for deb in ./*.deb; do dpkg-deb -x "$deb" "$DEBS"; done
  ) || die "fetching Debian's parts failed (output above)"
  rm -rf "$fetch"
fi
for tool in containerd runc ctr ip openssl; do
  command -v "$tool" >/dev/null || die "$tool is missing: containerd, runc and ctr come with docker.io (scripts/ensure-docker.sh); ip with iproute2, openssl with openssl"
done
