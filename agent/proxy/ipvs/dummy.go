package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/plexus-net/plexus/internal/hostnet"
	"golang.org/x/sys/unix"
)

// DummyDevice is the dummy interface that carries Plexus's virtual IPs.
const DummyDevice = "plexus-ipvs0"

// DummyBinder is Binder on a netlink dummy device.
type DummyBinder struct {
	nl   *netlink.Handle
	name string
}

var _ Binder = &DummyBinder{}

// NewDummyBinder opens a route-netlink handle in ns (netns.None() for the
// caller's namespace; hostnet.RouteHandle says why route-netlink only) for
// the device called name (DummyDevice in the agent).
func NewDummyBinder(ns netns.NsHandle, name string) (*DummyBinder, error) {
	h, err := hostnet.RouteHandle(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle for %s: %w", name, err)
	}
	return &DummyBinder{nl: h, name: name}, nil
}

// Close releases the netlink handle.
func (b *DummyBinder) Close() { b.nl.Close() }

// link returns the device, or nil when there is none.
func (b *DummyBinder) link() (netlink.Link, error) {
	l, err := b.nl.LinkByName(b.name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find link %s: %w", b.name, err)
	}
	if l.Type() != "dummy" {
		return nil, fmt.Errorf("link %s is a %s device, not dummy: remove it or rename it", b.name, l.Type())
	}
	return l, nil
}

// EnsureDevice implements Binder. The device is set up: IPv4 local routes
// exist for addresses on a down device, but IPv6 ones only once it is up.
func (b *DummyBinder) EnsureDevice() error {
	l, err := b.link()
	if err != nil {
		return err
	}
	if l == nil {
		l = &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: b.name}}
		if err := b.nl.LinkAdd(l); err != nil {
			return fmt.Errorf("create dummy link %s: %w", b.name, err)
		}
	}
	if err := b.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", b.name, err)
	}
	return nil
}

// DeviceExists implements Binder.
func (b *DummyBinder) DeviceExists() (bool, error) {
	l, err := b.link()
	return l != nil, err
}

// DeleteDevice implements Binder. A link of that name that is not a dummy
// device is an error (link refuses it), never deleted.
func (b *DummyBinder) DeleteDevice() error {
	l, err := b.link()
	if err != nil || l == nil {
		return err
	}
	if err := b.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", b.name, err)
	}
	return nil
}

// ListBound implements Binder. The IPv6 link-local address the kernel
// gives every up device is not listed: it is not a virtual IP.
func (b *DummyBinder) ListBound() ([]netip.Addr, error) {
	l, err := b.link()
	if err != nil || l == nil {
		return nil, err
	}
	addrs, err := b.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", b.name, err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, ip.Unmap())
	}
	return out, nil
}

// Bind implements Binder.
func (b *DummyBinder) Bind(a netip.Addr) error {
	l, err := b.link()
	if err != nil {
		return err
	}
	if l == nil {
		return fmt.Errorf("bind %s: no link %s", a, b.name)
	}
	if err := b.nl.AddrAdd(l, hostAddr(a)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("bind %s to %s: %w", a, b.name, err)
	}
	return nil
}

// Unbind implements Binder.
func (b *DummyBinder) Unbind(a netip.Addr) error {
	l, err := b.link()
	if err != nil || l == nil {
		return err
	}
	err = b.nl.AddrDel(l, hostAddr(a))
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unbind %s from %s: %w", a, b.name, err)
	}
	return nil
}

// hostAddr is a as a host address; IPv6 skips duplicate address detection,
// which would keep it tentative (unusable) for a second.
func hostAddr(a netip.Addr) *netlink.Addr {
	n := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}
	if a.Is6() {
		n.Flags = unix.IFA_F_NODAD
	}
	return n
}
