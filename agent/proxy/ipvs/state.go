package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
)

// Service is a virtual server with its real servers.
type Service struct {
	// VirtualServer is the IPVS service.
	VirtualServer VirtualServer
	// RealServers are its destinations, sorted by address and port.
	RealServers []RealServer
}

// State is what IPVS and the dummy device hold (or should hold) of Plexus's
// on one node.
type State struct {
	// Services are the virtual servers, sorted by key.
	Services []Service
	// Bound are the addresses on DummyDevice, sorted.
	Bound []netip.Addr
	// NodeAddresses are the node's addresses that NodePort virtual servers
	// use. They are never bound (the node has them already) but virtual
	// servers on them are Plexus's.
	NodeAddresses []netip.Addr
	// Device says DummyDevice exists (Read) or is wanted (DesiredState
	// wants it always; a state that binds addresses wants it whatever this
	// says). A desired state without it and without Bound deletes it.
	Device bool
}

// Sort puts every list in its canonical order, in place.
func (s *State) Sort() {
	slices.SortFunc(s.Services, func(a, b Service) int { return a.VirtualServer.Key().Compare(b.VirtualServer.Key()) })
	for i := range s.Services {
		slices.SortFunc(s.Services[i].RealServers, compareRealServers)
	}
	slices.SortFunc(s.Bound, netip.Addr.Compare)
	slices.SortFunc(s.NodeAddresses, netip.Addr.Compare)
}

// clone returns a deep copy, so sorting it leaves the caller's lists alone.
func (s State) clone() State {
	c := State{Bound: slices.Clone(s.Bound), NodeAddresses: slices.Clone(s.NodeAddresses), Device: s.Device}
	for _, svc := range s.Services {
		c.Services = append(c.Services, Service{VirtualServer: svc.VirtualServer, RealServers: slices.Clone(svc.RealServers)})
	}
	return c
}

// owns reports whether a virtual server at address a is Plexus's: bound on
// the dummy device, a NodePort node address, or wanted by desired.
func owns(a netip.Addr, current, desired State) bool {
	return slices.Contains(current.Bound, a) || slices.Contains(desired.NodeAddresses, a) ||
		slices.ContainsFunc(desired.Services, func(s Service) bool { return s.VirtualServer.Address == a })
}

// Read returns what ipvs and binder hold of Plexus's with respect to
// desired (whose addresses and node addresses decide ownership, see the
// package doc): the owned virtual servers with their real servers, the
// bound addresses and whether the device exists.
func Read(ipvs Interface, binder Binder, desired State) (State, error) {
	var s State
	device, err := binder.DeviceExists()
	if err != nil {
		return State{}, fmt.Errorf("look for %s: %w", DummyDevice, err)
	}
	s.Device = device
	bound, err := binder.ListBound()
	if err != nil {
		return State{}, fmt.Errorf("list bound virtual IPs: %w", err)
	}
	s.Bound = bound
	vss, err := ipvs.ListVirtualServers()
	if err != nil {
		return State{}, fmt.Errorf("list virtual servers: %w", err)
	}
	for _, vs := range vss {
		if !owns(vs.Address, s, desired) {
			continue
		}
		rss, err := ipvs.ListRealServers(vs.Key())
		if err != nil {
			return State{}, fmt.Errorf("list real servers of %s: %w", vs.Key(), err)
		}
		s.Services = append(s.Services, Service{VirtualServer: vs, RealServers: rss})
	}
	s.Sort()
	return s, nil
}
