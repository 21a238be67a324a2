package policy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// maxIncrementalChanges bounds the changed pods and namespaces one Compile
// checks every cached policy against; past it, recompiling every policy
// is as cheap.
const maxIncrementalChanges = 64

// Compiler compiles models incrementally: each Compile returns exactly the
// model Compile(in) would, reusing what the previous call compiled. A
// policy is compiled again only when it changed or when a changed pod or
// namespace can match one of its selectors; parsed pods are reused.
//
// Change detection: a Pod, Namespace or NetworkPolicy is unchanged when
// in holds the same pointer as in the previous call (an informer's cache
// hands back the same object until the API server sends a new version;
// objects must not be modified in place, which informers forbid anyway).
// A NetworkPolicy with the same UID and non-empty resourceVersion is
// unchanged too. A pod at a new pointer whose fields the model reads are
// unchanged counts as unchanged.
//
// Models returned by successive calls share unchanged *Policy values and
// address slices: treat a Model as read-only. A Compiler is not safe for
// concurrent use.
type Compiler struct {
	nodeName string
	// byObj and byName are the previous call's pods by object and by
	// namespace/name; generation marks the ones a call has seen.
	byObj      map[*corev1.Pod]*podEntry
	byName     map[podID]*podEntry
	generation uint64
	// sorted are the previous call's selectable pods, in index order.
	sorted []*pod
	// nsLabels are the previous call's namespace labels.
	nsLabels map[string]labels.Set
	// policies are the previous call's compiled policies.
	policies map[PolicyKey]*compiledPolicy
	// prev is the previous model, whose address index a call without pod
	// changes reuses.
	prev *Model
	// Scratch of assemble, kept between calls: the local pods, their
	// policy counts and lists, and the array the lists are cut from.
	local  []*pod
	counts [][2]int
	lists  [][2][]PolicyKey
	keys   []PolicyKey
}

type podID struct{ namespace, name string }

// podEntry is one input pod and its parse (nil: not selectable).
type podEntry struct {
	obj        *corev1.Pod
	id         podID
	parsed     *pod
	generation uint64
}

// NewCompiler returns a Compiler with nothing cached: its first Compile
// does all the work.
func NewCompiler() *Compiler { return &Compiler{} }

// Compile returns the model of in, identical to Compile(in).
func (c *Compiler) Compile(in Input) *Model {
	full := c.policies == nil || in.NodeName != c.nodeName
	if full {
		c.byObj, c.byName, c.sorted, c.nsLabels, c.prev = nil, nil, nil, nil, nil
	}
	pods, changed, ok := c.readPods(in)
	if !ok {
		// Two pods with one name: no bookkeeping by name this time.
		full = true
	}
	nsLabels := make(map[string]labels.Set, len(in.Namespaces))
	for _, ns := range in.Namespaces {
		nsLabels[ns.Name] = labels.Set(ns.Labels)
	}
	changedNS := c.changedNamespaces(nsLabels)
	if len(changed)+len(changedNS) > maxIncrementalChanges {
		full = true
	}
	ix := newIndex(pods, nsLabels)

	policies := slices.Clone(in.Policies)
	slices.SortFunc(policies, func(a, b *networkingv1.NetworkPolicy) int {
		return comparePolicyKeys(PolicyKey{a.Namespace, a.Name}, PolicyKey{b.Namespace, b.Name})
	})
	cache := &resolveCache{peers: map[string]*peerResolution{}, named: map[string][]AddrPort{}}
	// The previous call's table, updated in place: a new map of 1k
	// policies per sync was a tenth of what a sync allocated.
	compiled := c.policies
	if full || compiled == nil {
		compiled = make(map[PolicyKey]*compiledPolicy, len(policies))
	}
	order := make([]*compiledPolicy, 0, len(policies))
	for _, np := range policies {
		key := PolicyKey{np.Namespace, np.Name}
		cp := c.policies[key]
		switch {
		case full || cp == nil || !samePolicy(cp.np, np):
			cp = compilePolicy(ix, np, cache, cp)
		case cp.dependsOn(changed, changedNS, c.nsLabels, nsLabels):
			cp = recompilePeers(ix, np, cache, cp, changed)
		}
		compiled[key] = cp
		order = append(order, cp)
	}
	if len(compiled) > len(order) {
		// Policies were deleted: drop them from the table.
		current := make(map[PolicyKey]bool, len(order))
		for _, cp := range order {
			current[cp.key] = true
		}
		for k := range compiled {
			if !current[k] {
				delete(compiled, k)
			}
		}
	}

	m := c.assemble(in, ix, order, len(changed) == 0 && !full)
	c.nodeName, c.nsLabels, c.policies, c.prev = in.NodeName, nsLabels, compiled, m
	if !ok {
		// The next call starts over rather than trust a table by name.
		c.policies = nil
	}
	return m
}

