package routing

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

// Desired computes the routing state this node should hold for cfg. It is
// pure. Peer pod CIDRs that cannot be routed are listed in
// State.Unroutable with the reason; everything else is routed.
func Desired(cfg Config) State {
	var s State
	local := cfg.Local
	underlay, hasUnderlay := vxlanUnderlayIP(local.NodeIPs)
	peers := slices.Clone(cfg.Peers)
	slices.SortFunc(peers, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })

	type vxlanPeer struct {
		name     string
		underlay netip.Addr
		cidrs    []netip.Prefix
	}
	var overVXLAN []vxlanPeer
	conflicts := podCIDRConflicts(local, peers)
	for _, peer := range peers {
		var vx vxlanPeer
		for i, cidr := range peer.PodCIDRs {
			if slices.Contains(peer.PodCIDRs[:i], cidr) {
				continue // listed twice
			}
			unroutable := func(format string, args ...any) {
				s.Unroutable = append(s.Unroutable, Unroutable{Peer: peer.Name, PodCIDR: cidr, Reason: fmt.Sprintf(format, args...)})
			}
			if err := checkPodCIDR(cidr); err != nil {
				unroutable("%v", err)
				continue
			}
			if why, ok := conflicts[claim{owner: peer.Name, cidr: cidr}]; ok {
				unroutable("%s", why)
				continue
			}
			gw, direct, why := directNextHop(cfg, peer, cidr)
			switch {
			case direct:
				s.Routes = append(s.Routes, Route{Dst: cidr, Via: gw, Dev: local.Uplink.Name})
			case cfg.Mode == ModeDirect:
				unroutable("%s", why)
			case !hasUnderlay:
				unroutable("local node has no node IP for VXLAN")
			default:
				peerUnderlay, ok := ipfamily.First(peer.NodeIPs, ipfamily.Of(underlay))
				if !ok {
					unroutable("peer has no %s node IP to reach over the VXLAN underlay", ipfamily.Of(underlay))
					continue
				}
				vx.name, vx.underlay = peer.Name, peerUnderlay
				vx.cidrs = append(vx.cidrs, cidr)
			}
		}
		if len(vx.cidrs) > 0 {
			overVXLAN = append(overVXLAN, vx)
		}
	}

	if hasUnderlay && (cfg.Mode == ModeVXLAN || len(overVXLAN) > 0) {
		s.VXLAN = &VXLANDevice{
			Name:   VXLANDeviceName,
			VNI:    cfg.VXLAN.vni(),
			Port:   cfg.VXLAN.port(),
			Local:  underlay,
			Uplink: local.Uplink.Name,
			MTU:    EffectiveMTU(cfg),
			MAC:    VTEPMAC(underlay),
			Up:     true,
		}
		for _, cidr := range local.PodCIDRs {
			if checkPodCIDR(cidr) == nil {
				a := VTEPAddr(cidr)
				s.Addresses = append(s.Addresses, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		for _, p := range overVXLAN {
			mac := VTEPMAC(p.underlay)
			s.FDB = append(s.FDB, FDBEntry{MAC: mac, Dst: p.underlay})
			linkLocalAdded := false
			for _, cidr := range p.cidrs {
				if cidr.Addr().Is4() {
					vtep := VTEPAddr(cidr)
					s.Neighbors = append(s.Neighbors, Neighbor{IP: vtep, MAC: mac})
					s.Routes = append(s.Routes, Route{Dst: cidr, Via: vtep, Dev: VXLANDeviceName, OnLink: true})
					continue
				}
				// IPv6 goes via the peer's link-local VTEP address: the kernel
				// refuses an onlink IPv6 next hop that another route (e.g. the
				// direct route being replaced in a mode change) covers via a
				// different device, and never checks link-local next hops.
				ll := VTEPLinkLocal(mac)
				if !linkLocalAdded {
					s.Neighbors = append(s.Neighbors, Neighbor{IP: ll, MAC: mac})
					linkLocalAdded = true
				}
				s.Routes = append(s.Routes, Route{Dst: cidr, Via: ll, Dev: VXLANDeviceName})
			}
		}
	}
	s.Sort()
	return s
}

// directNextHop decides whether cidr of peer is routed directly and via
// which node IP. In VXLAN mode nothing is direct; otherwise a peer is direct
// when it has a node IP of the CIDR's family on a local uplink subnet. When
// not direct, why says what is missing.
func directNextHop(cfg Config, peer Peer, cidr netip.Prefix) (gw netip.Addr, direct bool, why string) {
	if cfg.Mode == ModeVXLAN {
		return netip.Addr{}, false, "VXLAN mode"
	}
	fam := ipfamily.OfPrefix(cidr)
	ip, ok := ipfamily.First(peer.NodeIPs, fam)
	if !ok {
		return netip.Addr{}, false, fmt.Sprintf("peer has no %s node IP to route it via", fam)
	}
	for _, sub := range cfg.Local.Uplink.Subnets {
		if sub.Masked().Contains(ip) {
			return ip, true, ""
		}
	}
	return netip.Addr{}, false, fmt.Sprintf("node IP %s is not on a subnet of uplink %s (%s); Direct routing needs the same L2 subnet, use Auto or VXLAN",
		ip, cfg.Local.Uplink.Name, ipfamily.Join(cfg.Local.Uplink.Subnets))
}

// EffectiveMTU is the pod network MTU: the configured one, or the uplink
// MTU less the VXLAN overhead of the underlay family whenever VXLAN may be
// used (VXLAN and Auto modes; in Auto a pod cannot know which peers are
// direct), or the uplink MTU in Direct mode.
func EffectiveMTU(cfg Config) int {
	if cfg.MTU > 0 {
		return cfg.MTU
	}
	mtu := cfg.Local.Uplink.MTU
	if cfg.Mode == ModeDirect {
		return mtu
	}
	if u, ok := vxlanUnderlayIP(cfg.Local.NodeIPs); ok && u.Is6() {
		return mtu - VXLANOverheadIPv6
	}
	return mtu - VXLANOverheadIPv4
}

// VTEPMAC derives a node's VTEP MAC from its underlay IP: the first six
// bytes of the SHA-256 of the address, made a locally administered unicast
// MAC. Every node computes the same MAC for a peer without exchanging it.
func VTEPMAC(underlay netip.Addr) net.HardwareAddr {
	sum := sha256.Sum256(underlay.Unmap().AsSlice())
	mac := net.HardwareAddr(sum[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01 // locally administered, unicast
	return mac
}

// VTEPAddr is a node's VTEP address for a pod CIDR: its first (network)
// address, which IPAM never gives to a pod. IPv4 routes use the peer's as
// next hop; the local ones of both families go on the device as sources.
func VTEPAddr(podCIDR netip.Prefix) netip.Addr { return podCIDR.Masked().Addr() }

// VTEPLinkLocal is the IPv6 next hop of a peer over VXLAN: the modified
// EUI-64 link-local address of its VTEP MAC, the same address the peer's
// kernel gives its VXLAN device.
func VTEPLinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// vxlanUnderlayIP is the local underlay address of VXLAN: the first node IP.
func vxlanUnderlayIP(nodeIPs []netip.Addr) (netip.Addr, bool) {
	if len(nodeIPs) == 0 || !nodeIPs[0].IsValid() {
		return netip.Addr{}, false
	}
	return nodeIPs[0].Unmap(), true
}
