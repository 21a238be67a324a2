package nftables

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	gnft "github.com/google/nftables"
)

// intervalElements encodes the keys of a new interval set as nft 1.0.6
// sends them (learnt from `nft --debug=netlink`):
//
//   - a concatenation (pipapo) takes one element per range, its first
//     value as key and its last as key end (equal for a single value);
//   - a single field (rbtree) takes, in ascending order, a start element
//     per range and an interval-end element one past its last address;
//     nft leads with an interval end at the zero address when the first
//     range does not start there, and leaves the end out for a range
//     that reaches the family's last address.
func intervalElements(name string, x *set, keys []string) ([]gnft.SetElement, error) {
	if strings.Contains(x.typ, " . ") {
		out := make([]gnft.SetElement, 0, len(keys))
		for _, k := range keys {
			first, last := fieldBounds(k)
			key, err := encodeKey(first, x.typ)
			if err != nil {
				return nil, fmt.Errorf("element %q of %s: %w", k, name, err)
			}
			end, err := encodeKey(last, x.typ)
			if err != nil {
				return nil, fmt.Errorf("element %q of %s: %w", k, name, err)
			}
			out = append(out, gnft.SetElement{Key: key, KeyEnd: end})
		}
		return out, nil
	}
	type span struct{ from, to netip.Addr }
	spans := make([]span, 0, len(keys))
	for _, k := range keys {
		first, last, err := addrBounds(k)
		if err != nil {
			return nil, fmt.Errorf("element %q of %s: %w", k, name, err)
		}
		spans = append(spans, span{first, last})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	var out []gnft.SetElement
	if len(spans) > 0 && !spans[0].from.IsUnspecified() {
		zero := make([]byte, len(spans[0].from.AsSlice()))
		out = append(out, gnft.SetElement{Key: zero, IntervalEnd: true})
	}
	for _, s := range spans {
		out = append(out, gnft.SetElement{Key: s.from.AsSlice()})
		if after := s.to.Next(); after.IsValid() {
			out = append(out, gnft.SetElement{Key: after.AsSlice(), IntervalEnd: true})
		}
	}
	return out, nil
}

// fieldBounds turns a concatenation key with ranges ("tcp . 80-90") into
// its first and last values ("tcp . 80", "tcp . 90").
func fieldBounds(key string) (first, last string) {
	var firsts, lasts []string
	for _, f := range splitKey(key) {
		a, b, isRange := strings.Cut(f, "-")
		if !isRange {
			b = a
		}
		firsts, lasts = append(firsts, a), append(lasts, b)
	}
	return strings.Join(firsts, " . "), strings.Join(lasts, " . ")
}

// addrBounds parses "a", "a/len" or "a-b" (policy.AddrRange.String).
func addrBounds(key string) (first, last netip.Addr, err error) {
	if a, b, ok := strings.Cut(key, "-"); ok {
		first, err = netip.ParseAddr(a)
		if err == nil {
			last, err = netip.ParseAddr(b)
		}
		return first, last, err
	}
	if strings.Contains(key, "/") {
		p, err := netip.ParsePrefix(key)
		if err != nil {
			return first, last, err
		}
		p = p.Masked()
		last = p.Addr()
		bytes := last.AsSlice()
		for bit := p.Bits(); bit < len(bytes)*8; bit++ {
			bytes[bit/8] |= 0x80 >> (bit % 8)
		}
		last, _ = netip.AddrFromSlice(bytes)
		return p.Addr(), last, nil
	}
	first, err = netip.ParseAddr(key)
	return first, first, err
}
