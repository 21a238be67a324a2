//go:build tools

// Package containerd pins the container runtime that every lab node runs: containerd v2, its runc
// shim and ctr. Nothing here is imported by Plexus itself; build.sh builds the commands.
package containerd

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
