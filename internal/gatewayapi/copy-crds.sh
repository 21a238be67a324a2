#!/bin/sh
# Copies the standard-channel Gateway API CRDs out of the sigs.k8s.io/gateway-api module that
# go.mod requires into crds/, each with a header naming the module version. Run by
# `go generate ./internal/gatewayapi/` after changing the module's version in go.mod.
set -eu
cd "$(dirname "$0")"
dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
version=$(go list -m -f '{{.Version}}' sigs.k8s.io/gateway-api)
if [ -z "$dir" ] || [ ! -d "$dir/config/crd/standard" ]; then
	echo "copy-crds: sigs.k8s.io/gateway-api is not in the module cache (go mod download sigs.k8s.io/gateway-api)" >&2
	exit 1
fi
rm -f crds/*.yaml
mkdir -p crds
# Only CustomResourceDefinitions: the admission policy file next to them (vap_safeupgrades) is
# not a CRD and is left out.
for f in "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
	case "$f" in *vap_*) continue ;; esac
	out="crds/$(basename "$f")"
	{
		echo "# Copied by go generate from sigs.k8s.io/gateway-api@$version config/crd/standard/$(basename "$f"); do not edit."
		cat "$f"
	} >"$out"
done
echo "$version" >crds/VERSION
