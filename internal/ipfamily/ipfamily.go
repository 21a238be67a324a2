// Package ipfamily holds the IP family and CIDR helpers that the agent and the operator share:
// which family an address or prefix belongs to, its name, the first address of a family, and
// one order of prefixes. It depends on nothing but net/netip.
package ipfamily

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
)

// Family is an IP family. The values are the IP versions (4 and 6); a byte, as models keep one per key.
type Family uint8

// The two families.
const (
	// IPv4 is the IPv4 family.
	IPv4 Family = 4
	// IPv6 is the IPv6 family.
	IPv6 Family = 6
)

// String is "IPv4" or "IPv6", the spelling of the Kubernetes API (Service.spec.ipFamilies).
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", int(f))
}

// Of returns a's family. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is IPv4: the kernel and
// the API treat it as the IPv4 address.
func Of(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// OfPrefix returns p's family.
func OfPrefix(p netip.Prefix) Family { return Of(p.Addr()) }

// First returns the first address of family f in addrs, unmapped; false when there is none.
func First(addrs []netip.Addr, f Family) (netip.Addr, bool) {
	for _, a := range addrs {
		if a = a.Unmap(); a.IsValid() && Of(a) == f {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// ComparePrefix orders prefixes by address (IPv4 before IPv6), then shorter first; a
// slices.SortFunc comparison.
func ComparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// Join lists prefixes for a message, in the order given: "10.0.0.0/8, fd00::/8".
func Join(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
