package policy

import "context"

// Enforcer programs a compiled Model into a data plane. Implementations:
// the nftables backend (subpackage nftables), over knftables.Interface,
// which has a fake for tests.
type Enforcer interface {
	// Sync makes the data plane enforce m. It writes only what differs
	// from its last successful write. With fullSync, or when it has no
	// successful write to trust (start-up, after a failure), it compares
	// with the kernel instead and, if they differ, replaces everything
	// atomically. A nil error means every pod of m is enforced as m says.
	Sync(ctx context.Context, m *Model, fullSync bool) (SyncResult, error)
	// Remove deletes everything the enforcer programmed (nothing is
	// enforced afterwards); removing what does not exist is no error.
	Remove(ctx context.Context) error
}

// SyncResult says what a Sync did and what is programmed.
type SyncResult struct {
	// Wrote is false when the data plane already matched.
	Wrote bool
	// Objects counts the kernel objects (chains, sets, maps, counters);
	// Rules and Elements count rules and set/map elements.
	Objects, Rules, Elements int
}
