package cni

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// IPv4Gateway is the pod's IPv4 default gateway. It is link-local, so it is the same in every
	// pod, costs no address from the pod CIDR and is never routed off the node. Nothing on the
	// node holds it: the pod reaches it through a permanent neighbour entry that maps it to the
	// host veth's MAC (see setUpPodSide), with proxy-ARP on the host veth as a fallback.
	IPv4Gateway = "169.254.1.1"
	// IPv6Gateway is the pod's IPv6 default gateway: a fixed fe80::1 on every host veth, rather
	// than the host veth's own EUI-64 link-local address, because (1) the pod's routes are the
	// same in every pod and CHECK can verify them without knowing the MAC, (2) it is added with
	// IFA_F_NODAD and is usable at once, while the automatic link-local address stays tentative
	// (unable to send or answer neighbour discovery) for about a second of DAD, and (3) it stays
	// valid when the veth is recreated with a new MAC by a repeated ADD.
	IPv6Gateway = "fe80::1"
)

var (
	ipv4Gateway = netip.MustParseAddr(IPv4Gateway)
	ipv6Gateway = netip.MustParseAddr(IPv6Gateway)
)

// gatewayFor returns the pod gateway of ip's family.
func gatewayFor(ip netip.Addr) netip.Addr {
	if ip.Is4() {
		return ipv4Gateway
	}
	return ipv6Gateway
}

// attachment is one pod interface as plexus-cni builds it.
type attachment struct {
	owner     Owner
	netnsPath string
	hostVeth  string
	mtu       int
	addrs     []netip.Addr
}

// attached is what setUp reports back for the CNI result.
type attached struct {
	hostMAC, podMAC net.HardwareAddr
}

func (a attachment) hasFamily(v4 bool) bool {
	for _, ip := range a.addrs {
		if ip.Is4() == v4 {
			return true
		}
	}
	return false
}

// setUp creates the veth pair and programs both sides. A pair left by an earlier ADD of the same
// attachment is deleted first, so a repeated ADD converges on the same result from any partial
// state. On failure the pair is removed again.
func setUp(a attachment) (*attached, error) {
	podNS, err := netns.GetFromPath(a.netnsPath)
	if err != nil {
		return nil, netnsError(a.netnsPath, err)
	}
	defer podNS.Close()
	pod, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return nil, internalError("open netlink in %s: %v", a.netnsPath, err)
	}
	defer pod.Close()

	if err := deleteHostVeth(a.hostVeth); err != nil {
		return nil, err
	}
	if _, err := pod.LinkByName(a.owner.IfName); err == nil {
		return nil, types.NewError(CodeInterfaceConflict,
			fmt.Sprintf("network namespace %s already has an interface named %s that plexus-cni did not create", a.netnsPath, a.owner.IfName), "")
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: a.hostVeth, MTU: a.mtu},
		PeerName:      a.owner.IfName,
		PeerMTU:       uint32(a.mtu),
		PeerNamespace: netlink.NsFd(podNS),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, internalError("create veth pair %s (node) / %s (pod): %v", a.hostVeth, a.owner.IfName, err)
	}
	res, err := configure(a, pod)
	if err != nil {
		_ = deleteHostVeth(a.hostVeth) // also removes the pod side; the setup error matters more
		return nil, err
	}
	return res, nil
}

// configure programs the freshly created pair: node side, pod side, then the node's routes to the
// pod (last, so the node sends nothing to the pod before its addresses are in place).
func configure(a attachment, pod *netlink.Handle) (*attached, error) {
	host, err := netlink.LinkByName(a.hostVeth)
	if err != nil {
		return nil, internalError("find host veth %s: %v", a.hostVeth, err)
	}
	if err := setUpHostSide(a, host); err != nil {
		return nil, err
	}
	podLink, err := pod.LinkByName(a.owner.IfName)
	if err != nil {
		return nil, internalError("find %s in %s: %v", a.owner.IfName, a.netnsPath, err)
	}
	if err := setUpPodSide(a, pod, podLink, host.Attrs().HardwareAddr); err != nil {
		return nil, err
	}
	for _, ip := range a.addrs {
		r := &netlink.Route{LinkIndex: host.Attrs().Index, Dst: hostPrefix(ip)}
		if ip.Is4() {
			r.Scope = netlink.SCOPE_LINK // directly on the veth, no next hop
		}
		if err := netlink.RouteReplace(r); err != nil {
			return nil, internalError("add node route %s dev %s: %v", ip, a.hostVeth, err)
		}
	}
	if err := enableForwarding(a); err != nil {
		return nil, err
	}
	return &attached{hostMAC: host.Attrs().HardwareAddr, podMAC: podLink.Attrs().HardwareAddr}, nil
}

