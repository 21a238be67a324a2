package testnet

import (
	"fmt"
	"net/netip"
	"testing"
)

const (
	// underlayBridgePrefix names a segment's bridge in the underlay namespace.
	underlayBridgePrefix = "br-"
	// underlayPortPrefix names the underlay ends of node veths.
	underlayPortPrefix = "up"
)

// Underlay is a namespace standing in for the machines' physical network:
// one Linux bridge per L2 segment, and IP forwarding between segments, so it
// is also the router for nodes on different subnets.
type Underlay struct {
	// NS is the underlay namespace.
	NS    *Netns
	ports int
}

// NewUnderlay creates the underlay namespace with forwarding on.
func NewUnderlay(t testing.TB) *Underlay {
	t.Helper()
	ns := NewNetns(t, "ul")
	ns.EnableForwarding(t)
	return &Underlay{NS: ns}
}

// Segment is one L2 subnet of the underlay: a bridge, plus the underlay's
// router addresses on it.
type Segment struct {
	u *Underlay
	// Bridge is the bridge's name in the underlay namespace.
	Bridge string
	// Gateways are the router's addresses on the segment (with the subnet's
	// prefix length), at most one per family.
	Gateways []netip.Prefix
}

// AddSegment creates a bridge named "br-"+name holding the given router
// addresses (e.g. 10.99.0.1/24, fd10:99::1/64). Nodes attached to it get
// their default routes through them.
func (u *Underlay) AddSegment(t testing.TB, name string, gateways ...netip.Prefix) *Segment {
	t.Helper()
	br := underlayBridgePrefix + name
	Bridge(t, u.NS, br)
	u.NS.AddAddr(t, br, gateways...)
	return &Segment{u: u, Bridge: br, Gateways: gateways}
}

// Attach connects node to the segment with a veth whose node end is ifName
// and carries addrs, and adds default routes through the segment's gateway
// of each family that addrs use. It returns nothing: the node end is
// reachable by name in the node namespace.
func (s *Segment) Attach(t testing.TB, node *Netns, ifName string, addrs ...netip.Prefix) {
	t.Helper()
	s.u.ports++
	port := fmt.Sprintf("%s%d", underlayPortPrefix, s.u.ports)
	Veth(t, node, s.u.NS, ifName, port)
	if err := s.u.NS.nl.LinkSetMaster(s.u.NS.Link(t, port), s.u.NS.Link(t, s.Bridge)); err != nil {
		t.Fatalf("attach %s to bridge %s: %v", port, s.Bridge, err)
	}
	node.AddAddr(t, ifName, addrs...)
	for _, a := range addrs {
		for _, gw := range s.Gateways {
			if gw.Addr().Is4() == a.Addr().Is4() {
				def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
				if gw.Addr().Is6() {
					def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
				}
				node.AddRoute(t, ifName, def, gw.Addr())
			}
		}
	}
}
