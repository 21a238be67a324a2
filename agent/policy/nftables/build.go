package nftables

import (
	"maps"

	"github.com/plexus-net/plexus/agent/policy"
)

// builder computes desired states, reusing what the previous build made:
// the pod maps are updated by the pods that changed, and a policy-set
// chain's rules and merged sets are built again only when one of its
// policies changed (policy.Compiler hands back the same *policy.Policy
// while the policy and the pods its selectors match do not change). A
// state's sets are never modified once built, so states share them;
// digests (see state.stamp) are kept per set and chain. Not safe for
// concurrent use.
type builder struct {
	// prevPods and prevChains are the last build's pods and, per pod
	// and direction, the policy-set chain it points to ("" if none).
	prevPods   []*policy.LocalPod
	prevChains [][2]string
	// spareChains is an array prevChains no longer uses.
	spareChains [][2]string
	// prevMaps are the last build's pod maps by name, with their digests.
	prevMaps map[string]*set
	// prevPolicies are the last build's policies, to tell which changed.
	prevPolicies map[policy.PolicyKey]*policy.Policy
	// setChains are the policy-set chains in use and the number of pod
	// directions pointing at each.
	setChains map[string]*setChainEntry
	// chainNames are setChains' names, sorted; nil when a chain came or
	// went since they were sorted.
	chainNames []string
	// gen counts builds; a merged set a build uses is marked with it.
	gen uint64
	// keys is mergedSet's scratch.
	keys map[string]struct{}
	// text caches pod addresses' text for the merged sets' elements.
	text addrText
	// merged are the merged sets built so far by name, with the
	// policies they were built from.
	merged map[string]*mergedEntry
	// ids caches the policies' rule identities for termIDs.
	ids idCache
	// owners counts the pods whose element has each key; shared counts
	// the keys with more than one.
	owners map[ownerKey]int
	shared int
	// size is the last build's number of sets.
	size struct{ sets int }
	// last is the last build's state (see build: its chains and
	// counters may be the next one's), and lastNames the chainNames it
	// was built with.
	last      *state
	lastNames []string
}

// setChainEntry is one policy-set chain: what it is for, and what was
// built for it from deps (the chain's policies as they were then).
type setChainEntry struct {
	dir   policy.Direction
	keys  []policy.PolicyKey
	named []namedRef
	users int

	deps  []*policy.Policy
	names chainSets // its merged sets (without family) the rules name
	rules []string
	sets  []string // merged sets it looks up (per family)
	sum   digest   // of its rules and counters
	// counters are its allow and drop counters' names.
	counters [2]string
}

