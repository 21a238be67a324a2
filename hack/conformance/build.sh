#!/usr/bin/env bash
# Builds (or reuses) what `make conformance` runs, into a cache outside the checkout:
#
#   e2e.test   the upstream Kubernetes e2e suite v1.37.2 (go test -c k8s.io/kubernetes/test/e2e)
#   ginkgo     the ginkgo v2 CLI at the version kubernetes v1.37.2's go.mod requires (parallel runs)
#   agnhost    the agnhost command of the same module, the payload of the agnhost test image
#
#   hack/conformance/build.sh [e2e.test|ginkgo|agnhost ...]   # default: all three
#
# Each step prints a progress line; a binary whose version stamp matches is reused. Prints the
# cache directory on its last line. It also installs the Debian packages the e2e test images copy
# their tools from, if missing; the runner (hack/conformance, `make conformance`) packages the
# images and runs the suite.
set -euo pipefail

K8S_VERSION=v1.37.2
here=$(cd "$(dirname "$0")" && pwd)/e2e
cache=${PLEXUS_CONFORMANCE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plexus/conformance/$K8S_VERSION}
mkdir -p "$cache/bin"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(e2e.test ginkgo agnhost)

step() { printf '==> [conformance] %s\n' "$*" >&2; }

# The tools of the e2e test images (hack/conformance/images.go): sh and coreutils from busybox,
# dig, nc, curl, getent, dash.
packages=(busybox-static bind9-dnsutils netcat-openbsd curl libc-bin dash coreutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "missing Debian packages for the e2e test images: ${missing[*]}; run as root or install them" >&2; exit 1; }
  step "installing ${missing[*]} (the e2e test images' tools)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The same version stamp hack/controlplane/build.sh gives the control plane: the e2e framework
# compares it with the server's version and logs it in every report.
major=${K8S_VERSION#v}; minor=${major#*.}; minor=${minor%%.*}; major=${major%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"

# The ginkgo CLI must match the library the suite links, or it refuses to run the suite.
ginkgo_version=$(cd "$here" && go list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2)

n=${#targets[@]}; i=0
for t in "${targets[@]}"; do
  i=$((i + 1))
  out="$cache/bin/$t"
  stamp="$out.version"
  want=$K8S_VERSION; [ "$t" = ginkgo ] && want=$ginkgo_version
  if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    step "($i/$n) $t $want: cached"
    continue
  fi
  start=$(date +%s)
  case "$t" in
    e2e.test)
      step "($i/$n) building e2e.test $K8S_VERSION (5-18 min cold on 2 cores)"
      (cd "$here" && CGO_ENABLED=0 go test -c -vet=off -trimpath -ldflags "$ldflags" -o "$out.tmp" k8s.io/kubernetes/test/e2e) ;;
    ginkgo)
      step "($i/$n) building ginkgo $ginkgo_version"
      (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/onsi/ginkgo/v2/ginkgo) ;;
    agnhost)
      # Static: the image holds nothing but this binary (and busybox for the specs' shells).
      step "($i/$n) building agnhost $K8S_VERSION"
      (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" k8s.io/kubernetes/test/images/agnhost) ;;
    *) echo "unknown target $t (want e2e.test ginkgo agnhost)" >&2; exit 2 ;;
  esac
  mv -f "$out.tmp" "$out"
  echo "$want" > "$stamp"
  step "($i/$n) $t built in $(( $(date +%s) - start ))s"
done
# agnhost's porter serves TLS with the test certificate its image carries at /localhost.crt and
# /localhost.key (the proxy specs read through it); the images take them from here.
kdir=$(cd "$here" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
install -m 0644 "$kdir/test/images/agnhost/porter/localhost.crt" "$kdir/test/images/agnhost/porter/localhost.key" "$cache/bin/"
echo "$cache"