// readPods parses in's pods, reusing the previous call's parse of the same
// object or of a new object with equal fields, and returns the selectable
// ones sorted by namespace/name with the versions that changed (old and
// new). ok is false when two pods share a name.
func (c *Compiler) readPods(in Input) (sorted []*pod, changed []*pod, ok bool) {
	if c.byObj == nil {
		c.byObj, c.byName = map[*corev1.Pod]*podEntry{}, map[podID]*podEntry{}
	}
	c.generation++
	gen := c.generation
	var gone, come []*pod
	ok = true
	seen := 0
	for _, p := range in.Pods {
		if e := c.byObj[p]; e != nil {
			if e.generation == gen {
				ok = false // the same pod twice
			}
			e.generation = gen
			seen++
			continue
		}
		id := podID{p.Namespace, p.Name}
		e := &podEntry{obj: p, id: id, parsed: parsePod(p, in.NodeName), generation: gen}
		old := c.byName[id]
		switch {
		case old != nil && old.generation == gen:
			ok = false // two objects, one name
		case old != nil && samePod(old.parsed, e.parsed):
			e.parsed = old.parsed
		default:
			if old != nil && old.parsed != nil {
				gone = append(gone, old.parsed)
			}
			if e.parsed != nil {
				come = append(come, e.parsed)
			}
		}
		if old != nil && old.generation != gen {
			delete(c.byObj, old.obj)
		}
		c.byObj[p] = e
		c.byName[id] = e
		seen++
	}
	if !ok {
		// No bookkeeping by name this time: every pod counts, and the
		// next call starts over.
		for _, p := range in.Pods {
			if x := parsePod(p, in.NodeName); x != nil {
				sorted = append(sorted, x)
			}
		}
		slices.SortFunc(sorted, comparePods)
		c.byObj, c.byName, c.sorted = nil, nil, nil
		return sorted, sorted, false
	}
	if seen < len(c.byObj) {
		for obj, e := range c.byObj {
			if e.generation == gen {
				continue
			}
			delete(c.byObj, obj)
			if c.byName[e.id] == e {
				delete(c.byName, e.id)
				if e.parsed != nil {
					gone = append(gone, e.parsed)
				}
			}
		}
	}
	changed = append(gone, come...)
	if len(changed) == 0 {
		return c.sorted, nil, true
	}
	// The previous order, less what left, plus what came inserted where
	// it sorts (a few changes: no sort of every pod).
	// Changed in place: nothing outside a Compile call holds c.sorted
	// (an index and its namespace slices live for one call), and a copy
	// of 10k pointers per changed pod was a tenth of a sync's garbage.
	sorted = c.sorted
	if len(gone) > 0 {
		left := make(map[*pod]bool, len(gone))
		for _, p := range gone {
			left[p] = true
		}
		sorted = slices.DeleteFunc(sorted, func(p *pod) bool { return left[p] })
	}
	if len(come) > maxIncrementalChanges {
		sorted = append(sorted, come...)
		slices.SortFunc(sorted, comparePods)
	} else {
		for _, p := range come {
			i, _ := slices.BinarySearchFunc(sorted, p, comparePods)
			sorted = slices.Insert(sorted, i, p)
		}
	}
	c.sorted = sorted
	return sorted, changed, true
}

// samePod reports whether two parses read the same for the model.
func samePod(a, b *pod) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.namespace == b.namespace && a.name == b.name && a.local == b.local &&
		labels.Equals(a.labels, b.labels) && slices.Equal(a.ips, b.ips) && slices.Equal(a.ports, b.ports)
}

// samePolicy reports whether b is a as the model reads it: the same
// object, or the same version of it.
func samePolicy(a, b *networkingv1.NetworkPolicy) bool {
	return a == b || (a.UID != "" && a.UID == b.UID && a.ResourceVersion != "" && a.ResourceVersion == b.ResourceVersion)
}