type mergedEntry struct {
	set  *set
	deps []*policy.Policy
	// terms are what an exact set was built from (nil for range sets),
	// for patchExact.
	terms []term
	used  uint64 // the last build that used it (builder.gen)
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
	}
	var sum digest
	sum.add(layoutVersion)
	for _, f := range fams {
		s.addSet(f.name(setNodeIPs), &set{typ: f.addr, elements: map[string]string{}})
	}
	for _, a := range m.NodeIPs {
		s.element(famOf(a).name(setNodeIPs), []string{a.String()}, "")
	}
	changed := map[policy.PolicyKey]bool{}
	for k, p := range m.Policies {
		if b.prevPolicies[k] != p {
			changed[k] = true
		}
	}
	for k := range b.prevPolicies {
		if m.Policies[k] == nil {
			changed[k] = true
		}
	}
	b.prevPolicies = m.Policies
	b.buildPods(s, m, changed)
	b.gen++
	if b.chainNames == nil {
		b.chainNames = sortedKeys(b.setChains)
	}
	names := b.chainNames
	// The last build's chains and counters are this one's when every
	// chain is the same with the same rules (a pod or a peer changed):
	// states share them, as they never change once built.
	same := b.last != nil && len(names) == len(b.last.chains)
	for _, name := range names {
		e := b.setChains[name]
		if !e.current(m) {
			b.fill(name, e, m)
		}
		if same {
			rules, ok := b.last.chains[name]
			same = ok && equalRules(rules, e.rules)
		}
		for _, n := range e.sets {
			me := b.merged[n]
			s.sets[n] = me.set
			me.used = b.gen
		}
		sum.plus(e.sum)
	}
	switch {
	case same:
		s.chains, s.counters, s.order, s.chainsID = b.last.chains, b.last.counters, b.last.order, b.last.chainsID
	case b.last != nil && sameSlice(names, b.lastNames):
		// The last build's chains, some with other rules (a policy's
		// ports changed): a chain's counters and place in the order
		// depend on its name alone, so they are the last build's.
		s.chainsID = new(int)
		s.counters, s.order = b.last.counters, b.last.order
		s.chains = maps.Clone(b.last.chains)
		for _, name := range names {
			s.chains[name] = b.setChains[name].rules
		}
	default:
		s.chainsID = new(int)
		s.chains = make(map[string][]string, len(names))
		s.counters = make(map[string]counterID, 2*len(names))
		for _, name := range names {
			e := b.setChains[name]
			s.addChain(name, e.rules)
			for i, v := range verdicts {
				s.counters[e.counters[i]] = counterID{policies: e.keys, direction: e.dir, verdict: v}
			}
		}
	}
	b.last, b.lastNames = s, names
	b.ids.keep(m)
	for n, me := range b.merged {
		if me.used != b.gen {
			delete(b.merged, n)
		}
	}
	for _, x := range s.sets {
		sum.plus(x.digest())
	}
	s.addSet(setStamp, &set{typ: "ipv6_addr"})
	s.element(setStamp, []string{sum.addr().String()}, "")
	b.size.sets = len(s.sets)
	return s
}

// sameSlice reports whether a and b are the same slice (not merely equal).
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// verdicts are a policy-set chain's counters, in setChainEntry.counters'
// order.
var verdicts = [2]string{"allow", "drop"}

// current reports whether e was built from m's policies.
func (e *setChainEntry) current(m *policy.Model) bool {
	return e.deps != nil && samePolicies(e.keys, e.deps, m)
}

func samePolicies(keys []policy.PolicyKey, deps []*policy.Policy, m *policy.Model) bool {
	for i, k := range keys {
		if m.Policies[k] != deps[i] {
			return false
		}
	}
	return true
}

// fill builds e's rules and merged sets from m, taking merged sets
// already built from the same policies.
func (b *builder) fill(name string, e *setChainEntry, m *policy.Model) {
	old := e.deps
	e.deps = make([]*policy.Policy, len(e.keys))
	for i, k := range e.keys {
		e.deps[i] = m.Policies[k]
	}
	names := e.names
	if e.rules == nil || !b.ids.sameSpecs(e.dir, old, e.deps) {
		names = b.setNames(e)
	}
	if e.rules != nil && names == e.names && b.setsCurrent(e.sets, m) {
		// The same sets, already built from m's policies (a pod that
		// is a peer of hundreds of chains' policies changes a few
		// sets they share): nothing to build.
		return
	}
	e.sets = e.sets[:0]
	for _, f := range fams {
		var anyTerms, portTerms []term
		summed := false
		terms := func() {
			if !summed {
				anyTerms, portTerms = chainTerms(e.dir, e.deps, e.named, f)
				summed = true
			}
		}
		for _, kind := range []struct {
			stem, typ string
			interval  bool
			exact     exactKind
			terms     func() []term
			elements  func() []string
		}{
			{names.anyPods, f.addr, false, exactAny, func() []term { terms(); return anyTerms }, func() []string { terms(); return exactAnyElements(anyTerms) }},
			{names.portsPods, portsSetType(f), false, exactPorts, func() []term { terms(); return portTerms }, func() []string { terms(); return b.text.exactPortElements(portTerms) }},
			{names.anyRanges, anySetType(f), true, notExact, nil, func() []string { terms(); return rangeAnyElements(anyTerms, f) }},
			{names.portsRanges, portsSetType(f), true, notExact, nil, func() []string { terms(); return rangePortElements(portTerms, f) }},
		} {
			if kind.stem == "" {
				continue
			}
			n := f.name(kind.stem)
			e.sets = append(e.sets, n)
			me := b.merged[n]
			if me != nil && depsCurrent(me.deps, m) {
				continue
			}
			next := &mergedEntry{deps: e.deps}
			if kind.exact != notExact {
				next.terms = kind.terms()
			}
			if me != nil && me.terms != nil {
				next.set = b.patchExact(n, kind.typ, kind.exact, me.set, me.terms, next.terms)
			}
			if next.set == nil {
				var prev *set
				if me != nil {
					prev = me.set
				}
				next.set = b.mergedSet(n, kind.typ, kind.interval, kind.elements(), prev)
			}
			b.merged[n] = next
		}
	}
	if e.rules != nil && names == e.names {
		// Only elements changed (a peer came or went): the rules name
		// the same sets.
		return
	}
	e.names = names
	e.rules = setChainRules(e.dir, name, names)
	e.sum = chainDigest(name, e.rules)
	for i, v := range verdicts {
		e.counters[i] = chainCounter(name, v)
		e.sum.add("counter", e.counters[i])
	}
}

