#!/usr/bin/env bash
# Builds the pinned Kubernetes control plane (and, on request, the node binaries) from the Go module
# proxy into a cache outside the checkout, so a fresh clone or a CI run reuses them.
#
#   hack/controlplane/build.sh [component ...]   # default: etcd kube-apiserver kube-controller-manager
#
# Prints the cache directory on its last line. Components: etcd kube-apiserver kube-controller-manager
# kube-scheduler kubectl kubelet kube-proxy (kube-proxy: the upstream baseline of test/proxybench).
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
here=$(cd "$(dirname "$0")" && pwd)
cache=${PLEXUS_CONTROLPLANE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plexus/controlplane/$K8S_VERSION}
mkdir -p "$cache"

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(etcd kube-apiserver kube-controller-manager)

step() { printf '==> [controlplane] %s\n' "$*" >&2; }

# The version stamp makes the binaries report v1.37.2 instead of v0.0.0 (kubectl version, /version).
major=${K8S_VERSION#v}; minor=${major#*.}; minor=${minor%%.*}; major=${major%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"

n=${#components[@]}; i=0
for c in "${components[@]}"; do
  i=$((i + 1))
  out="$cache/$c"
  stamp="$out.version"
  want=$K8S_VERSION; [ "$c" = etcd ] && want=$ETCD_VERSION
  if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    step "($i/$n) $c $want: cached"
    continue
  fi
  start=$(date +%s)
  case "$c" in
    etcd)
      step "($i/$n) building etcd $ETCD_VERSION (about 1 min cold)"
      (cd "$here/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" .) ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|kubelet|kube-proxy)
      step "($i/$n) building $c $K8S_VERSION (several minutes cold)"
      (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "k8s.io/kubernetes/cmd/$c") ;;
    *) echo "unknown component $c (want etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)" >&2; exit 2 ;;
  esac
  mv -f "$out.tmp" "$out"
  echo "$want" > "$stamp"
  step "($i/$n) $c built in $(( $(date +%s) - start ))s"
done
echo "$cache"
