package policy

import (
	mathbits "math/bits"
	"net/netip"
	"slices"
	"strings"
)

// AddrRange is the addresses From..To inclusive, both of one family.
type AddrRange struct {
	From, To netip.Addr
}

// String returns "a", "a/len" when the range is a prefix, or "a-b" (the
// forms nft accepts in an interval set).
func (r AddrRange) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// Prefix returns the range as a prefix if it is exactly one: the prefix
// of the bits From and To share.
func (r AddrRange) Prefix() (netip.Prefix, bool) {
	a, b := r.From.AsSlice(), r.To.AsSlice()
	bits := 0
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			bits += mathbits.LeadingZeros8(x)
			break
		}
		bits += 8
	}
	p := netip.PrefixFrom(r.From, bits)
	if p.Masked().Addr() == r.From && lastAddr(p) == r.To {
		return p, true
	}
	return netip.Prefix{}, false
}

// rangeOf returns the addresses of prefix p.
func rangeOf(p netip.Prefix) AddrRange {
	p = p.Masked()
	return AddrRange{From: p.Addr(), To: lastAddr(p)}
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// AddrSet is a set of addresses of both families kept as sorted, disjoint,
// non-adjacent ranges (IPv4 before IPv6). The zero value is empty.
type AddrSet struct {
	ranges []AddrRange
}

// Ranges returns the set's ranges, sorted.
func (s AddrSet) Ranges() []AddrRange { return s.ranges }

// Family returns the ranges of one family (is6: IPv6).
func (s AddrSet) Family(is6 bool) []AddrRange {
	var out []AddrRange
	for _, r := range s.ranges {
		if r.From.Is6() == is6 {
			out = append(out, r)
		}
	}
	return out
}

// Empty reports whether the set holds no address.
func (s AddrSet) Empty() bool { return len(s.ranges) == 0 }

// Contains reports whether a is in the set.
func (s AddrSet) Contains(a netip.Addr) bool {
	a = a.Unmap()
	i, _ := slices.BinarySearchFunc(s.ranges, a, func(r AddrRange, a netip.Addr) int {
		switch {
		case r.To.Less(a):
			return -1
		case a.Less(r.From):
			return 1
		}
		return 0
	})
	return i < len(s.ranges) && !a.Less(s.ranges[i].From) && !s.ranges[i].To.Less(a)
}

// String lists the ranges, comma separated.
func (s AddrSet) String() string {
	parts := make([]string, len(s.ranges))
	for i, r := range s.ranges {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

// NewAddrSet returns the union of rs, normalised (a backend merges the
// peers of several rules with it).
func NewAddrSet(rs []AddrRange) AddrSet { return newAddrSet(rs) }

// newAddrSet returns the union of rs, normalised.
func newAddrSet(rs []AddrRange) AddrSet {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b AddrRange) int { return a.From.Compare(b.From) })
	var out []AddrRange
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].From.Is6() == r.From.Is6() && touches(out[n-1].To, r.From) {
			// Overlapping or adjacent.
			if out[n-1].To.Less(r.To) {
				out[n-1].To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return AddrSet{ranges: out}
}

// touches reports whether a range ending at to overlaps or adjoins one
// starting at from (from is not below the first range's start).
func touches(to, from netip.Addr) bool {
	next := to.Next()
	// The family's last address has no next: everything after it touches.
	return !next.IsValid() || !next.Less(from)
}

// subtractRanges returns r less every range in cut.
func subtractRanges(r AddrRange, cut []AddrRange) []AddrRange {
	cur := []AddrRange{r}
	for _, c := range cut {
		var next []AddrRange
		for _, x := range cur {
			if c.From.Is6() != x.From.Is6() || c.To.Less(x.From) || x.To.Less(c.From) {
				next = append(next, x)
				continue
			}
			if x.From.Less(c.From) {
				next = append(next, AddrRange{From: x.From, To: c.From.Prev()})
			}
			if c.To.Less(x.To) {
				next = append(next, AddrRange{From: c.To.Next(), To: x.To})
			}
		}
		cur = next
	}
	return cur
}
