#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubelet v1.20.2 from Debian's `kubernetes`
# source package, once, into $ZUN_E2E_DIR/cache/k8s-v1.20.2/bin. Facts behind each step: shared/docs/real-env.md.
set -euo pipefail
D="${ZUN_E2E_DIR:-/var/lib/zun-gateway-e2e}"
K8S_VERSION=v1.20.2
OUT="$D/cache/k8s-$K8S_VERSION/bin"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)

have_all() { for b in "${BINARIES[@]}"; do [ -x "$OUT/$b" ] || return 1; done; }
if have_all; then echo "kubernetes $K8S_VERSION: cached in $OUT"; exit 0; fi

SRC="$D/cache/src"
GOPATH_DIR="$D/cache/gopath"
TREE="$GOPATH_DIR/src/k8s.io/kubernetes"
mkdir -p "$SRC" "$OUT"
exec 8>"$D/cache/.build.lock"
flock 8
if have_all; then echo "kubernetes $K8S_VERSION: cached in $OUT"; exit 0; fi

if ! ls "$SRC"/kubernetes_*.orig.tar.gz >/dev/null 2>&1; then
  echo "kubernetes: downloading Debian's source package"
  if [ ! -f /etc/apt/sources.list.d/zun-gateway-e2e-src.sources ]; then
    sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/zun-gateway-e2e-src.sources
    apt-get update -qq
  fi
  (cd "$SRC" && apt-get source --download-only kubernetes >/dev/null 2>&1) || {
    apt-get update -qq && (cd "$SRC" && apt-get source --download-only kubernetes >/dev/null)
  }
fi

if [ ! -f "$TREE/.zun-extracted" ]; then
  echo "kubernetes: extracting the source tree"
  rm -rf "$TREE" && mkdir -p "$TREE"
  tar -xzf "$SRC"/kubernetes_*.orig.tar.gz -C "$TREE" --strip-components=1
  # reflect2 1.0.1 (vendored) breaks map iteration under Go >= 1.18; Debian's 1.0.2 is API-compatible.
  r2=/usr/share/gocode/src/github.com/modern-go/reflect2
  rm -f "$TREE"/vendor/github.com/modern-go/reflect2/*.go "$TREE"/vendor/github.com/modern-go/reflect2/*.s
  cp "$r2"/*.go "$r2"/*.s "$TREE"/vendor/github.com/modern-go/reflect2/
  touch "$TREE/.zun-extracted"
fi

export GOPATH="$GOPATH_DIR" GO111MODULE=off CGO_ENABLED=0 GOFLAGS="" GOCACHE="$D/cache/go-build"
cd "$TREE"

if [ ! -f pkg/generated/openapi/zz_generated.openapi.go ]; then
  echo "kubernetes: generating pkg/generated/openapi (openapi-gen)"
  go build -o "$D/cache/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  pkgs=$(grep -Rl --include='*.go' '+k8s:openapi-gen=' pkg cmd plugin vendor/k8s.io 2>/dev/null \
    | grep -v -e '^vendor/k8s.io/code-generator' -e '^vendor/k8s.io/sample-apiserver' \
    | xargs -n1 dirname | sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
  "$D/cache/openapi-gen" -i "$pkgs" -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -o "$GOPATH_DIR/src" >/dev/null
fi

ldflags=""
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20 -X $pkg.gitTreeState=clean"
done
n=0
build_started=$(date +%s)
for b in "${BINARIES[@]}"; do
  n=$((n + 1))
  if [ ! -x "$OUT/$b" ]; then
    t0=$(date +%s)
    echo "kubernetes: building $b ($n/${#BINARIES[@]}, $(date +%T)), a few minutes on 2 cores"
    go build -ldflags "-s -w $ldflags" -o "$OUT/$b.tmp" "./cmd/$b"
    mv "$OUT/$b.tmp" "$OUT/$b"
    echo "kubernetes: $b built in $(($(date +%s) - t0)) s"
  fi
done
echo "kubernetes $K8S_VERSION: built into $OUT in $(($(date +%s) - build_started)) s"
