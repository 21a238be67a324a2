package manager

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/plexus-net/plexus/agent/proxy"
)

// Config is what a backend programs besides the model.
type Config struct {
	// PodCIDRs are the cluster's pod CIDRs (the IPVS mode masquerades ClusterIP traffic from
	// elsewhere).
	PodCIDRs []netip.Prefix
	// IPVSScheduler is serviceProxy.ipvs.scheduler ("" for the default).
	IPVSScheduler string
}

// Backend is one service proxy implementation as the Manager drives it.
type Backend interface {
	// Features is the backend's row of the feature table.
	Features() proxy.FeatureTable
	// Sync makes the data plane match m and reports whether it wrote anything.
	Sync(ctx context.Context, m proxy.Model, cfg Config) (bool, error)
	// Remove deletes everything the backend programmed on node and stops its servers; with
	// nothing programmed it writes nothing. The next Sync starts afresh. node is the node of
	// the current sync: its addresses tell the IPVS backend's NodePort virtual servers apart
	// after an agent restart.
	Remove(ctx context.Context, node proxy.NodeInfo) (bool, error)
	// RequestFullSync makes the next Sync compare with the kernel instead of its memory.
	RequestFullSync()
}

// UnavailableError says the kernel lacks what a backend needs; retrying cannot help.
type UnavailableError struct {
	// Mode is the backend's mode and Missing what the kernel lacks.
	Mode, Missing string
}

// Error names the mode and the missing kernel support.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("serviceProxy mode %s needs %s, which this node's kernel lacks", e.Mode, e.Missing)
}