// setNames names e's merged sets by its rules' identities (see termIDs,
// chainKinds).
func (b *builder) setNames(e *setChainEntry) chainSets {
	anyIDs, portIDs := termIDs(e.dir, e.deps, e.named, &b.ids)
	k := chainKinds(e.dir, e.deps, e.named)
	var names chainSets
	if k.anyPods {
		names.anyPods = mergedSetName(prefixAnyPods, anyIDs)
	}
	if k.anyRanges {
		names.anyRanges = mergedSetName(prefixAny, anyIDs)
	}
	if k.portsPods {
		names.portsPods = mergedSetName(prefixPortsPods, portIDs)
	}
	if k.portsRanges {
		names.portsRanges = mergedSetName(prefixPorts, portIDs)
	}
	return names
}

// mergedSet returns the merged set n holding keys. When old is the set of
// that name the last build made, the new one takes over old's elements
// and changes them in place, recording what it changed (see set.was), and
// its digest is old's updated by them: a pod coming changes a few of a
// set's thousands of elements, and a new map per set was most of what a
// pod added allocated. The keys are gathered in a scratch map the builder
// keeps.
func (b *builder) mergedSet(n, typ string, interval bool, keys []string, old *set) *set {
	x := &set{name: n, typ: typ, interval: interval}
	if old == nil || !old.sameShape(x) {
		x.elements = make(map[string]string, len(keys))
		for _, k := range keys {
			x.elements[k] = ""
		}
		return x
	}
	if b.keys == nil {
		b.keys = map[string]struct{}{}
	}
	want := b.keys
	clear(want)
	for _, k := range keys {
		want[k] = struct{}{}
	}
	x.elements, x.was = old.elements, map[string]prior{}
	x.sum, x.summed = old.digest(), true
	x.base, old.base, old.touched, old.was, old.lent = old, nil, nil, nil, true
	for k := range x.elements {
		if _, ok := want[k]; !ok {
			x.sum.minus(elementDigest(n, k, ""))
			x.remember(k)
			delete(x.elements, k)
		}
	}
	for k := range want {
		if _, ok := x.elements[k]; !ok {
			x.sum.plus(elementDigest(n, k, ""))
			x.remember(k)
			x.elements[k] = ""
		}
	}
	clear(want) // keeps no key alive
	return x
}

// setsCurrent reports whether every merged set in names was built from
// m's policies.
func (b *builder) setsCurrent(names []string, m *policy.Model) bool {
	for _, n := range names {
		if me := b.merged[n]; me == nil || !depsCurrent(me.deps, m) {
			return false
		}
	}
	return true
}

// depsCurrent reports whether every policy in deps is still m's.
func depsCurrent(deps []*policy.Policy, m *policy.Model) bool {
	for _, p := range deps {
		if p == nil || m.Policies[p.Key] != p {
			return false
		}
	}
	return true
}
