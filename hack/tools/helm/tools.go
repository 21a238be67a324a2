//go:build tools

// Package tools pins the helm CLI that `make helm` builds into the tools cache.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
