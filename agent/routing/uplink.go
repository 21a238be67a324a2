package routing

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// LinkInfo is what ChooseUplink needs to know about one interface.
type LinkInfo struct {
	// Name is the interface name.
	Name string
	// MTU is the interface MTU.
	MTU int
	// Loopback marks the loopback interface.
	Loopback bool
	// Addrs are the interface's addresses with their prefix lengths.
	Addrs []netip.Prefix
}

// ChooseUplink applies the uplink rule: the uplink is the interface that
// carries the node IPs. All node IPs must be on that one interface (Plexus
// sends all pod traffic through one uplink), and it cannot be loopback. The
// result names the interface, its MTU, and each node IP with the prefix
// length it has there (which defines the L2 subnet for Auto mode).
func ChooseUplink(links []LinkInfo, nodeIPs []netip.Addr) (Uplink, error) {
	if len(nodeIPs) == 0 {
		return Uplink{}, fmt.Errorf("no node IP to find the uplink by")
	}
	var up Uplink
	for _, ip := range nodeIPs {
		ip = ip.Unmap()
		link, addr, ok := findAddr(links, ip)
		switch {
		case !ok:
			return Uplink{}, fmt.Errorf("node IP %s is not assigned to any interface of this node", ip)
		case link.Loopback:
			return Uplink{}, fmt.Errorf("node IP %s is on loopback interface %s: pod traffic needs a real uplink", ip, link.Name)
		case up.Name != "" && up.Name != link.Name:
			return Uplink{}, fmt.Errorf("node IPs are on two interfaces, %s (%s) and %s (%s): Plexus uses one uplink",
				up.Name, up.Subnets[0].Addr(), link.Name, ip)
		}
		up.Name, up.MTU = link.Name, link.MTU
		up.Subnets = append(up.Subnets, addr)
	}
	return up, nil
}

// findAddr finds the interface and address (with prefix length) holding ip.
func findAddr(links []LinkInfo, ip netip.Addr) (LinkInfo, netip.Prefix, bool) {
	for _, l := range links {
		for _, a := range l.Addrs {
			if a.Addr() == ip {
				return l, a, true
			}
		}
	}
	return LinkInfo{}, netip.Prefix{}, false
}

// DiscoverUplink reads the interfaces of the namespace behind h and applies
// ChooseUplink.
func DiscoverUplink(h *netlink.Handle, nodeIPs []netip.Addr) (Uplink, error) {
	links, err := h.LinkList()
	if err != nil {
		return Uplink{}, fmt.Errorf("list links: %w", err)
	}
	infos := make([]LinkInfo, 0, len(links))
	for _, l := range links {
		attrs := l.Attrs()
		info := LinkInfo{Name: attrs.Name, MTU: attrs.MTU, Loopback: attrs.Flags&net.FlagLoopback != 0}
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return Uplink{}, fmt.Errorf("list addresses of %s: %w", attrs.Name, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				ones, _ := a.Mask.Size()
				info.Addrs = append(info.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
			}
		}
		infos = append(infos, info)
	}
	up, err := ChooseUplink(infos, nodeIPs)
	if err != nil {
		return Uplink{}, fmt.Errorf("choose uplink: %w", err)
	}
	return up, nil
}

// Uplink applies ChooseUplink to the interfaces of n's namespace.
func (n *Netlink) Uplink(nodeIPs []netip.Addr) (Uplink, error) { return DiscoverUplink(n.h, nodeIPs) }
