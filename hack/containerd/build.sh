#!/usr/bin/env bash
# Builds the pinned container runtime of the lab nodes (containerd v2, its runc shim, ctr) from the
# Go module proxy into a cache outside the checkout. runc itself comes from Debian's runc package.
#
#   hack/containerd/build.sh     # prints the cache directory on its last line
set -euo pipefail

VERSION=v2.4.2
here=$(cd "$(dirname "$0")" && pwd)
cache=${PLEXUS_CONTAINERD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plexus/containerd/$VERSION}
mkdir -p "$cache"

step() { printf '==> [containerd] %s\n' "$*" >&2; }

pkg=github.com/containerd/containerd/v2
ldflags="-s -w -X $pkg/version.Version=$VERSION -X $pkg/version.Revision=plexus-lab -X $pkg/version.Package=$pkg"
cmds=(containerd containerd-shim-runc-v2 ctr)
n=${#cmds[@]}; i=0
for c in "${cmds[@]}"; do
  i=$((i + 1))
  out=$cache/$c
  if [ -x "$out" ] && [ "$(cat "$out.version" 2>/dev/null)" = "$VERSION" ]; then
    step "($i/$n) $c $VERSION: cached"
    continue
  fi
  start=$(date +%s)
  step "($i/$n) building $c $VERSION (about 1 min cold)"
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -tags no_btrfs,no_devmapper,no_zfs -ldflags "$ldflags" -o "$out.tmp" "$pkg/cmd/$c")
  mv -f "$out.tmp" "$out"
  echo "$VERSION" >"$out.version"
  step "($i/$n) $c built in $(( $(date +%s) - start ))s"
done
echo "$cache"
