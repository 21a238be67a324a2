// Package hostnet reads the machine's own addresses and routes, so that whatever creates networks of
// its own (the lab, the real-kernel test harness) can refuse ranges the machine already uses. It is
// an ordinary package: binaries (plexusctl) link it, so it must never import testing.
package hostnet

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// machineEntry is one address or route of the machine, as a prefix plus a
// human description for error messages.
type machineEntry struct {
	prefix netip.Prefix
	what   string
}

// CheckNoOverlap returns an error naming the clash if any of the given ranges
// overlaps an address or a route of the network namespace the calling thread
// is in (both families, all routing tables): for a program that never moves
// threads, the machine's. Default routes (0.0.0.0/0, ::/0), IPv6 link-local
// (fe80::/10) and multicast (ff00::/8) entries are ignored: every host has
// them and no lab or test uses those ranges. Call it before creating anything.
func CheckNoOverlap(prefixes ...netip.Prefix) error {
	// Locked so that the namespace read is the one this goroutine's thread is in for the whole call.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns, err := netns.Get()
	if err != nil {
		return fmt.Errorf("open the current network namespace: %w", err)
	}
	defer ns.Close()
	return CheckNoOverlapIn(ns, prefixes...)
}

// CheckNoOverlapIn is CheckNoOverlap for the network namespace ns (e.g. the
// machine's, opened before any thread moved).
func CheckNoOverlapIn(ns netns.NsHandle, prefixes ...netip.Prefix) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle for the host namespace: %w", err)
	}
	defer h.Close()
	entries, err := machineEntries(h)
	if err != nil {
		return err
	}
	return findOverlap(prefixes, entries)
}

// machineEntries lists the addresses and routes of the namespace behind h.
func machineEntries(h *netlink.Handle) ([]machineEntry, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links of the machine: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	var out []machineEntry
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of the machine: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		out = append(out, machineEntry{
			prefix: netip.PrefixFrom(ip, ip.BitLen()),
			what:   fmt.Sprintf("address %s on %s", a.IPNet, names[a.LinkIndex]),
		})
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes of the machine: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue // a default route
		}
		p, ok := prefixFromIPNet(r.Dst)
		if !ok {
			continue
		}
		out = append(out, machineEntry{prefix: p, what: describeRoute(r, names)})
	}
	return out, nil
}

// findOverlap is the pure part of CheckNoOverlap.
func findOverlap(test []netip.Prefix, machine []machineEntry) error {
	var clashes []string
	for _, t := range test {
		t = t.Masked()
		for _, m := range machine {
			if ignoredMachinePrefix(m.prefix) {
				continue
			}
			if t.Overlaps(m.prefix) {
				clashes = append(clashes, fmt.Sprintf("range %s overlaps %s of this machine", t, m.what))
			}
		}
	}
	if len(clashes) > 0 {
		return fmt.Errorf("refusing to create networks: %s; pick other ranges", strings.Join(clashes, "; "))
	}
	return nil
}

var (
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
	multicast6 = netip.MustParsePrefix("ff00::/8")
)

func ignoredMachinePrefix(p netip.Prefix) bool {
	if p.Bits() == 0 {
		return true // default route
	}
	return linkLocal6.Contains(p.Addr()) || multicast6.Contains(p.Addr())
}

func prefixFromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ones).Masked(), true
}

func describeRoute(r netlink.Route, names map[int]string) string {
	s := "route " + r.Dst.String()
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	if n, ok := names[r.LinkIndex]; ok {
		s += " dev " + n
	}
	if r.Table != unix.RT_TABLE_MAIN {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s
}
