package testnet

import (
	"net/netip"
	"testing"
)

const (
	// PodGateway4 and PodGateway6 are the link-local next hops a fake pod's
	// default routes use; the node end of the pod's veth carries them. The
	// real CNI plugin uses the same scheme.
	PodGateway4 = "169.254.1.1"
	// PodGateway6 is the IPv6 counterpart of PodGateway4.
	PodGateway6 = "fe80::1"
	// podIfName is the interface name inside a fake pod.
	podIfName = "eth0"
)

// AddFakePod is a stand-in for the CNI plugin: it creates a namespace
// "pod-"+name, connects it to node with a routed veth (node end hostIf) and
// gives the pod each IP as a /32 or /128 with default routes via the
// link-local gateways; the node gets a host route per IP to the veth.
func AddFakePod(t testing.TB, node *Netns, name, hostIf string, ips ...netip.Addr) *Netns {
	t.Helper()
	pod := NewNetns(t, "pod-"+name)
	Veth(t, pod, node, podIfName, hostIf)
	gw4, gw6 := netip.MustParseAddr(PodGateway4), netip.MustParseAddr(PodGateway6)
	node.AddAddr(t, hostIf, netip.PrefixFrom(gw4, 32), netip.PrefixFrom(gw6, 64))
	routed4, routed6 := false, false
	for _, ip := range ips {
		pod.AddAddr(t, podIfName, netip.PrefixFrom(ip, ip.BitLen()))
		node.AddRoute(t, hostIf, netip.PrefixFrom(ip, ip.BitLen()), netip.Addr{})
		switch {
		case ip.Is4() && !routed4:
			// The gateway is in no subnet of the pod: make it on-link first.
			pod.AddRoute(t, podIfName, netip.PrefixFrom(gw4, 32), netip.Addr{})
			pod.AddRoute(t, podIfName, netip.PrefixFrom(netip.IPv4Unspecified(), 0), gw4)
			routed4 = true
		case ip.Is6() && !routed6:
			pod.AddRoute(t, podIfName, netip.PrefixFrom(netip.IPv6Unspecified(), 0), gw6)
			routed6 = true
		}
	}
	return pod
}
