package nftables

import (
	"encoding/binary"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"

	"github.com/plexus-net/plexus/agent/policy"
)

// builder computes desired states, reusing what the previous build made:
// a policy's chains, counters and sets are built once per compiled
// *policy.Policy (policy.Compiler hands back the same value while the
// policy and the pods its selectors match do not change), and the pod
// maps are updated by the pods that changed. A state's sets are never
// modified once built, so states share them; digests (see state.stamp)
// are kept per set and chain. Not safe for concurrent use.
type builder struct {
	fragments map[*policy.Policy]*fragment
	// prevPods and prevChains are the last build's pods and, per pod
	// and direction, the policy-set chain it points to ("" if none).
	prevPods   []policy.LocalPod
	prevChains [][2]string
	// prevMaps are the last build's pod maps by name, with their digests.
	prevMaps map[string]*set
	// setChains are the policy-set chains in use with their rules and
	// the number of pod directions pointing at each.
	setChains map[string]*setChainEntry
	// owners counts the pods whose element has each key; shared counts
	// the keys with more than one.
	owners map[ownerKey]int
	shared int
	// size is the last build's number of sets, chains and counters.
	size struct{ sets, chains, counters int }
}

// fragment is what one policy adds to a state.
type fragment struct {
	state *state
	sum   digest // of its chains and counters
}

type setChainEntry struct {
	rules []string
	users int
	sum   digest
}

func newBuilder() *builder { return &builder{} }

// desired returns the state that enforces m (static objects aside),
// built from scratch.
func desired(m *policy.Model) *state { return newBuilder().build(m) }

// build returns the state that enforces m.
func (b *builder) build(m *policy.Model) *state {
	s := newState()
	if prev := b.size; prev.sets > 0 {
		// Sized like the last build's: growing maps of thousands of
		// entries costs more than filling them.
		s.sets = make(map[string]*set, prev.sets)
		s.chains = make(map[string][]string, prev.chains)
		s.counters = make(map[string]counterID, prev.counters)
	}
	var sum digest
	sum.add(layoutVersion)
	for _, f := range fams {
		s.addSet(f.name(setNodeIPs), &set{typ: f.addr, elements: map[string]string{}})
	}
	for _, a := range m.NodeIPs {
		s.element(famOf(a).name(setNodeIPs), []string{a.String()}, "")
	}
	sorted := m.SortedPolicies()
	// Sets of the fragments kept hold for this model too: rules with
	// equal keys have equal sets, and a kept policy's did not change.
	// New fragments take them rather than build them again.
	built := make(map[string]*set, b.size.sets)
	for _, p := range sorted {
		if fr := b.fragments[p]; fr != nil {
			maps.Copy(built, fr.state.sets)
		}
	}
	fragments := make(map[*policy.Policy]*fragment, len(m.Policies))
	for _, p := range sorted {
		fr := b.fragments[p]
		if fr == nil {
			fr = newFragment(p, built)
			maps.Copy(built, fr.state.sets)
		}
		fragments[p] = fr
		for _, name := range fr.state.order {
			s.addChain(name, fr.state.chains[name])
		}
		maps.Copy(s.counters, fr.state.counters)
		for name, x := range fr.state.sets {
			if _, ok := s.sets[name]; !ok {
				// Rules with equal keys have equal sets: the first wins.
				s.sets[name] = x
			}
		}
		sum.plus(fr.sum)
	}
	b.fragments = fragments
	b.buildPods(s, m.Pods, &sum)
	for _, x := range s.sets {
		sum.plus(x.digest())
	}
	s.addSet(setStamp, &set{typ: "ipv6_addr"})
	s.element(setStamp, []string{sum.addr().String()}, "")
	b.size.sets, b.size.chains, b.size.counters = len(s.sets), len(s.chains), len(s.counters)
	return s
}

// newFragment builds the chains, counters and sets of p, taking the sets
// built holds rather than building them.
func newFragment(p *policy.Policy, built map[string]*set) *fragment {
	fs := newState()
	fs.shared = built
	for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
		if p.Isolates(d) {
			addPolicy(fs, p, d)
		}
	}
	fs.shared = nil
	fr := &fragment{state: fs}
	for name, rules := range fs.chains {
		fr.sum.plus(chainDigest(name, rules))
	}
	for name := range fs.counters {
		fr.sum.add("counter", name)
	}
	return fr
}

