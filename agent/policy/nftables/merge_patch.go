package nftables

import (
	"net/netip"
	"slices"

	"github.com/plexus-net/plexus/agent/policy"
)

// A pod that is a peer of many chains' rules (every pod of the env=prod
// namespaces, say) changes the exact sets those rules feed by one address
// each; rebuilding such a set means formatting and hashing its thousands
// of elements again. patchExact instead compares the terms the set was
// built from with the new ones, point by point (sorted addresses, no
// text), and formats and changes only the elements of the addresses that
// came or went.

// exactKind says how an exact (hash) merged set's elements are made from a
// term's points.
type exactKind int

const (
	// notExact: a range set, built from its terms as a whole.
	notExact exactKind = iota
	// exactAny: each point is an element (the exact any-port set).
	exactAny
	// exactPorts: each point × each single port of its term is an
	// element (the exact ports set).
	exactPorts
)

// pointElements appends the elements term t yields for address a.
func (c *addrText) pointElements(out []string, k exactKind, t *term, a netip.Addr) []string {
	if k == exactAny {
		return append(out, c.of(a))
	}
	// t.ports walked in place (no singlePorts slice): this runs per element of a full build.
	for _, pr := range t.ports {
		if pr.First == pr.Last {
			out = append(out, c.elementText(k, a, pr))
		}
	}
	return out
}

// elementText is the element of kind k for address a and port pr (pr unused for exactAny).
func (c *addrText) elementText(k exactKind, a netip.Addr, pr policy.PortRange) string {
	if k == exactAny {
		return c.of(a)
	}
	return c.portText(portElement{a, pr.Protocol, pr.First})
}

// portText returns an exact ports set element's text.
func (c *addrText) portText(k portElement) string {
	if text, ok := c.ports[k]; ok {
		return text
	}
	text := c.of(k.addr) + " . " + k.proto.String() + " . " + itoa(int(k.port))
	if c.ports == nil || len(c.ports) >= maxAddrText {
		c.ports = map[portElement]string{}
	}
	c.ports[k] = text
	return text
}

// yields reports whether any of ts makes the element of kind k for
// address a and port pr (pr is ignored for exactAny).
func yields(ts []term, k exactKind, a netip.Addr, pr policy.PortRange) bool {
	for i := range ts {
		t := &ts[i]
		if k == exactPorts && !slices.Contains(t.ports, pr) {
			continue
		}
		if _, found := slices.BinarySearchFunc(t.peers.points, a, netip.Addr.Compare); found {
			return true
		}
	}
	return false
}

// pointDiff returns the addresses of next that old lacks and those of old
// that next lacks; ok is false unless both are strictly increasing.
func pointDiff(old, next []netip.Addr) (come, gone []netip.Addr, ok bool) {
	if len(old) == len(next) && (len(old) == 0 || &old[0] == &next[0]) {
		return nil, nil, true // the same slice: shared by the models
	}
	i, j := 0, 0
	for i < len(old) || j < len(next) {
		switch {
		case i > 0 && i < len(old) && old[i-1].Compare(old[i]) >= 0,
			j > 0 && j < len(next) && next[j-1].Compare(next[j]) >= 0:
			return nil, nil, false
		case j == len(next) || (i < len(old) && old[i].Less(next[j])):
			gone = append(gone, old[i])
			i++
		case i == len(old) || next[j].Less(old[i]):
			come = append(come, next[j])
			j++
		default:
			i++
			j++
		}
	}
	return come, gone, true
}

// sameExceptPoints reports whether old and next are the same terms but for
// their points: an exact set built from old patches into next's.
func sameExceptPoints(old, next []term) bool {
	if len(old) != len(next) {
		return false
	}
	for i := range old {
		if !slices.Equal(old[i].ports, next[i].ports) {
			return false
		}
	}
	return true
}

// patchExact returns exact set n, of kind k, as next's terms make it, made
// from old (built from oldTerms) by changing the elements of the
// addresses that came or went, in place (see mergedSet for how a set
// takes over its predecessor's elements); nil when next differs from
// oldTerms in more than points, or old cannot be taken over.
func (b *builder) patchExact(n, typ string, k exactKind, old *set, oldTerms, next []term) *set {
	x := &set{name: n, typ: typ}
	if k == notExact || old == nil || old.lent || !old.sameShape(x) || !sameExceptPoints(oldTerms, next) {
		return nil
	}
	type change struct {
		t          *term
		come, gone []netip.Addr
	}
	var changes []change
	for i := range next {
		come, gone, ok := pointDiff(oldTerms[i].peers.points, next[i].peers.points)
		if !ok {
			return nil
		}
		if len(come)+len(gone) > 0 {
			changes = append(changes, change{&next[i], come, gone})
		}
	}
	x.elements, x.was = old.elements, map[string]prior{}
	x.sum, x.summed = old.digest(), true
	x.base, old.base, old.touched, old.was, old.lent = old, nil, nil, nil, true
	var texts []string
	for _, ch := range changes {
		for _, a := range ch.come {
			texts = b.text.pointElements(texts[:0], k, ch.t, a)
			for _, e := range texts {
				if _, in := x.elements[e]; !in {
					x.sum.plus(elementDigest(n, e, ""))
					x.remember(e)
					x.elements[e] = ""
				}
			}
		}
	}
	for _, ch := range changes {
		for _, a := range ch.gone {
			for _, pr := range singlePorts(k, ch.t) {
				if yields(next, k, a, pr) {
					continue // another term (or this one, on another port) keeps it
				}
				e := b.text.elementText(k, a, pr)
				if _, in := x.elements[e]; in {
					x.sum.minus(elementDigest(n, e, ""))
					x.remember(e)
					delete(x.elements, e)
				}
			}
		}
	}
	return x
}

// singlePorts returns the ports whose elements a point of t makes: its
// single ports for exactPorts, one placeholder for exactAny.
func singlePorts(k exactKind, t *term) []policy.PortRange {
	if k == exactAny {
		return []policy.PortRange{{}}
	}
	var out []policy.PortRange
	for _, pr := range t.ports {
		if pr.First == pr.Last {
			out = append(out, pr)
		}
	}
	return out
}