// setUpHostSide configures the node end of the pair and brings it up.
func setUpHostSide(a attachment, host netlink.Link) error {
	if a.hasFamily(true) {
		// Fallback for a pod that flushed its neighbour table: with proxy-ARP the node answers the
		// pod's ARP for 169.254.1.1 (it does so when it has a route to that address via another
		// interface, normally its default route). proxy_delay defaults to up to 0.8 s of random
		// delay per reply; the pod is our only neighbour here, so answer at once.
		if err := ensureSysctl(fmt.Sprintf(sysctlProxyARPFmt, a.hostVeth), "1"); err != nil {
			return internalError("enable proxy-ARP on %s: %v", a.hostVeth, err)
		}
		if err := ensureSysctl(fmt.Sprintf(sysctlProxyDelayFmt, a.hostVeth), "0"); err != nil {
			return internalError("set proxy_delay on %s: %v", a.hostVeth, err)
		}
	}
	if a.hasFamily(false) {
		// A node may disable IPv6 on new interfaces by default; the gateway address needs it.
		if err := ensureSysctl(fmt.Sprintf(sysctlDisableIPv6Fmt, a.hostVeth), "0"); err != nil {
			return internalError("enable IPv6 on %s: %v", a.hostVeth, err)
		}
		gw := &netlink.Addr{
			IPNet: &net.IPNet{IP: ipv6Gateway.AsSlice(), Mask: net.CIDRMask(64, 128)},
			Flags: unix.IFA_F_NODAD, // usable at once; every host veth has it, so DAD is pointless
		}
		if err := netlink.AddrReplace(host, gw); err != nil {
			return internalError("add gateway address %s to %s: %v", IPv6Gateway, a.hostVeth, err)
		}
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return internalError("set %s up: %v", a.hostVeth, err)
	}
	return nil
}

// setUpPodSide gives the pod interface its addresses, a permanent neighbour entry for each
// gateway and a default route per family.
func setUpPodSide(a attachment, pod *netlink.Handle, link netlink.Link, hostMAC net.HardwareAddr) error {
	name := a.owner.IfName
	if a.hasFamily(false) {
		if err := ensureSysctlIn(a.netnsPath, fmt.Sprintf(sysctlDisableIPv6Fmt, name), "0"); err != nil {
			return internalError("enable IPv6 on %s in %s: %v", name, a.netnsPath, err)
		}
	}
	if err := pod.LinkSetUp(link); err != nil {
		return internalError("set %s up in %s: %v", name, a.netnsPath, err)
	}
	for _, ip := range a.addrs {
		addr := &netlink.Addr{IPNet: hostPrefix(ip)}
		if ip.Is6() {
			// Without NODAD the address is "tentative" for about a second and the pod's first
			// connect() fails with EADDRNOTAVAIL. The address is unique by allocation.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := pod.AddrReplace(link, addr); err != nil {
			return internalError("add %s to %s in %s: %v", addr.IPNet, name, a.netnsPath, err)
		}
		gw := gatewayFor(ip)
		// A permanent entry: the pod never needs ARP/ND to reach its gateway, so this works on a
		// node without a route to 169.254.1.1 (where proxy-ARP stays silent) and saves a round trip
		// on the pod's first packet.
		neigh := &netlink.Neigh{
			LinkIndex:    link.Attrs().Index,
			Family:       netlinkFamily(ip),
			State:        netlink.NUD_PERMANENT,
			IP:           gw.AsSlice(),
			HardwareAddr: hostMAC,
		}
		if err := pod.NeighSet(neigh); err != nil {
			return internalError("add neighbour %s lladdr %s on %s in %s: %v", gw, hostMAC, name, a.netnsPath, err)
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: defaultDst(ip), Gw: gw.AsSlice()}
		if ip.Is4() {
			// 169.254.1.1 is in no subnet of the pod (it has only a /32): "onlink" tells the kernel
			// the gateway is directly on this link anyway.
			route.Flags = int(netlink.FLAG_ONLINK)
		}
		if err := pod.RouteReplace(route); err != nil {
			return internalError("add default route via %s dev %s in %s: %v", gw, name, a.netnsPath, err)
		}
	}
	return nil
}

// enableForwarding turns on routing between interfaces on the node, without which pod-to-pod and
// pod-to-remote traffic stops at the node. Both settings are namespace-wide. Note for IPv6: with
// forwarding on, interfaces with accept_ra=1 ignore router advertisements; a node whose uplink is
// configured by RA needs accept_ra=2 there (the agent's concern, not the plugin's).
func enableForwarding(a attachment) error {
	if a.hasFamily(true) {
		if err := ensureSysctl(sysctlIPv4Forward, "1"); err != nil {
			return internalError("enable IPv4 forwarding: %v", err)
		}
	}
	if a.hasFamily(false) {
		if err := ensureSysctl(sysctlIPv6ForwardAll, "1"); err != nil {
			return internalError("enable IPv6 forwarding: %v", err)
		}
	}
	return nil
}

// deleteHostVeth deletes the node side of a pod's veth pair, which also deletes the pod side and
// every route through it. A missing link is not an error.
func deleteHostVeth(name string) error {
	link, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return internalError("find host veth %s: %v", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return internalError("delete host veth %s: %v", name, err)
	}
	return nil
}