// buildPods adds the pod maps and policy-set chains for pods: the maps
// of the last build with the elements of changed pods replaced. Where two
// pods share an address, the later pod's element wins, as in a build from
// scratch; while any address is shared, the maps are built from scratch.
func (b *builder) buildPods(s *state, pods []policy.LocalPod, sum *digest) {
	if b.prevMaps == nil || !b.updatePods(pods) {
		b.prevPods, b.prevChains, b.prevMaps, b.setChains, b.owners, b.shared = nil, nil, nil, nil, nil, 0
		b.updatePods(pods)
	}
	for name, x := range b.prevMaps {
		s.sets[name] = x
	}
	for _, name := range sortedKeys(b.setChains) {
		e := b.setChains[name]
		s.addChain(name, e.rules)
		sum.plus(e.sum)
	}
}

// ownerKey is one pod map element's key: a direction and an address.
type ownerKey struct {
	direction int
	addr      netip.Addr
}

// updatePods turns the last build's pod maps into pods'. It returns false
// when an address is shared by two pods' elements (the result is then
// not to be used).
func (b *builder) updatePods(pods []policy.LocalPod) bool {
	if b.shared > 0 {
		// Which pod's element an address holds depends on every pod
		// sharing it: start over.
		return false
	}
	if b.prevMaps == nil {
		b.prevMaps = map[string]*set{}
		b.setChains = map[string]*setChainEntry{}
		b.owners = map[ownerKey]int{}
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
		x := &set{name: name, isMap: true, typ: old.typ, elements: maps.Clone(old.elements)}
		x.sum, x.summed = old.digest(), true
		// x records its changes from old (see setChanges); old's own
		// are of no use any more.
		x.base, old.base, old.touched = old, nil, nil
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
	drop := func(p policy.LocalPod, c [2]string) {
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
					delete(x.elements, k)
					x.touched = append(x.touched, k)
				}
				own(ownerKey{d, a}, -1)
			}
			if e := b.setChains[chain]; e != nil {
				e.users--
			}
		}
	}
	add := func(p policy.LocalPod) [2]string {
		var c [2]string
		for d, keys := range [][]policy.PolicyKey{p.Ingress, p.Egress} {
			if len(keys) == 0 {
				continue
			}
			dir := policy.Direction(d)
			c[d] = setChain(dir, keys)
			e := b.setChains[c[d]]
			if e == nil {
				e = &setChainEntry{rules: setChainRules(dir, keys)}
				e.sum = chainDigest(c[d], e.rules)
				b.setChains[c[d]] = e
			}
			e.users++
			for _, a := range p.IPs {
				name := famOf(a).name(dirStem(d))
				x := edit(name)
				k, v := a.String(), "goto "+c[d]
				if old, ok := x.elements[k]; ok {
					x.sum.minus(elementDigest(name, k, old))
				}
				x.elements[k] = v
				x.sum.plus(elementDigest(name, k, v))
				x.touched = append(x.touched, k)
				own(ownerKey{d, a}, +1)
			}
		}
		return c
	}
	// Merge the last build's pods with these (both sorted by
	// namespace/name): drop what left or changed, then add what came or
	// changed in order (a changed pod's address may move to another pod).
	chains := make([][2]string, len(pods))
	var fresh []int
	i, j := 0, 0
	for i < len(b.prevPods) || j < len(pods) {
		switch c := comparePodNames(b.prevPods, i, pods, j); {
		case c < 0:
			drop(b.prevPods[i], b.prevChains[i])
			i++
		case c > 0:
			fresh = append(fresh, j)
			j++
		default:
			if samePodEntry(&b.prevPods[i], &pods[j]) {
				chains[j] = b.prevChains[i]
			} else {
				drop(b.prevPods[i], b.prevChains[i])
				fresh = append(fresh, j)
			}
			i++
			j++
		}
	}
	incremental := b.prevPods != nil
	for _, j := range fresh {
		chains[j] = add(pods[j])
	}
	if incremental && b.shared > 0 {
		return false
	}
	for name, e := range b.setChains {
		if e.users <= 0 {
			delete(b.setChains, name)
		}
	}
	for name, x := range b.prevMaps {
		if next[name] == nil {
			next[name] = x
		}
	}
	b.prevPods, b.prevChains, b.prevMaps = pods, chains, next
	return true
}

func dirStem(d int) string {
	if policy.Direction(d) == policy.Egress {
		return mapEgressPods
	}
	return mapIngressPods
}

func comparePodNames(a []policy.LocalPod, i int, b []policy.LocalPod, j int) int {
	switch {
	case i >= len(a):
		return 1
	case j >= len(b):
		return -1
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

// samePodEntry reports whether a and b put the same elements in the maps.
func samePodEntry(a, b *policy.LocalPod) bool {
	return slices.Equal(a.IPs, b.IPs) && slices.Equal(a.Ingress, b.Ingress) && slices.Equal(a.Egress, b.Egress)
}

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
	if next.base != prev || prev == nil {
		return changedKeys(prev.elements, next.elements), changedKeys(next.elements, prev.elements)
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
