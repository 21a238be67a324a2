package connectivity

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/plexus-net/plexus/internal/hostnet"
)

// LoopbackDevice is the device the probe addresses live on. Why lo: this kernel has no dummy
// link type, and an address on lo is local to the node, answered from any interface, and never
// announced anywhere.
const LoopbackDevice = "lo"

// Addresses puts the node's probe addresses on the node.
type Addresses interface {
	// Ensure makes want (as /32 or /128) exactly the probe addresses on the node: a host
	// address on the device inside one of owned (the cluster's pod CIDRs) that is not in want
	// is an old probe address and is removed.
	Ensure(want []netip.Addr, owned []netip.Prefix) error
}

// LoopbackAddresses is Addresses on lo of a network namespace, through netlink.
type LoopbackAddresses struct {
	nl *netlink.Handle
}

var _ Addresses = (*LoopbackAddresses)(nil)

// NewLoopbackAddresses opens a netlink handle in ns (netns.None(): the caller's namespace).
func NewLoopbackAddresses(ns netns.NsHandle) (*LoopbackAddresses, error) {
	h, err := hostnet.RouteHandle(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle for the probe addresses: %w", err)
	}
	return &LoopbackAddresses{nl: h}, nil
}

// Close releases the netlink handle.
func (l *LoopbackAddresses) Close() { l.nl.Close() }

// Ensure implements Addresses.
func (l *LoopbackAddresses) Ensure(want []netip.Addr, owned []netip.Prefix) error {
	lo, err := l.nl.LinkByName(LoopbackDevice)
	if err != nil {
		return fmt.Errorf("find %s: %w", LoopbackDevice, err)
	}
	have, err := l.nl.AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", LoopbackDevice, err)
	}
	present := map[netip.Addr]bool{}
	var errs []error
	for _, a := range have {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		ones, bits := a.Mask.Size()
		if ones != bits {
			continue // not a host address: not ours
		}
		if contains(want, ip) {
			present[ip] = true
			continue
		}
		if inPrefixes(ip, owned) {
			if err := l.nl.AddrDel(lo, &a); err != nil {
				errs = append(errs, fmt.Errorf("remove old probe address %s from %s: %w", ip, LoopbackDevice, err))
			}
		}
	}
	for _, ip := range want {
		if present[ip] {
			continue
		}
		a := &netlink.Addr{IPNet: netlink.NewIPNet(ip.AsSlice())}
		if err := l.nl.AddrAdd(lo, a); err != nil {
			errs = append(errs, fmt.Errorf("add probe address %s to %s: %w", ip, LoopbackDevice, err))
		}
	}
	return errors.Join(errs...)
}

func contains(addrs []netip.Addr, ip netip.Addr) bool {
	for _, a := range addrs {
		if a == ip {
			return true
		}
	}
	return false
}

func inPrefixes(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
