package nftables

import (
	"encoding/binary"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"
)

// digest is an order-independent sum of per-item hashes (two 64-bit FNV
// variants): a state's digest is the sum of its items', so parts can be
// kept and combined, and an element's hash subtracted when it goes.
type digest struct{ lo, hi uint64 }

func (d *digest) add(parts ...string) { d.plus(hashItem(parts...)) }

func (d *digest) plus(o digest) { d.lo += o.lo; d.hi += o.hi }

func (d *digest) minus(o digest) { d.lo -= o.lo; d.hi -= o.hi }

// addr returns the digest as the IPv6 address the stamp set holds.
func (d digest) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], d.hi)
	binary.BigEndian.PutUint64(b[8:], d.lo)
	return netip.AddrFrom16(b)
}

func hashItem(parts ...string) digest {
	h1, h2 := fnv.New64a(), fnv.New64()
	for _, p := range parts {
		h1.Write([]byte(p))
		h1.Write([]byte{0})
		h2.Write([]byte(p))
		h2.Write([]byte{0})
	}
	return digest{lo: h1.Sum64(), hi: h2.Sum64()}
}

func chainDigest(name string, rules []string) digest {
	return hashItem(append([]string{"chain", name}, rules...)...)
}

func elementDigest(setName, key, value string) digest {
	return hashItem("element", setName, key, value)
}

// digest returns the set's digest (header and elements) under its name,
// computed once: a set is not modified after its state is built.
func (x *set) digest() digest {
	if !x.summed {
		x.sum = hashItem("set", x.name, x.typ, strconv.FormatBool(x.isMap), strconv.FormatBool(x.typeOf), strconv.FormatBool(x.interval))
		for k, v := range x.elements {
			x.sum.plus(elementDigest(x.name, k, v))
		}
		x.summed = true
	}
	return x.sum
}

// setChanges returns, sorted, the keys of prev that next lacks or maps to
// another value, and the keys of next that prev lacks or maps to another
// value. When next was made from prev by the builder, only the keys it
// touched are compared (a pod changed: 2 of 20k elements).
func setChanges(prev, next *set) (gone, come []string) {
	if prev != nil && prev.lent && next.base != prev {
		// The Enforcer diffs the last written state against the next
		// build only; anything else is a programming error.
		panic("nftables: diff from set " + prev.name + ", whose elements a later build took over")
	}
	if next.base != prev || prev == nil {
		return changedKeys(prev.elements, next.elements), changedKeys(next.elements, prev.elements)
	}
	if next.was != nil {
		// Changed in place: prev's elements are next's but for was.
		keys := slices.Sorted(maps.Keys(next.was))
		for _, k := range keys {
			p := next.was[k]
			nv, inNext := next.elements[k]
			if p.in && (!inNext || p.value != nv) {
				gone = append(gone, k)
			}
			if inNext && (!p.in || p.value != nv) {
				come = append(come, k)
			}
		}
		return gone, come
	}
	keys := slices.Clone(next.touched)
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		pv, inPrev := prev.elements[k]
		nv, inNext := next.elements[k]
		if inPrev && (!inNext || pv != nv) {
			gone = append(gone, k)
		}
		if inNext && (!inPrev || pv != nv) {
			come = append(come, k)
		}
	}
	return gone, come
}
