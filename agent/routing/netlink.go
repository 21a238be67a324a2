package routing

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Netlink is the kernel implementation of Interface for one network
// namespace (the host's in the agent, a throwaway one in tests). Routes go
// through its own batched rtnetlink client and use nexthop objects (see
// nexthops.go); links, addresses and neighbours through the netlink
// library. It is not safe for concurrent use.
type Netlink struct {
	h  *netlink.Handle
	rt *rtnl
	// index caches device name -> ifindex; dropped whenever a link is added
	// or deleted, or an operation fails (a device may have been recreated).
	index map[string]int
	nh    nexthops
	// inlineOnly makes new routes carry their next hop inline, as on a
	// kernel without nexthop objects (set by tests).
	inlineOnly bool
}

var _ Interface = &Netlink{}

// NewNetlink opens the kernel implementation for the network namespace ns;
// a closed handle (netns.None()) means the namespace of the caller.
func NewNetlink(ns netns.NsHandle) (*Netlink, error) {
	var h *netlink.Handle
	var err error
	if ns.IsOpen() {
		h, err = netlink.NewHandleAt(ns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	rt, err := newRTNL(ns)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &Netlink{h: h, rt: rt, index: map[string]int{}}, nil
}

// Close releases the sockets.
func (n *Netlink) Close() {
	n.h.Close()
	n.rt.close()
}

func (n *Netlink) ifindex(name string) (int, error) {
	if i, ok := n.index[name]; ok {
		return i, nil
	}
	l, err := n.h.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("find link %s: %w", name, err)
	}
	n.index[name] = l.Attrs().Index
	return l.Attrs().Index, nil
}

func (n *Netlink) forget(err error) error {
	if err != nil {
		clear(n.index)
	}
	return err
}

// GetVXLAN implements Interface.
func (n *Netlink) GetVXLAN(name string) (*VXLANDevice, error) {
	l, err := n.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, err
	}
	vx, ok := l.(*netlink.Vxlan)
	if !ok {
		return nil, fmt.Errorf("link %s is a %s device, not VXLAN: it was not made by Plexus", name, l.Type())
	}
	d := &VXLANDevice{
		Name: name,
		VNI:  uint32(vx.VxlanId),
		Port: uint16(vx.Port),
		MTU:  vx.MTU,
		MAC:  vx.HardwareAddr,
		Up:   vx.Flags&net.FlagUp != 0,
	}
	if a, ok := netip.AddrFromSlice(vx.SrcAddr); ok {
		d.Local = a.Unmap()
	}
	if vx.VtepDevIndex != 0 {
		if ul, err := n.h.LinkByIndex(vx.VtepDevIndex); err == nil {
			d.Uplink = ul.Attrs().Name
		}
	}
	return d, nil
}

// AddVXLAN implements Interface.
func (n *Netlink) AddVXLAN(d VXLANDevice) error {
	clear(n.index)
	n.nh.loaded = false
	uplink, err := n.ifindex(d.Uplink)
	if err != nil {
		return err
	}
	vx := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: d.Name, MTU: d.MTU, HardwareAddr: d.MAC},
		VxlanId:      int(d.VNI),
		Port:         int(d.Port),
		SrcAddr:      d.Local.AsSlice(),
		VtepDevIndex: uplink,
		// No learning: every remote is programmed from the peer list, and a
		// learnt entry could redirect pod traffic to whoever sends first.
		Learning: false,
	}
	if err := n.h.LinkAdd(vx); err != nil {
		return err
	}
	if d.Up {
		return n.forget(n.h.LinkSetUp(vx))
	}
	return nil
}

// UpdateVXLAN implements Interface.
func (n *Netlink) UpdateVXLAN(d VXLANDevice) error {
	l, err := n.h.LinkByName(d.Name)
	if err != nil {
		return err
	}
	if l.Attrs().MTU != d.MTU {
		if err := n.h.LinkSetMTU(l, d.MTU); err != nil {
			return err
		}
	}
	if d.Up {
		return n.h.LinkSetUp(l)
	}
	return n.h.LinkSetDown(l)
}

// DelLink implements Interface. The kernel drops the nexthop objects and
// routes through the link with it.
func (n *Netlink) DelLink(name string) error {
	clear(n.index)
	n.nh.loaded = false
	l, err := n.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	return n.h.LinkDel(l)
}
