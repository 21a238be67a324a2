//go:build tools

// Package coredns pins the CoreDNS that Plexus runs as the cluster DNS in the lab and in tests.
// Nothing here is imported by Plexus itself; build.sh builds the command.
package coredns

import (
	_ "github.com/coredns/coredns"
)