// changedNamespaces returns the namespaces whose labels differ from the
// previous call's (a missing Namespace reads as no labels).
func (c *Compiler) changedNamespaces(next map[string]labels.Set) []string {
	var out []string
	for name, l := range next {
		if !labels.Equals(c.nsLabels[name], l) {
			out = append(out, name)
		}
	}
	for name, l := range c.nsLabels {
		if _, ok := next[name]; !ok && len(l) > 0 {
			out = append(out, name)
		}
	}
	return out
}

// dependsOn reports whether a changed pod (old or new version) or
// namespace may change what cp compiled to: a pod its podSelector may
// select, a pod or namespace one of its peers may match, or any pod when
// its egress named ports resolve against every pod.
func (cp *compiledPolicy) dependsOn(pods []*pod, namespaces []string, oldNS, newNS map[string]labels.Set) bool {
	if len(pods) > 0 && cp.anyPod {
		return true
	}
	for _, p := range pods {
		if p.local && p.namespace == cp.np.Namespace && cp.podSel.Matches(p.labels) {
			return true
		}
		for _, peer := range cp.peers {
			if !peer.pods.Matches(p.labels) {
				continue
			}
			if peer.ns == nil {
				if p.namespace == cp.np.Namespace {
					return true
				}
				continue
			}
			if peer.ns.Matches(oldNS[p.namespace]) || peer.ns.Matches(newNS[p.namespace]) {
				return true
			}
		}
	}
	for _, ns := range namespaces {
		for _, peer := range cp.peers {
			if peer.ns != nil && (peer.ns.Matches(oldNS[ns]) || peer.ns.Matches(newNS[ns])) {
				return true
			}
		}
	}
	return false
}

// assemble builds the model from the compiled policies in policy order.
// samePods: the pods are the previous call's, so its address index holds.
//
// A local pod whose isolating policies are the previous call's keeps its
// *LocalPod (pod.published): at 10k pods, a copy of every pod per sync was
// a megabyte of garbage and made the backend compare every pod.
func (c *Compiler) assemble(in Input, ix *index, order []*compiledPolicy, samePods bool) *Model {
	m := &Model{
		NodeIPs:  sortedAddrs(in.NodeIPs),
		Policies: make(map[PolicyKey]*Policy, len(order)),
	}
	local := c.local[:0]
	for _, p := range ix.pods {
		if p.local {
			p.localIndex = len(local)
			local = append(local, p)
		}
	}
	// Every pod's Ingress and Egress lists are first cut from one
	// scratch array (a first pass counts them), kept between calls.
	counts := growClear(c.counts, len(local))
	total := 0
	for _, cp := range order {
		pol := cp.policy
		if pol == nil {
			continue
		}
		for _, p := range cp.selected {
			if pol.IsolatesIngress {
				counts[p.localIndex][Ingress]++
				total++
			}
			if pol.IsolatesEgress {
				counts[p.localIndex][Egress]++
				total++
			}
		}
	}
	keys := growClear(c.keys, total)
	c.counts, c.keys = counts, keys
	lists := growClear(c.lists, len(local))
	c.lists = lists
	cut := func(n int) []PolicyKey {
		if n == 0 {
			return nil // not isolated, as before any policy
		}
		out := keys[:0:n]
		keys = keys[n:]
		return out
	}
	for i := range local {
		lists[i] = [2][]PolicyKey{cut(counts[i][Ingress]), cut(counts[i][Egress])}
	}
	seen := map[string]bool{}
	for _, cp := range order {
		for _, ev := range cp.events {
			if ev.key != "" {
				if seen[ev.key] {
					continue
				}
				seen[ev.key] = true
			}
			m.Errors = append(m.Errors, ev.errs...)
		}
		pol := cp.policy
		if pol == nil {
			continue
		}
		m.Policies[pol.Key] = pol
		for _, p := range cp.selected {
			l := &lists[p.localIndex]
			if pol.IsolatesIngress {
				l[Ingress] = append(l[Ingress], pol.Key)
			}
			if pol.IsolatesEgress {
				l[Egress] = append(l[Egress], pol.Key)
			}
		}
	}
	m.Pods = c.publish(local, lists)
	clear(local[:cap(local)]) // the scratch keeps no parse alive
	c.local = local[:0]
	if samePods && c.prev != nil && len(c.prev.Pods) == len(m.Pods) {
		m.addrs = c.prev.addrs // the same pods at the same indices
	} else {
		m.addrs = &addrIndex{}
	}
	return m
}

