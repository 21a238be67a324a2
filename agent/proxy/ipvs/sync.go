package ipvs

import (
	"fmt"
	"net/netip"
)

// Syncer programs one node's IPVS virtual servers and virtual IPs, sync
// after sync. Like kube-proxy, it remembers what the kernel holds after a
// successful sync and plans the next one against that, so a no-op sync
// costs no kernel call at all. After a failure, or when asked, it reads the
// kernel again.
type Syncer struct {
	ipvs   Interface
	binder Binder
	// last is the state after the last successful Apply; nil means unknown.
	last *State
}

// NewSyncer returns a Syncer whose first sync reads the kernel.
func NewSyncer(ipvs Interface, binder Binder) *Syncer {
	return &Syncer{ipvs: ipvs, binder: binder}
}

// RequestFullSync makes the next Sync read the kernel instead of trusting
// what it remembers (to repair drift).
func (s *Syncer) RequestFullSync() { s.last = nil }

// Sync makes the kernel match desired and returns the plan it carried out.
func (s *Syncer) Sync(desired State) (Plan, error) {
	desired = desired.clone()
	desired.Sort()
	var current State
	if s.last != nil {
		current = *s.last
	} else {
		var err error
		if current, err = Read(s.ipvs, s.binder, desired); err != nil {
			return Plan{}, fmt.Errorf("read IPVS state: %w", err)
		}
	}
	plan := PlanChanges(desired, current)
	if err := Apply(s.ipvs, s.binder, plan); err != nil {
		s.last = nil
		return plan, fmt.Errorf("program IPVS: %w", err)
	}
	s.last = &desired
	return plan, nil
}

// Remove deletes everything of Plexus's from the kernel (the mode is turned
// off): virtual servers on bound virtual IPs and on nodeAddresses (the
// node's addresses, where NodePorts were served: after an agent restart
// nothing else tells those virtual servers apart from another tool's),
// the bound addresses, then DummyDevice. Other virtual servers stay. Like
// Sync, it trusts its memory unless the last sync failed or RequestFullSync
// was called; nothing left costs no write.
func (s *Syncer) Remove(nodeAddresses []netip.Addr) (Plan, error) {
	gone := State{}
	for _, a := range nodeAddresses {
		gone.NodeAddresses = appendUnique(gone.NodeAddresses, a.Unmap())
	}
	return s.Sync(gone)
}
