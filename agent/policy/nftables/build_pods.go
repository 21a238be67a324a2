package nftables

// The pod maps: each local pod's addresses point, per direction, to the
// policy-set chain of the policies isolating it; the builder updates them
// by the pods that changed.

import (
	"net/netip"
	"slices"

	"github.com/plexus-net/plexus/agent/policy"
)

// buildPods adds the pod maps for m's pods: the maps of the last build
// with the elements of changed pods replaced, and the policy-set chains
// they point to. Where two pods share an address, the later pod's element
// wins, as in a build from scratch; while any address is shared, the maps
// are built from scratch.
func (b *builder) buildPods(s *state, m *policy.Model, changed map[policy.PolicyKey]bool) {
	if b.prevMaps == nil || !b.updatePods(m, changed) {
		b.prevPods, b.prevChains, b.prevMaps, b.setChains, b.owners, b.shared = nil, nil, nil, nil, nil, 0
		b.chainNames = nil
		b.updatePods(m, changed)
	}
	for name, x := range b.prevMaps {
		s.sets[name] = x
	}
}

// podChains returns the policy-set chain names of pod per direction ("" if
// not isolated), with what each is for.
func podChains(m *policy.Model, p *policy.LocalPod) (names [2]string, named [2][]namedRef) {
	for d, keys := range [][]policy.PolicyKey{p.Ingress, p.Egress} {
		if len(keys) == 0 {
			continue
		}
		dir := policy.Direction(d)
		if dir == policy.Ingress {
			named[d] = resolvedNamed(m, p)
		}
		names[d] = setChain(dir, keys, named[d])
	}
	return names, named
}

// resolvedNamed returns the named ports of the ingress rules isolating p,
// resolved for p (its addresses' entries in the rules' NamedPorts).
func resolvedNamed(m *policy.Model, p *policy.LocalPod) []namedRef {
	var out []namedRef
	visitNamed(m, p, func(n namedRef) bool { out = append(out, n); return true })
	return out
}

// visitNamed calls fn with each of resolvedNamed(m, p)'s entries in order
// until fn returns false.
func visitNamed(m *policy.Model, p *policy.LocalPod, fn func(namedRef) bool) {
	for pi, k := range p.Ingress {
		pol := m.Policies[k]
		if pol == nil {
			continue
		}
		for _, r := range pol.Ingress {
			if !r.HasNamedPorts {
				continue
			}
			for _, a := range p.IPs {
				i, _ := slices.BinarySearchFunc(r.NamedPorts, a, func(ap policy.AddrPort, a netip.Addr) int { return ap.Addr.Compare(a) })
				for ; i < len(r.NamedPorts) && r.NamedPorts[i].Addr == a; i++ {
					ap := r.NamedPorts[i]
					if !fn(namedRef{policy: pi, rule: r.Index, is6: famOf(a).is6,
						port: policy.PortRange{Protocol: ap.Protocol, First: ap.Port, Last: ap.Port}}) {
						return
					}
				}
			}
		}
	}
}

// sameNamed reports whether resolvedNamed(m, p) equals named, without
// building it: a policy that changed selects hundreds of pods that mostly
// keep their chain.
func sameNamed(m *policy.Model, p *policy.LocalPod, named []namedRef) bool {
	i := 0
	equal := true
	visitNamed(m, p, func(n namedRef) bool {
		if i >= len(named) || named[i] != n {
			equal = false
			return false
		}
		i++
		return true
	})
	return equal && i == len(named)
}

// PodChains names, for tests and tools, the policy-set chains a local pod's
// map elements point to, per direction ("" when not isolated).
func PodChains(m *policy.Model, p *policy.LocalPod) [2]string {
	names, _ := podChains(m, p)
	return names
}

// ownerKey is one pod map element's key: a direction and an address.
type ownerKey struct {
	direction int
	addr      netip.Addr
}

