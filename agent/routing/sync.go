package routing

import (
	"fmt"
)

// Read returns the state nl holds that Plexus owns: its routes and the
// VXLAN device called device with its addresses, FDB and neighbours.
func Read(nl Interface, device string) (State, error) {
	var s State
	routes, err := nl.ListRoutes()
	if err != nil {
		return State{}, fmt.Errorf("list routes: %w", err)
	}
	s.Routes = routes
	dev, err := nl.GetVXLAN(device)
	if err != nil {
		return State{}, fmt.Errorf("read link %s: %w", device, err)
	}
	if dev != nil {
		s.VXLAN = dev
		if s.Addresses, err = nl.ListAddresses(device); err != nil {
			return State{}, fmt.Errorf("list addresses of %s: %w", device, err)
		}
		if s.FDB, err = nl.ListFDB(device); err != nil {
			return State{}, fmt.Errorf("list fdb of %s: %w", device, err)
		}
		if s.Neighbors, err = nl.ListNeighbors(device); err != nil {
			return State{}, fmt.Errorf("list neighbours of %s: %w", device, err)
		}
	}
	s.Sort()
	return s, nil
}

// Syncer programs one node's routes, sync after sync. Like kube-proxy, it
// remembers what the kernel holds after a successful sync and plans the next
// one against that, so a sync that changes one peer costs one kernel
// operation and a no-op sync costs none. After a failure, or when asked, it
// reads the kernel again (a full sync).
type Syncer struct {
	nl Interface
	// last is the state after the last successful Apply; nil means unknown.
	last *State
}

// NewSyncer returns a Syncer whose first sync reads the kernel.
func NewSyncer(nl Interface) *Syncer { return &Syncer{nl: nl} }

// RequestFullSync makes the next Sync read the kernel instead of trusting
// what it remembers (the agent calls it periodically, to repair drift).
func (s *Syncer) RequestFullSync() { s.last = nil }

// Sync makes the kernel match cfg and returns the plan it carried out.
// Unroutable peer pod CIDRs are in the plan, not an error.
func (s *Syncer) Sync(cfg Config) (Plan, error) {
	if err := cfg.Validate(); err != nil {
		return Plan{}, fmt.Errorf("routing config of node %s: %w", cfg.Local.Name, err)
	}
	desired := Desired(cfg)
	var current State
	if s.last != nil {
		current = *s.last
	} else {
		var err error
		if current, err = Read(s.nl, VXLANDeviceName); err != nil {
			return Plan{}, fmt.Errorf("read routing state of node %s: %w", cfg.Local.Name, err)
		}
	}
	plan := PlanChanges(desired, current)
	if err := Apply(s.nl, plan); err != nil {
		s.last = nil
		return plan, fmt.Errorf("program routes of node %s: %w", cfg.Local.Name, err)
	}
	desired.Unroutable = nil
	s.last = &desired
	return plan, nil
}
