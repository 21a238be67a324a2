package routing

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ListAddresses implements Interface.
func (n *Netlink) ListAddresses(dev string) ([]netip.Prefix, error) {
	l, err := n.h.LinkByName(dev)
	if err != nil {
		return nil, err
	}
	as, err := n.h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range as {
		if a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue // link-local addresses belong to the kernel
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

func (n *Netlink) kernelAddr(dev string, a netip.Prefix) (netlink.Link, *netlink.Addr, error) {
	l, err := n.h.LinkByName(dev)
	if err != nil {
		return nil, nil, err
	}
	ka := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
	if a.Addr().Is6() {
		// Without NODAD the address stays tentative for a second or more and
		// cannot be the source of traffic; it is unique by construction.
		ka.Flags = unix.IFA_F_NODAD
	}
	return l, ka, nil
}

// AddAddress implements Interface.
func (n *Netlink) AddAddress(dev string, a netip.Prefix) error {
	l, ka, err := n.kernelAddr(dev, a)
	if err != nil {
		return err
	}
	return n.h.AddrReplace(l, ka)
}

// DelAddress implements Interface.
func (n *Netlink) DelAddress(dev string, a netip.Prefix) error {
	l, ka, err := n.kernelAddr(dev, a)
	if err != nil {
		return err
	}
	if err := n.h.AddrDel(l, ka); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return err
	}
	return nil
}

// ListFDB implements Interface.
func (n *Netlink) ListFDB(dev string) ([]FDBEntry, error) {
	idx, err := n.ifindex(dev)
	if err != nil {
		return nil, err
	}
	ns, err := n.h.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return nil, n.forget(err)
	}
	var out []FDBEntry
	for _, e := range ns {
		dst, ok := netip.AddrFromSlice(e.IP)
		if e.LinkIndex != idx || !ok || e.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		out = append(out, FDBEntry{MAC: e.HardwareAddr, Dst: dst.Unmap()})
	}
	return out, nil
}

func (n *Netlink) fdb(dev string, e FDBEntry) (*netlink.Neigh, error) {
	idx, err := n.ifindex(dev)
	if err != nil {
		return nil, err
	}
	return &netlink.Neigh{
		LinkIndex:    idx,
		Family:       unix.AF_BRIDGE,
		State:        netlink.NUD_PERMANENT,
		Flags:        netlink.NTF_SELF,
		IP:           e.Dst.AsSlice(),
		HardwareAddr: e.MAC,
	}, nil
}

// SetFDB implements Interface.
func (n *Netlink) SetFDB(dev string, e FDBEntry) error {
	kn, err := n.fdb(dev, e)
	if err != nil {
		return err
	}
	return n.forget(n.h.NeighSet(kn))
}

// DelFDB implements Interface.
func (n *Netlink) DelFDB(dev string, e FDBEntry) error {
	kn, err := n.fdb(dev, e)
	if err != nil {
		return err
	}
	if err := n.h.NeighDel(kn); err != nil && !errors.Is(err, unix.ENOENT) {
		return n.forget(err)
	}
	return nil
}

// ListNeighbors implements Interface.
func (n *Netlink) ListNeighbors(dev string) ([]Neighbor, error) {
	idx, err := n.ifindex(dev)
	if err != nil {
		return nil, err
	}
	var out []Neighbor
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		ns, err := n.h.NeighList(idx, family)
		if err != nil {
			return nil, n.forget(err)
		}
		for _, e := range ns {
			ip, ok := netip.AddrFromSlice(e.IP)
			// Only permanent entries are ours; the kernel keeps its own
			// (e.g. NOARP multicast) entries on the device too.
			if e.LinkIndex != idx || !ok || e.State != netlink.NUD_PERMANENT {
				continue
			}
			out = append(out, Neighbor{IP: ip.Unmap(), MAC: e.HardwareAddr})
		}
	}
	return out, nil
}

func (n *Netlink) neigh(dev string, nb Neighbor) (*netlink.Neigh, error) {
	idx, err := n.ifindex(dev)
	if err != nil {
		return nil, err
	}
	family := netlink.FAMILY_V4
	if nb.IP.Is6() {
		family = netlink.FAMILY_V6
	}
	return &netlink.Neigh{
		LinkIndex:    idx,
		Family:       family,
		State:        netlink.NUD_PERMANENT,
		IP:           nb.IP.AsSlice(),
		HardwareAddr: nb.MAC,
	}, nil
}

// SetNeighbor implements Interface.
func (n *Netlink) SetNeighbor(dev string, nb Neighbor) error {
	kn, err := n.neigh(dev, nb)
	if err != nil {
		return err
	}
	return n.forget(n.h.NeighSet(kn))
}

// DelNeighbor implements Interface.
func (n *Netlink) DelNeighbor(dev string, nb Neighbor) error {
	kn, err := n.neigh(dev, nb)
	if err != nil {
		return err
	}
	if err := n.h.NeighDel(kn); err != nil && !errors.Is(err, unix.ENOENT) {
		return n.forget(err)
	}
	return nil
}
