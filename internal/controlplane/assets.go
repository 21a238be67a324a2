// Package controlplane locates the pinned Kubernetes binaries that hack/controlplane/build.sh
// builds, for the suites and benchmarks that run a real API server.
package controlplane

import (
	"os"
	"path/filepath"
)

// KubernetesVersion is the version of the pinned control plane.
const KubernetesVersion = "v1.37.2"

// AssetsDir is where the binaries are: $KUBEBUILDER_ASSETS when set (envtest's convention), else
// the cache `make controlplane` fills, ${XDG_CACHE_HOME:-$HOME/.cache}/plexus/controlplane/<version>.
func AssetsDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "plexus", "controlplane", KubernetesVersion)
}
