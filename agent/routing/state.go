package routing

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

// State is the routing state of one node that Plexus owns: its routes (in
// any device) and its VXLAN device with everything on it.
type State struct {
	// VXLAN is the VXLAN device, nil when there is none.
	VXLAN *VXLANDevice
	// Addresses are the global addresses on the VXLAN device.
	Addresses []netip.Prefix
	// FDB are the VXLAN forwarding entries (peer MAC -> peer underlay IP).
	FDB []FDBEntry
	// Neighbors are the permanent neighbour entries on the VXLAN device.
	Neighbors []Neighbor
	// Routes are the routes marked with RouteProtocol, main table.
	Routes []Route
	// Unroutable lists peer pod CIDRs Desired could not route, and why. Only
	// Desired fills it; the planner carries it into the Plan.
	Unroutable []Unroutable
}

// Route is one route Plexus owns. The kernel identifies it by Dst (main
// table, default metric).
type Route struct {
	// Dst is the destination, masked.
	Dst netip.Prefix
	// Via is the next hop.
	Via netip.Addr
	// Dev is the output interface.
	Dev string
	// OnLink says the next hop is reachable on Dev whatever Dev's subnets
	// (used for VXLAN next hops, which are on no subnet of the device).
	OnLink bool
}

// Equal reports whether r and o are the same route.
func (r Route) Equal(o Route) bool { return r == o }

// String formats r like `ip route`.
func (r Route) String() string {
	s := fmt.Sprintf("%s via %s dev %s", r.Dst, r.Via, r.Dev)
	if r.OnLink {
		s += " onlink"
	}
	return s
}

// VXLANDevice is the VXLAN device's configuration.
type VXLANDevice struct {
	// Name is the device name (VXLANDeviceName).
	Name string
	// VNI is the VXLAN network identifier.
	VNI uint32
	// Port is the UDP destination port.
	Port uint16
	// Local is the underlay source address (the local node IP).
	Local netip.Addr
	// Uplink is the underlay interface the device sends through.
	Uplink string
	// MTU is the device MTU.
	MTU int
	// MAC is the device's (derived) MAC address.
	MAC net.HardwareAddr
	// Up says the device is administratively up.
	Up bool
}

// Equal reports whether d and o are configured the same.
func (d *VXLANDevice) Equal(o *VXLANDevice) bool {
	if d == nil || o == nil {
		return d == o
	}
	return d.sameIdentity(o) && d.MTU == o.MTU && d.Up == o.Up
}

// sameIdentity compares the attributes that can only be set at creation;
// a difference means the device must be recreated.
func (d *VXLANDevice) sameIdentity(o *VXLANDevice) bool {
	return d.Name == o.Name && d.VNI == o.VNI && d.Port == o.Port && d.Local == o.Local &&
		d.Uplink == o.Uplink && bytes.Equal(d.MAC, o.MAC)
}

// String formats d like `ip link add`.
func (d *VXLANDevice) String() string {
	state := "down"
	if d.Up {
		state = "up"
	}
	return fmt.Sprintf("vxlan %s id %d dstport %d local %s dev %s mtu %d address %s %s",
		d.Name, d.VNI, d.Port, d.Local, d.Uplink, d.MTU, d.MAC, state)
}

// FDBEntry sends frames for MAC to the VXLAN endpoint at Dst.
type FDBEntry struct {
	// MAC is the peer's VTEP MAC.
	MAC net.HardwareAddr
	// Dst is the peer's underlay IP.
	Dst netip.Addr
}

// Equal reports whether e and o are the same entry.
func (e FDBEntry) Equal(o FDBEntry) bool { return bytes.Equal(e.MAC, o.MAC) && e.Dst == o.Dst }

// String formats e like `bridge fdb`.
func (e FDBEntry) String() string { return fmt.Sprintf("%s dst %s", e.MAC, e.Dst) }

// Neighbor is a permanent neighbour entry: the peer VTEP address IP is at
// MAC.
type Neighbor struct {
	// IP is the peer's VTEP address.
	IP netip.Addr
	// MAC is the peer's VTEP MAC.
	MAC net.HardwareAddr
}

// Equal reports whether n and o are the same entry.
func (n Neighbor) Equal(o Neighbor) bool { return n.IP == o.IP && bytes.Equal(n.MAC, o.MAC) }

// String formats n like `ip neigh`.
func (n Neighbor) String() string { return fmt.Sprintf("%s lladdr %s", n.IP, n.MAC) }

// Unroutable is a peer pod CIDR that gets no route, and why.
type Unroutable struct {
	// Peer is the peer node's name.
	Peer string
	// PodCIDR is the pod CIDR without a route.
	PodCIDR netip.Prefix
	// Reason says why, for a user.
	Reason string
}

// String formats u for logs and conditions.
func (u Unroutable) String() string {
	return fmt.Sprintf("peer %s pod CIDR %s: %s", u.Peer, u.PodCIDR, u.Reason)
}

// Sort puts every list of s in a canonical order, so that states compare
// and print deterministically.
func (s *State) Sort() {
	slices.SortFunc(s.Addresses, ipfamily.ComparePrefix)
	slices.SortFunc(s.FDB, func(a, b FDBEntry) int {
		return cmp.Or(a.Dst.Compare(b.Dst), bytes.Compare(a.MAC, b.MAC))
	})
	slices.SortFunc(s.Neighbors, func(a, b Neighbor) int {
		return cmp.Or(a.IP.Compare(b.IP), bytes.Compare(a.MAC, b.MAC))
	})
	slices.SortFunc(s.Routes, func(a, b Route) int { return ipfamily.ComparePrefix(a.Dst, b.Dst) })
	slices.SortFunc(s.Unroutable, func(a, b Unroutable) int {
		return cmp.Or(cmp.Compare(a.Peer, b.Peer), ipfamily.ComparePrefix(a.PodCIDR, b.PodCIDR))
	})
}
