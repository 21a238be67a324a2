#!/usr/bin/env bash
# Builds the upstream NetworkPolicy reference agent, sigs.k8s.io/kube-network-policies, from the
# Go module proxy into a cache outside the checkout (the baseline of test/knpbench), with the
# dependency versions of its own go.mod (`go install pkg@version` honours them).
#
#   hack/knp/build.sh            # prints the binary's path on its last line
#
# KNP_VERSION overrides the version (the module proxy serves v0.7.0 and v0.8.0).
set -euo pipefail

version=${KNP_VERSION:-v0.8.0}
cache=${PLEXUS_KNP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plexus/knp/$version}
bin=$cache/kube-network-policies
mkdir -p "$cache"

step() { printf '==> [knp] %s\n' "$*" >&2; }

if [ -x "$bin" ] && [ "$(cat "$bin.version" 2>/dev/null)" = "$version" ]; then
  step "kube-network-policies $version: cached"
  echo "$bin"
  exit 0
fi
step "building kube-network-policies $version (several minutes cold; 34 min on a loaded 2-core machine)"
start=$(date +%s)
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
# Its only main package is ./cmd, so go install names the binary "cmd".
CGO_ENABLED=0 GOBIN=$gobin GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
  "sigs.k8s.io/kube-network-policies/cmd@$version"
mv -f "$gobin/cmd" "$bin"
echo "$version" > "$bin.version"
step "kube-network-policies $version built in $(( $(date +%s) - start ))s"
echo "$bin"
