package cni

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dumpAttempts bounds retries of a netlink dump. With 20 pods being set up at once the link and
// route tables change during a dump; the kernel then flags it NLM_F_DUMP_INTR and the netlink
// library returns ErrDumpInterrupted with possibly inconsistent data, so the dump is repeated.
const dumpAttempts = 10

// retryDump runs a netlink dump until it completes without interruption (or attempts run out).
func retryDump[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpAttempts {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// isNotFound reports whether err means "no such link" (a lookup by name reports
// LinkNotFoundError, an operation on a link deleted meanwhile ENODEV).
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// hostPrefix returns ip as a single-address net.IPNet (/32 or /128).
func hostPrefix(ip netip.Addr) *net.IPNet {
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())}
}

// defaultDst returns the default-route destination (0.0.0.0/0 or ::/0) of ip's family.
func defaultDst(ip netip.Addr) *net.IPNet {
	if ip.Is4() {
		return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
}

// netlinkFamily returns netlink.FAMILY_V4 or FAMILY_V6 for ip.
func netlinkFamily(ip netip.Addr) int {
	if ip.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
