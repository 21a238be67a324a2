package cni

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// checkAttachment verifies that the attachment still looks as ADD left it: the host veth is up
// with a route to each address, the pod interface is its peer, is up, holds each address and has
// a default route per family via the gateway. The first difference is returned as a
// CodeCheckFailed error that says what is missing.
func checkAttachment(a attachment) error {
	host, err := netlink.LinkByName(a.hostVeth)
	if err != nil {
		return checkFailed("host veth %s of %s is missing: %v", a.hostVeth, a.owner, err)
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		return checkFailed("host veth %s of %s is down", a.hostVeth, a.owner)
	}
	for _, ip := range a.addrs {
		ok, err := hasRoute(netlink.RouteListFiltered, host.Attrs().Index, ip, hostPrefix(ip).String(), netip.Addr{})
		if err != nil {
			return internalError("list node routes: %v", err)
		}
		if !ok {
			return checkFailed("node route %s dev %s is missing", hostPrefix(ip), a.hostVeth)
		}
	}

	podNS, err := netns.GetFromPath(a.netnsPath)
	if err != nil {
		return netnsError(a.netnsPath, err)
	}
	defer podNS.Close()
	pod, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return internalError("open netlink in %s: %v", a.netnsPath, err)
	}
	defer pod.Close()
	link, err := pod.LinkByName(a.owner.IfName)
	if err != nil {
		return checkFailed("interface %s is missing in %s: %v", a.owner.IfName, a.netnsPath, err)
	}
	// For a veth, IFLA_LINK (ParentIndex) is the peer's index in the peer's namespace.
	if _, isVeth := link.(*netlink.Veth); !isVeth || link.Attrs().ParentIndex != host.Attrs().Index {
		return checkFailed("interface %s in %s is not the peer of host veth %s", a.owner.IfName, a.netnsPath, a.hostVeth)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return checkFailed("interface %s in %s is down", a.owner.IfName, a.netnsPath)
	}
	if a.mtu != 0 && link.Attrs().MTU != a.mtu {
		return checkFailed("interface %s in %s has MTU %d, want %d", a.owner.IfName, a.netnsPath, link.Attrs().MTU, a.mtu)
	}
	for _, ip := range a.addrs {
		addrs, err := retryDump(func() ([]netlink.Addr, error) { return pod.AddrList(link, netlinkFamily(ip)) })
		if err != nil {
			return internalError("list addresses of %s in %s: %v", a.owner.IfName, a.netnsPath, err)
		}
		want := hostPrefix(ip).String()
		if !slices.ContainsFunc(addrs, func(x netlink.Addr) bool { return x.IPNet.String() == want }) {
			return checkFailed("address %s is missing on %s in %s", want, a.owner.IfName, a.netnsPath)
		}
		ok, err := hasRoute(pod.RouteListFiltered, link.Attrs().Index, ip, defaultDst(ip).String(), gatewayFor(ip))
		if err != nil {
			return internalError("list routes in %s: %v", a.netnsPath, err)
		}
		if !ok {
			return checkFailed("default route via %s dev %s is missing in %s", gatewayFor(ip), a.owner.IfName, a.netnsPath)
		}
	}
	return nil
}

// routeLister is netlink's RouteListFiltered, of the package (current namespace) or of a handle.
type routeLister func(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error)

// hasRoute reports whether the main table behind list has a route to dst (a prefix in String
// form) through link index oif, via gw if gw is valid.
func hasRoute(list routeLister, oif int, ip netip.Addr, dst string, gw netip.Addr) (bool, error) {
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return list(netlinkFamily(ip), &netlink.Route{LinkIndex: oif}, netlink.RT_FILTER_OIF)
	})
	if err != nil {
		return false, err
	}
	for _, r := range routes {
		rdst := defaultDst(ip).String() // the library reports a default route with a nil Dst
		if r.Dst != nil {
			rdst = r.Dst.String()
		}
		if rdst != dst {
			continue
		}
		if gw.IsValid() {
			if rgw, _ := netip.AddrFromSlice(r.Gw); rgw.Unmap() != gw {
				continue
			}
		}
		return true, nil
	}
	return false, nil
}

func checkFailed(format string, args ...any) *types.Error {
	return types.NewError(CodeCheckFailed, fmt.Sprintf(format, args...), "")
}
