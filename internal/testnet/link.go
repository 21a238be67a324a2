package testnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Veth creates a veth pair with end nameA in a and end nameB in b (a and b
// may be the same namespace), disables IPv6 duplicate address detection on
// both ends and sets both up. The pair is deleted on cleanup.
func Veth(t testing.TB, a, b *Netns, nameA, nameB string) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: nameA},
		PeerName:      nameB,
		PeerNamespace: netlink.NsFd(int(b.handle)),
	}
	if err := a.nl.LinkAdd(veth); err != nil {
		t.Fatalf("create veth %s(%s)<->%s(%s): %v", nameA, a, nameB, b, err)
	}
	t.Cleanup(func() { a.deleteLink(t, nameA) })
	a.prepareLink(t, nameA)
	b.prepareLink(t, nameB)
}

// Bridge creates a Linux bridge in n, up, with multicast snooping off.
// Deleted on cleanup.
func Bridge(t testing.TB, n *Netns, name string) {
	t.Helper()
	// Snooping off: with no MLD querier on the segment the bridge may stop
	// flooding the solicited-node multicast that IPv6 neighbour discovery
	// relies on, which makes IPv6 reachability flaky.
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &off}
	if err := n.nl.LinkAdd(br); err != nil {
		t.Fatalf("create bridge %s in %s: %v", name, n, err)
	}
	t.Cleanup(func() { n.deleteLink(t, name) })
	n.prepareLink(t, name)
}

// prepareLink turns off IPv6 DAD on the link and sets it up.
func (n *Netns) prepareLink(t testing.TB, name string) {
	t.Helper()
	// Without this, IPv6 addresses stay "tentative" for about a second after
	// the link comes up and cannot be used as source or bound to.
	n.Sysctl(t, "net/ipv6/conf/"+name+"/accept_dad", "0")
	n.SetUp(t, name)
}

// SetUp sets a link up.
func (n *Netns) SetUp(t testing.TB, name string) {
	t.Helper()
	l := n.Link(t, name)
	if err := n.nl.LinkSetUp(l); err != nil {
		t.Fatalf("in %s: set %s up: %v", n, name, err)
	}
}

// Link returns the link with the given name or fails the test.
func (n *Netns) Link(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := n.nl.LinkByName(name)
	if err != nil {
		t.Fatalf("in %s: find link %s: %v", n, name, err)
	}
	return l
}

// deleteLink removes a link if it still exists; a namespace already gone
// or a link already removed (its veth peer was deleted) is fine.
func (n *Netns) deleteLink(t testing.TB, name string) {
	if n.nl == nil {
		return
	}
	l, err := n.nl.LinkByName(name)
	if err != nil {
		return
	}
	if err := n.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		t.Errorf("in %s: delete link %s: %v", n, name, err)
	}
}

// AddAddr assigns addresses (with their prefix length) to a link. IPv6
// addresses are added with IFA_F_NODAD so they are usable at once.
func (n *Netns) AddAddr(t testing.TB, link string, addrs ...netip.Prefix) {
	t.Helper()
	l := n.Link(t, link)
	for _, p := range addrs {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := n.nl.AddrAdd(l, a); err != nil {
			t.Fatalf("in %s: add %s to %s: %v", n, p, link, err)
		}
	}
}

// AddRoute adds a route to dst via gw (gw may be invalid for a link route)
// out of link, in the main table.
func (n *Netns) AddRoute(t testing.TB, link string, dst netip.Prefix, gw netip.Addr) {
	t.Helper()
	r := &netlink.Route{
		LinkIndex: n.Link(t, link).Attrs().Index,
		Dst:       &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
	}
	if gw.IsValid() {
		r.Gw = gw.AsSlice()
	} else {
		r.Scope = netlink.SCOPE_LINK
	}
	if err := n.nl.RouteAdd(r); err != nil {
		t.Fatalf("in %s: %s", n, fmt.Errorf("add route %s via %s dev %s: %w", dst, gw, link, err))
	}
}