// updatePods turns the last build's pod maps into pods'. It returns false
// when an address is shared by two pods' elements (the result is then
// not to be used).
func (b *builder) updatePods(m *policy.Model, changed map[policy.PolicyKey]bool) bool {
	pods := m.Pods
	if b.shared > 0 {
		// Which pod's element an address holds depends on every pod
		// sharing it: start over.
		return false
	}
	if b.prevMaps == nil {
		b.prevMaps = map[string]*set{}
		b.setChains = map[string]*setChainEntry{}
		b.owners = map[ownerKey]int{}
		b.merged = map[string]*mergedEntry{}
		for _, f := range fams {
			for _, stem := range []string{mapIngressPods, mapEgressPods} {
				name := f.name(stem)
				b.prevMaps[name] = &set{name: name, isMap: true, typ: f.addr + " : verdict", elements: map[string]string{}}
			}
		}
	}
	next := make(map[string]*set, len(b.prevMaps))
	edit := func(name string) *set {
		if x := next[name]; x != nil {
			return x
		}
		old := b.prevMaps[name]
		// x takes over old's elements and changes them in place,
		// recording what it changed (a copy of a 10k-element map per
		// sync was most of what a pod change allocated): old is not to
		// be read any more, except through x (see set.lent).
		x := &set{name: name, isMap: true, typ: old.typ, elements: old.elements, was: map[string]prior{}}
		x.sum, x.summed = old.digest(), true
		x.base, old.base, old.touched, old.was, old.lent = old, nil, nil, nil, true
		next[name] = x
		return x
	}
	own := func(k ownerKey, delta int) {
		before := b.owners[k]
		b.owners[k] = before + delta
		switch {
		case before+delta == 0:
			delete(b.owners, k)
		case before <= 1 && before+delta > 1:
			b.shared++
		case before > 1 && before+delta <= 1:
			b.shared--
		}
	}
	drop := func(p *policy.LocalPod, c [2]string) {
		for d, chain := range c {
			if chain == "" {
				continue
			}
			for _, a := range p.IPs {
				name := famOf(a).name(dirStem(d))
				x := edit(name)
				k := a.String()
				if v, ok := x.elements[k]; ok && b.owners[ownerKey{d, a}] == 1 {
					x.sum.minus(elementDigest(name, k, v))
					x.remember(k)
					delete(x.elements, k)
				}
				own(ownerKey{d, a}, -1)
			}
			if e := b.setChains[chain]; e != nil {
				e.users--
			}
		}
	}
	add := func(p *policy.LocalPod, c [2]string, named [2][]namedRef) [2]string {
		for d, keys := range [][]policy.PolicyKey{p.Ingress, p.Egress} {
			if len(keys) == 0 {
				continue
			}
			e := b.setChains[c[d]]
			if e == nil {
				e = &setChainEntry{dir: policy.Direction(d), keys: keys, named: named[d]}
				b.setChains[c[d]] = e
				b.chainNames = nil
			}
			e.users++
			for _, a := range p.IPs {
				name := famOf(a).name(dirStem(d))
				x := edit(name)
				k, v := a.String(), "goto "+c[d]
				if old, ok := x.elements[k]; ok {
					x.sum.minus(elementDigest(name, k, old))
				}
				x.remember(k)
				x.elements[k] = v
				x.sum.plus(elementDigest(name, k, v))
				own(ownerKey{d, a}, +1)
			}
		}
		return c
	}
	// Merge the last build's pods with these (both sorted by
	// namespace/name): drop what left or changed, then add what came or
	// changed in order (a changed pod's address may move to another pod).
	// The chains of the build before last are no one's any more: their
	// array takes these (10k pods: 320 KB a sync otherwise).
	chains := b.spareChains
	if cap(chains) < len(pods) {
		chains = make([][2]string, len(pods))
	} else {
		chains = chains[:len(pods)]
		clear(chains)
	}
	var fresh []int
	var freshChains [][2]string
	var freshNamed [][2][]namedRef
	addFresh := func(j int) {
		c, n := podChains(m, pods[j])
		fresh, freshChains, freshNamed = append(fresh, j), append(freshChains, c), append(freshNamed, n)
	}
	i, j := 0, 0
	for i < len(b.prevPods) || j < len(pods) {
		switch c := comparePodNames(b.prevPods, i, pods, j); {
		case c < 0:
			drop(b.prevPods[i], b.prevChains[i])
			i++
		case c > 0:
			addFresh(j)
			j++
		default:
			same := samePodEntry(b.prevPods[i], pods[j])
			if same && anyChanged(pods[j].Ingress, changed) {
				// Its ingress named ports may resolve differently now;
				// its chain is named by them (and the same keys), so
				// equal ones keep it.
				e := b.setChains[b.prevChains[i][policy.Ingress]]
				if e == nil || !sameNamed(m, pods[j], e.named) {
					same = false
				}
			}
			if same {
				chains[j] = b.prevChains[i]
			} else {
				drop(b.prevPods[i], b.prevChains[i])
				addFresh(j)
			}
			i++
			j++
		}
	}
	incremental := b.prevPods != nil
	for i, j := range fresh {
		chains[j] = add(pods[j], freshChains[i], freshNamed[i])
	}
	if incremental && b.shared > 0 {
		// The last build's maps must hold what they held: the caller
		// starts over, and the last state is still diffed against.
		for _, x := range next {
			x.undo()
		}
		return false
	}
	for name, e := range b.setChains {
		if e.users <= 0 {
			delete(b.setChains, name)
			b.chainNames = nil
		}
	}
	for name, x := range b.prevMaps {
		if next[name] == nil {
			next[name] = x
		}
	}
	b.spareChains = b.prevChains
	b.prevPods, b.prevChains, b.prevMaps = pods, chains, next
	return true
}

func anyChanged(keys []policy.PolicyKey, changed map[policy.PolicyKey]bool) bool {
	for _, k := range keys {
		if changed[k] {
			return true
		}
	}
	return false
}

func dirStem(d int) string {
	if policy.Direction(d) == policy.Egress {
		return mapEgressPods
	}
	return mapIngressPods
}

func comparePodNames(a []*policy.LocalPod, i int, b []*policy.LocalPod, j int) int {
	switch {
	case i >= len(a):
		return 1
	case j >= len(b):
		return -1
	}
	if a[i] == b[j] {
		return 0 // shared between models: the same pod
	}
	if a[i].Namespace != b[j].Namespace {
		if a[i].Namespace < b[j].Namespace {
			return -1
		}
		return 1
	}
	switch {
	case a[i].Name < b[j].Name:
		return -1
	case a[i].Name > b[j].Name:
		return 1
	}
	return 0
}

// samePodEntry reports whether a and b put the same elements in the maps
// (policy.Compiler hands back the same *LocalPod for an unchanged pod).
func samePodEntry(a, b *policy.LocalPod) bool {
	return a == b || slices.Equal(a.IPs, b.IPs) && slices.Equal(a.Ingress, b.Ingress) && slices.Equal(a.Egress, b.Egress)
}
