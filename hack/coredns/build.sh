#!/usr/bin/env bash
# Builds the pinned CoreDNS (the cluster DNS Plexus renders) from the Go module proxy into a cache
# outside the checkout, so a fresh clone reuses it. Static (CGO_ENABLED=0): the lab image holds
# nothing but this binary.
#
#   hack/coredns/build.sh     # prints the binary's path on its last line
set -euo pipefail

VERSION=v1.15.0
here=$(cd "$(dirname "$0")" && pwd)
cache=${PLEXUS_COREDNS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plexus/coredns/$VERSION}
mkdir -p "$cache"

step() { printf '==> [coredns] %s\n' "$*" >&2; }

out=$cache/coredns
if [ -x "$out" ] && [ "$(cat "$out.version" 2>/dev/null)" = "$VERSION" ]; then
  step "coredns $VERSION: cached"
else
  start=$(date +%s)
  step "building coredns $VERSION (about 3 min cold)"
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/coredns/coredns)
  mv -f "$out.tmp" "$out"
  echo "$VERSION" >"$out.version"
  step "coredns $VERSION built in $(( $(date +%s) - start ))s"
fi
echo "$out"