// publish returns the local pods as LocalPods: a pod's previous one when
// its isolating policies are unchanged, else a new one (all new ones cut
// from one array, their lists from another).
func (c *Compiler) publish(local []*pod, lists [][2][]PolicyKey) []*LocalPod {
	out := make([]*LocalPod, len(local))
	fresh, freshKeys := 0, 0
	for i, p := range local {
		if lp := p.published; lp != nil && slices.Equal(lp.Ingress, lists[i][Ingress]) && slices.Equal(lp.Egress, lists[i][Egress]) {
			out[i] = lp
			continue
		}
		fresh++
		freshKeys += len(lists[i][Ingress]) + len(lists[i][Egress])
	}
	if fresh == 0 {
		return out
	}
	pods := make([]LocalPod, fresh)
	keys := make([]PolicyKey, freshKeys)
	copyKeys := func(l []PolicyKey) []PolicyKey {
		if len(l) == 0 {
			return nil
		}
		n := copy(keys, l)
		out := keys[:n:n]
		keys = keys[n:]
		return out
	}
	for i, p := range local {
		if out[i] != nil {
			continue
		}
		lp := &pods[0]
		pods = pods[1:]
		*lp = LocalPod{Namespace: p.namespace, Name: p.name, IPs: p.ips,
			Ingress: copyKeys(lists[i][Ingress]), Egress: copyKeys(lists[i][Egress])}
		p.published = lp
		out[i] = lp
	}
	return out
}

// growClear returns s resized to n zeroed elements, reusing its array
// when it is large enough.
func growClear[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// recompilePeers is compilePolicy(ix, prev.np's equal np, cache, prev) for
// a policy whose spec did not change but whose peers may have (changed
// pods or namespaces can match its peer selectors): when no changed pod
// can be one it selects, its selected pods, isolation, ports and ingress
// named ports (resolved for the selected pods) are prev's, and only its
// rules' peers (and egress named ports, which depend on them) are
// resolved again. A pod joining env=prod namespaces is a peer of every
// policy allowing from them: hundreds of policies, each compiled again
// from its spec before.
func recompilePeers(ix *index, np *networkingv1.NetworkPolicy, cache *resolveCache, prev *compiledPolicy, changed []*pod) *compiledPolicy {
	if len(prev.events) > 0 { // the caller checked samePolicy(prev.np, np)
		return compilePolicy(ix, np, cache, prev) // errors are reported as a full compile does
	}
	for _, p := range changed {
		if p.local && p.namespace == np.Namespace && prev.podSel.Matches(p.labels) {
			return compilePolicy(ix, np, cache, prev)
		}
	}
	cp := *prev
	cp.np = np
	if prev.policy == nil {
		return &cp // selects nothing, still
	}
	c := compiler{ix: ix, policy: np, selected: cp.selected, events: &cp.events, cache: cache, keys: cp.peerKeys}
	pol := *prev.policy
	pol.Ingress = c.repeer(Ingress, prev.policy.Ingress, func(i int) ([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort) {
		return np.Spec.Ingress[i].From, np.Spec.Ingress[i].Ports
	})
	pol.Egress = c.repeer(Egress, prev.policy.Egress, func(i int) ([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort) {
		return np.Spec.Egress[i].To, np.Spec.Egress[i].Ports
	})
	cp.policy = &pol
	return &cp
}

// repeer returns rules with their peers resolved against the compiler's
// index. A rule whose named ports depend on its peers (egress) or whose
// peers cannot be shared is compiled again from spec(i).
func (c *compiler) repeer(d Direction, rules []Rule, spec func(i int) ([]networkingv1.NetworkPolicyPeer, []networkingv1.NetworkPolicyPort)) []Rule {
	if rules == nil {
		return nil
	}
	out := make([]Rule, len(rules))
	for i, r := range rules {
		peers, ports := spec(r.Index)
		k, known := c.keys[ruleID{d, r.Index}]
		switch {
		case (d == Egress && r.HasNamedPorts) || (!r.AnyPeer && (!known || !k.readable)):
			out[i] = c.rule(d, r.Index, peers, ports)
		case r.AnyPeer:
			out[i] = r
		default:
			res := c.sharedPeers(d, r.Index, k.pods+"|"+k.blocks, peers)
			r.PeerPods, r.PeerBlocks = res.podAddrs, res.blocksSet
			out[i] = r
		}
	}
	return out
}
