#!/usr/bin/env bash
# Builds (or reuses) what the Gateway API conformance run needs, into a cache outside the checkout
# (make gateway-conformance runs it with hack/gateway-conformance/run):
#
#   bin/gateway-conformance.test  the suite of sigs.k8s.io/gateway-api/conformance $VERSION
#                                 (go test -c), from a scratch module that requires only it, so the
#                                 repo's go.mod keeps its own k8s.io versions
#   bin/echo-basic                the suite's echo backend, from the same module's sources
#   images/*.tar                  one image tarball per echo-basic name the suite's manifests use,
#                                 under that exact name (read from the module, never written here)
#   images.txt                    those names, and the names of images not built (echo-advanced is
#                                 Istio's app image: it has no sources in the module)
#
# Prints the cache directory on its last line.
set -euo pipefail

VERSION=v1.6.3
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${PLEXUS_GATEWAY_CONFORMANCE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plexus/gateway-conformance/$VERSION}
mkdir -p "$cache/bin" "$cache/images" "$cache/src"
step() { printf '==> [gateway-conformance] %s\n' "$*" >&2; }

cd "$cache/src"
if [ ! -f go.mod ] || ! grep -q "sigs.k8s.io/gateway-api/conformance $VERSION" go.mod; then
	step "scratch module requiring sigs.k8s.io/gateway-api/conformance $VERSION"
	rm -f go.mod go.sum
	cat >go.mod <<MOD
module plexus.local/gateway-conformance

go 1.26
MOD
	# The conformance module replaces sigs.k8s.io/gateway-api with its parent directory, which
	# a dependent module ignores: require the release of the same version.
	go get "sigs.k8s.io/gateway-api/conformance@$VERSION" "sigs.k8s.io/gateway-api@$VERSION" >&2
	printf 'package tools\n\nimport (\n\t_ "sigs.k8s.io/gateway-api/conformance"\n\t_ "sigs.k8s.io/gateway-api/conformance/echo-basic"\n)\n' >tools.go
	go mod tidy >&2
fi
moddir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api/conformance)

# The binaries are reused when newer than the scratch module (a version change rewrites it):
# relinking the suite and vetting it costs minutes on a loaded machine even with a warm cache.
t0=$(date +%s)
if [ "$cache/bin/gateway-conformance.test" -nt go.mod ]; then
	step "suite binary reused (remove $cache/bin to rebuild)"
else
	step "go test -c sigs.k8s.io/gateway-api/conformance"
	go test -c -o "$cache/bin/gateway-conformance.test" sigs.k8s.io/gateway-api/conformance
fi
if [ "$cache/bin/echo-basic" -nt go.mod ]; then
	step "echo-basic reused"
else
	step "echo-basic (static)"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$cache/bin/echo-basic" sigs.k8s.io/gateway-api/conformance/echo-basic
fi
step "binaries ready in $(( $(date +%s) - t0 ))s"

# Every image reference of the suite's manifests; echo-basic ones are built, others listed.
grep -rhoE 'image:[[:space:]]*[^[:space:]]+' "$moddir/base" "$moddir/tests" "$moddir/mesh" 2>/dev/null |
	sed -E 's/image:[[:space:]]*//; s/["'\'']//g' | sort -u >"$cache/images.all"
: >"$cache/images.txt"
while read -r ref; do
	case "$ref" in
	*/echo-basic:*)
		file="$cache/images/$(echo "$ref" | tr '/:' '__').tar"
		[ "$file" -nt "$cache/bin/echo-basic" ] ||
			(cd "$repo" && go run ./hack/gateway-conformance -binary "$cache/bin/echo-basic" -ref "$ref" -out "$file") >&2
		echo "built $ref" >>"$cache/images.txt"
		;;
	*) echo "not built $ref" >>"$cache/images.txt" ;;
	esac
done <"$cache/images.all"
step "$(grep -c '^built' "$cache/images.txt") echo-basic image(s) written; see images.txt"
echo "$cache"
