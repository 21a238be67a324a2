package agent

import (
	"context"
	"net/netip"

	"github.com/plexus-net/plexus/agent/masquerade"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/agent/routing"
)

// The agent's collaborators, each narrow so the sync loop can be tested against fakes
// (routingfake, knftables.NewFake, in-memory sources).

// Source gives a sync the API objects it reads.
type Source interface {
	// Inputs returns the current objects (from informer caches); NodeName and NodeIPOverride
	// are left for the agent to fill in.
	Inputs(ctx context.Context) (Inputs, error)
}

// RouteSyncer programs the routes; *routing.Syncer is the real one.
type RouteSyncer interface {
	// Sync makes the kernel match cfg, writing nothing when it already does.
	Sync(cfg routing.Config) (routing.Plan, error)
	// RequestFullSync makes the next Sync read the kernel instead of trusting its memory.
	RequestFullSync()
}

var _ RouteSyncer = &routing.Syncer{}

// Masquerader programs the masquerade table; *masquerade.Masquerader is the real one.
type Masquerader interface {
	// Sync makes the table match cfg and reports whether it wrote anything.
	Sync(ctx context.Context, cfg masquerade.Config) (bool, error)
	// Remove deletes the table; a missing table costs no write.
	Remove(ctx context.Context) error
}

var _ Masquerader = &masquerade.Masquerader{}

// UplinkFinder finds the interface carrying the node IPs; *routing.Netlink is the real one.
type UplinkFinder interface {
	// Uplink applies routing.ChooseUplink to the namespace's interfaces.
	Uplink(nodeIPs []netip.Addr) (routing.Uplink, error)
}

var _ UplinkFinder = &routing.Netlink{}

// PodCounter counts the pod attachments on the node.
type PodCounter func() (int, error)

// ServiceProxy programs the node's Services; *manager.Manager is the real one.
type ServiceProxy interface {
	// Sync programs d through the backend of d.Mode, removing the other backends' state; full
	// compares with the kernel instead of trusting memory. The Result carries any error.
	Sync(ctx context.Context, d manager.Desired, full bool) manager.Result
}

var _ ServiceProxy = &manager.Manager{}
