package routing

import (
	"errors"
	"fmt"
	"net/netip"
)

// Mode selects how pod traffic reaches other nodes.
type Mode string

const (
	// ModeDirect routes each peer pod CIDR via the peer's node IP (host-gw).
	ModeDirect Mode = "Direct"
	// ModeVXLAN encapsulates pod traffic to every peer in VXLAN.
	ModeVXLAN Mode = "VXLAN"
	// ModeAuto routes directly to peers on the local uplink subnet and over
	// VXLAN to the rest.
	ModeAuto Mode = "Auto"
)

const (
	// VXLANDeviceName is the VXLAN device Plexus owns (at most 15 bytes, the
	// kernel's IFNAMSIZ-1).
	VXLANDeviceName = "plexus.vxlan"
	// DefaultVNI is the VXLAN network identifier when none is configured.
	// Flannel uses VNI 1 on port 8472 and Calico VNI 4096 on port 4789; VNI
	// 1 on 4789 collides with neither, so a node can run both during a
	// migration.
	DefaultVNI uint32 = 1
	// DefaultVXLANPort is the UDP port when none is configured: the IANA
	// VXLAN port.
	DefaultVXLANPort uint16 = 4789
	// VXLANOverheadIPv4 is what VXLAN adds to each packet over an IPv4
	// underlay: inner Ethernet 14 + VXLAN 8 + UDP 8 + IPv4 20.
	VXLANOverheadIPv4 = 50
	// VXLANOverheadIPv6 is the same over an IPv6 underlay (IPv6 header 40).
	VXLANOverheadIPv6 = 70
	// maxVNI is the largest 24-bit VXLAN network identifier.
	maxVNI = 1<<24 - 1
	// minMTU is the smallest MTU that IPv6 allows on a link.
	minMTU = 1280
)

// Config is everything the routing data plane needs, in plain Go. The agent
// fills it from the ClusterNetwork, its NodeNetwork and the peers'.
type Config struct {
	// Mode is Direct, VXLAN or Auto.
	Mode Mode
	// MTU is the pod network MTU; 0 derives it from the uplink (see
	// EffectiveMTU).
	MTU int
	// VXLAN holds the VXLAN settings; zero values take the defaults.
	VXLAN VXLANConfig
	// Local is this node.
	Local LocalNode
	// Peers are all other nodes. Order does not matter.
	Peers []Peer
}

// VXLANConfig holds the VXLAN settings. Every node must use the same ones.
type VXLANConfig struct {
	// VNI is the VXLAN network identifier; 0 means DefaultVNI.
	VNI uint32
	// Port is the UDP destination port; 0 means DefaultVXLANPort.
	Port uint16
}

// LocalNode describes this node.
type LocalNode struct {
	// Name is the node name (for messages).
	Name string
	// NodeIPs are the node's underlay addresses; the first is the VXLAN
	// underlay address.
	NodeIPs []netip.Addr
	// PodCIDRs are this node's pod CIDRs (one per family).
	PodCIDRs []netip.Prefix
	// Uplink is the interface carrying NodeIPs (see ChooseUplink).
	Uplink Uplink
}

// Peer describes another node.
type Peer struct {
	// Name is the node name.
	Name string
	// NodeIPs are the peer's underlay addresses.
	NodeIPs []netip.Addr
	// PodCIDRs are the peer's pod CIDRs.
	PodCIDRs []netip.Prefix
}

// Uplink is the interface that carries the node IPs.
type Uplink struct {
	// Name is the interface name.
	Name string
	// MTU is the interface MTU.
	MTU int
	// Subnets are the node IPs with the prefix length they have on the
	// interface (e.g. 10.99.0.11/24): they define which peers are on the
	// same L2 subnet.
	Subnets []netip.Prefix
}

// vni returns the configured VNI or the default.
func (c VXLANConfig) vni() uint32 {
	if c.VNI == 0 {
		return DefaultVNI
	}
	return c.VNI
}

// port returns the configured port or the default.
func (c VXLANConfig) port() uint16 {
	if c.Port == 0 {
		return DefaultVXLANPort
	}
	return c.Port
}

// Validate reports every problem of cfg that Desired cannot work around.
// Problems of single peers are not errors: Desired reports them as
// Unroutable and routes the rest.
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeDirect, ModeVXLAN, ModeAuto:
	default:
		errs = append(errs, fmt.Errorf("routing mode %q: want %s, %s or %s", c.Mode, ModeDirect, ModeVXLAN, ModeAuto))
	}
	if c.MTU != 0 && c.MTU < minMTU {
		errs = append(errs, fmt.Errorf("MTU %d: below the minimum %d", c.MTU, minMTU))
	}
	if c.VXLAN.VNI > maxVNI {
		errs = append(errs, fmt.Errorf("VXLAN VNI %d: above the maximum %d", c.VXLAN.VNI, maxVNI))
	}
	if len(c.Local.NodeIPs) == 0 {
		errs = append(errs, fmt.Errorf("local node %q has no node IP", c.Local.Name))
	}
	if c.Local.Uplink.Name == "" {
		errs = append(errs, fmt.Errorf("local node %q has no uplink interface", c.Local.Name))
	}
	if c.MTU == 0 && c.Local.Uplink.MTU == 0 {
		errs = append(errs, fmt.Errorf("neither an MTU nor the uplink MTU is known"))
	}
	for _, p := range c.Local.PodCIDRs {
		if err := checkPodCIDR(p); err != nil {
			errs = append(errs, fmt.Errorf("local node %q: %w", c.Local.Name, err))
		}
	}
	return errors.Join(errs...)
}

// checkPodCIDR rejects prefixes that cannot hold a VTEP address plus pods.
func checkPodCIDR(p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("invalid pod CIDR %s", p)
	}
	if p != p.Masked() {
		return fmt.Errorf("pod CIDR %s has host bits set (want %s)", p, p.Masked())
	}
	if p.Bits() > p.Addr().BitLen()-2 {
		return fmt.Errorf("pod CIDR %s is too small", p)
	}
	return nil
}
