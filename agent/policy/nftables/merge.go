package nftables

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/plexus-net/plexus/agent/policy"
)

// A policy-set chain decides with at most four lookups per family,
// whatever the number of policies isolating its pods: its sets hold the
// union, over those policies' rules, of peers × ports, computed here.
// Single pod addresses and ranges go into different sets, because the
// kernel's interval concatenations (pipapo) cost time in their size to
// change: deleting one element rewrites the set's lookup tables, ≈5 ms at
// 2,000 elements, and a pod is a peer of many chains. So:
//
//   - the exact any-port set (`addr`, a hash) holds the pod peers of the
//     rules without ports;
//   - the exact ports set (`addr . inet_proto . inet_service`, a hash)
//     holds pod peers × single ports: numbered ports, ingress named ports
//     resolved for the chain's pods (pods whose named ports resolve
//     differently get different chains), and egress named ports resolved
//     per peer pod;
//   - the range any-port set (`addr . inet_proto`, interval, protocol
//     0-255) holds the ipBlocks (less their excepts) and "every peer" of
//     the rules without ports: every protocol, ICMP included, is matched
//     without reading a transport header;
//   - the range ports set (`addr . inet_proto . inet_service`, interval)
//     holds those ranges × (protocol, port range), and pod peers × port
//     ranges (endPort, protocol-only ports: 0-65535).
//
// Which of the four a chain has depends on its rules' specs only (see
// chainKinds), never on the pods they select, so pods coming and going
// change elements only. Pod peers of ported rules change only the range
// ports set when the rule has port ranges; in the common case (single
// ports) a pod changes hash elements alone.
//
// Interval concatenations refuse elements that overlap: their elements
// are made disjoint here. Ports are cut into atoms at every rule's
// boundaries, each atom gets the union of the peers of the rules covering
// it (ipBlock ranges merged; pod addresses left out where a range holds
// them), and neighbouring atoms with equal peers are joined again. Pod
// addresses stay single elements, never joined into ranges, so a pod
// coming or going adds or deletes its own elements and touches no other.

// peers is a union of address ranges and single addresses of one family.
type peers struct {
	all    bool
	ranges []policy.AddrRange
	points []netip.Addr
}

// term is one rule's contribution: peers × ports (no ports: any port).
type term struct {
	peers peers
	ports []policy.PortRange
}

// kinds says which of a chain's four merged sets exist (see chainKinds).
type kinds struct {
	anyPods, anyRanges, portsPods, portsRanges bool
}

// chainKinds returns which merged sets a chain's rules feed, from their
// specs (peer kinds, ports, named ports) and the chain's resolved ingress
// named ports: what the chain's rules look up must not depend on which
// pods exist.
func chainKinds(d policy.Direction, pols []*policy.Policy, named []namedRef) kinds {
	var k kinds
	for pi, p := range pols {
		if p == nil {
			continue
		}
		for ri := range p.Rules(d) {
			r := &p.Rules(d)[ri]
			pods := r.HasPodPeers && !r.AnyPeer
			blocks := r.AnyPeer || r.HasBlockPeers
			if r.AnyPort {
				k.anyPods = k.anyPods || pods
				k.anyRanges = k.anyRanges || blocks
				continue
			}
			single, ranged := false, false
			for _, pr := range r.Ports {
				single = single || pr.First == pr.Last
				ranged = ranged || pr.First != pr.Last
			}
			for _, n := range named {
				if n.policy == pi && n.rule == r.Index {
					single = true
				}
			}
			k.portsPods = k.portsPods || (pods && single)
			k.portsRanges = k.portsRanges || (blocks && (single || ranged)) || (pods && ranged)
			if d == policy.Egress && r.HasNamedPorts {
				// Resolved per peer pod: pod addresses × single ports.
				k.portsPods = true
			}
		}
	}
	return k
}

// namedRef is one named port of an ingress rule resolved for a chain's
// pods: the rule (its policy's position in the chain's keys and its
// index), the family and the port.
type namedRef struct {
	policy, rule int
	is6          bool
	port         policy.PortRange
}

func (n namedRef) String() string {
	return fmt.Sprintf("%d/%d/%t/%s", n.policy, n.rule, n.is6, n.port)
}

// chainTerms returns the any-port and port terms of a chain's policies
// for family f.
func chainTerms(d policy.Direction, pols []*policy.Policy, named []namedRef, f fam) (anyPort, ports []term) {
	egressNamed := map[policy.PortRange][]netip.Addr{}
	for pi, p := range pols {
		if p == nil {
			continue
		}
		for ri := range p.Rules(d) {
			r := &p.Rules(d)[ri]
			pe := rulePeers(r, f)
			if r.AnyPort {
				anyPort = append(anyPort, term{peers: pe})
				continue
			}
			pr := slices.Clone(r.Ports)
			for _, n := range named {
				if n.policy == pi && n.rule == r.Index && n.is6 == f.is6 {
					pr = append(pr, n.port)
				}
			}
			if len(pr) > 0 {
				ports = append(ports, term{peers: pe, ports: pr})
			}
			if d == policy.Egress {
				for _, ap := range r.NamedPorts {
					if famOf(ap.Addr) == f && r.MatchesPeer(ap.Addr) {
						k := policy.PortRange{Protocol: ap.Protocol, First: ap.Port, Last: ap.Port}
						egressNamed[k] = append(egressNamed[k], ap.Addr.Unmap())
					}
				}
			}
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(egressNamed), comparePortRanges) {
		ports = append(ports, term{peers: peers{points: egressNamed[k]}, ports: []policy.PortRange{k}})
	}
	return anyPort, ports
}

// rulePeers returns a rule's peers of family f.
func rulePeers(r *policy.Rule, f fam) peers {
	if r.AnyPeer {
		return peers{all: true}
	}
	var pe peers
	if r.HasBlockPeers {
		pe.ranges = r.PeerBlocks.Family(f.is6)
	}
	// PeerPods are sorted and unmapped, IPv4 before IPv6: the family's
	// part is a subslice (read only), not a copy.
	split, _ := slices.BinarySearchFunc(r.PeerPods, true, func(a netip.Addr, is6 bool) int {
		return cmp.Compare(b2i(a.Is6()), b2i(is6))
	})
	if f.is6 {
		pe.points = r.PeerPods[split:]
	} else {
		pe.points = r.PeerPods[:split]
	}
	return pe
}

// union returns the peers of ts, normalised: ranges merged, points sorted,
// unique and outside every range.
func union(ts []*term) peers {
	var rs []policy.AddrRange
	var pts []netip.Addr
	for _, t := range ts {
		if t.peers.all {
			return peers{all: true}
		}
		rs = append(rs, t.peers.ranges...)
		pts = append(pts, t.peers.points...)
	}
	merged := policy.NewAddrSet(rs)
	out := peers{ranges: merged.Ranges()}
	slices.SortFunc(pts, netip.Addr.Compare)
	for i, a := range pts {
		if (i > 0 && pts[i-1] == a) || merged.Contains(a) {
			continue
		}
		out.points = append(out.points, a)
	}
	return out
}

func (p peers) equal(o peers) bool {
	return p.all == o.all && slices.Equal(p.ranges, o.ranges) && slices.Equal(p.points, o.points)
}

// fields returns the peers as element fields of family f.
func (p peers) fields(f fam) []string {
	if p.all {
		last := "255.255.255.255"
		first := "0.0.0.0"
		if f.is6 {
			first, last = "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
		}
		return []string{first + "-" + last}
	}
	out := make([]string, 0, len(p.ranges)+len(p.points))
	for _, r := range p.ranges {
		if r.From == r.To {
			out = append(out, r.From.String())
		} else {
			out = append(out, r.From.String()+"-"+r.To.String())
		}
	}
	for _, a := range p.points {
		out = append(out, a.String())
	}
	return out
}

// exactAnyElements returns the exact any-port set's elements for ts: their
// pod addresses.
func exactAnyElements(ts []term) []string {
	var out []string
	for _, t := range ts {
		for _, a := range t.peers.points {
			out = append(out, a.String())
		}
	}
	return out
}

// rangeAnyElements returns the range any-port set's elements for ts: their
// ranges (merged) × every protocol.
func rangeAnyElements(ts []term, f fam) []string {
	var ptrs []*term
	for i := range ts {
		if r := ts[i].rangesOnly(); r != nil {
			ptrs = append(ptrs, r)
		}
	}
	if len(ptrs) == 0 {
		return nil
	}
	var out []string
	for _, a := range union(ptrs).fields(f) {
		out = append(out, a+" . 0-255")
	}
	return out
}

// exactPortElements returns the exact ports set's elements for ts: pod
// addresses × single ports.
func (c *addrText) exactPortElements(ts []term) []string {
	n := 0
	for _, t := range ts {
		for _, pr := range t.ports {
			if pr.First == pr.Last {
				n += len(t.peers.points)
			}
		}
	}
	out := make([]string, 0, n)
	for i := range ts {
		for _, a := range ts[i].peers.points {
			out = c.pointElements(out, exactPorts, &ts[i], a)
		}
	}
	return out
}

// addrText caches addresses' text, and that of exact ports set elements:
// a pod added refills sets of thousands of pod addresses, and formatting
// each element was a third of its allocations.
type addrText struct {
	m     map[netip.Addr]string
	ports map[portElement]string
}

// portElement is one element of an exact ports set.
type portElement struct {
	addr  netip.Addr
	proto policy.Protocol
	port  uint16
}

// maxAddrText bounds each of the caches; past it, it starts over.
const maxAddrText = 1 << 17

func (c *addrText) of(a netip.Addr) string {
	if s, ok := c.m[a]; ok {
		return s
	}
	if c.m == nil || len(c.m) >= maxAddrText {
		c.m = map[netip.Addr]string{}
	}
	s := a.String()
	c.m[a] = s
	return s
}

// rangePortElements returns the range ports set's elements for ts: their
// ranges × their ports, and their pod addresses × their port ranges.
func rangePortElements(ts []term, f fam) []string {
	var rs []term
	for i := range ts {
		if r := ts[i].rangesOnly(); r != nil {
			rs = append(rs, *r)
		}
		if len(ts[i].peers.points) == 0 {
			continue
		}
		var ranged []policy.PortRange
		for _, pr := range ts[i].ports {
			if pr.First != pr.Last {
				ranged = append(ranged, pr)
			}
		}
		if len(ranged) > 0 {
			rs = append(rs, term{peers: peers{points: ts[i].peers.points}, ports: ranged})
		}
	}
	return portElements(rs, f)
}

// rangesOnly returns t without its pod addresses; nil when nothing is
// left.
func (t *term) rangesOnly() *term {
	if !t.peers.all && len(t.peers.ranges) == 0 {
		return nil
	}
	return &term{peers: peers{all: t.peers.all, ranges: t.peers.ranges}, ports: t.ports}
}

// portElements returns the ports set's elements for ts: disjoint atoms of
// protocol and ports, each with the union of its covering terms' peers.
func portElements(ts []term, f fam) []string {
	type atom struct {
		proto       policy.Protocol
		first, last uint16
		peers       peers
	}
	// Cut points per protocol: every range's first port and the port
	// after its last (as int: 65536 for a range ending at 65535).
	cuts := map[policy.Protocol][]int{}
	for _, t := range ts {
		for _, pr := range t.ports {
			cuts[pr.Protocol] = append(cuts[pr.Protocol], int(pr.First), int(pr.Last)+1)
		}
	}
	var atoms []atom
	for _, proto := range slices.Sorted(maps.Keys(cuts)) {
		cs := cuts[proto]
		slices.Sort(cs)
		cs = slices.Compact(cs)
		for i := 0; i+1 < len(cs); i++ {
			first, last := uint16(cs[i]), uint16(cs[i+1]-1)
			var covering []*term
			for ti := range ts {
				for _, pr := range ts[ti].ports {
					if pr.Protocol == proto && pr.First <= first && last <= pr.Last {
						covering = append(covering, &ts[ti])
						break
					}
				}
			}
			if len(covering) == 0 {
				continue
			}
			pe := union(covering)
			if n := len(atoms); n > 0 && atoms[n-1].proto == proto && int(atoms[n-1].last)+1 == int(first) && atoms[n-1].peers.equal(pe) {
				atoms[n-1].last = last
				continue
			}
			atoms = append(atoms, atom{proto: proto, first: first, last: last, peers: pe})
		}
	}
	var out []string
	for _, a := range atoms {
		port := itoa(int(a.first))
		if a.last != a.first {
			port += "-" + itoa(int(a.last))
		}
		for _, p := range a.peers.fields(f) {
			out = append(out, p+" . "+a.proto.String()+" . "+port)
		}
	}
	return out
}

// termIDs returns what identifies a chain's any-port and port terms by
// their specs, family-independent: chains whose IDs are equal have equal
// sets and share them. Peers are named by policy.Rule.PodPeerKey and
// BlockPeerKey (the rule's own position when unreadable), egress named
// ports by NamedKey. ids caches each policy's part (see ruleIDsOf).
func termIDs(d policy.Direction, pols []*policy.Policy, named []namedRef, ids *idCache) (anyPort, ports []string) {
	for pi, p := range pols {
		if p == nil {
			continue
		}
		for _, r := range ids.of(p, d) {
			if r.anyPort {
				anyPort = append(anyPort, r.peer)
				continue
			}
			var resolved []string
			for _, n := range named {
				if n.policy == pi && n.rule == r.index {
					resolved = append(resolved, fmt.Sprintf("%t/%s", n.is6, n.port))
				}
			}
			if r.ports != "" || len(resolved) > 0 {
				ports = append(ports, r.peer+" × "+r.portList+" ["+strings.Join(resolved, " ")+"]")
			}
			if r.named != "" {
				ports = append(ports, r.named)
			}
		}
	}
	slices.Sort(anyPort)
	slices.Sort(ports)
	return slices.Compact(anyPort), slices.Compact(ports)
}

// ruleIDs is what termIDs reads of one rule, chain-independent.
type ruleIDs struct {
	index    int
	anyPort  bool
	peer     string // the peers' identity
	ports    string // non-empty when the rule has numbered ports
	portList string // the numbered ports as "[tcp/80 …]"
	named    string // egress named ports' term, "" without
	// What chainKinds reads: two rules with equal ruleIDs feed the same
	// sets.
	anyPeer, hasPods, hasBlocks, hasNamed bool
	singlePort, portRange                 bool
}

// sameSpecs reports whether the policies of a and b (one chain's, by
// position) have equal rule identities in direction d: the chain's set
// names and rules are then the same, only elements may differ.
func (c *idCache) sameSpecs(d policy.Direction, a, b []*policy.Policy) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		if a[i] == nil || b[i] == nil || !slices.Equal(c.of(a[i], d), c.of(b[i], d)) {
			return false
		}
	}
	return true
}

// idCache keeps each compiled policy's ruleIDs while the policy is
// unchanged (policy.Compiler hands back the same *policy.Policy): a peer
// coming refills hundreds of chains of the same few policies. A policy
// compiled again whose rules have the specs of its last version (its
// peers changed) takes that version's ruleIDs.
type idCache struct {
	byPolicy map[*policy.Policy]*[2][]ruleIDs
	// byKey is the policy of each key the cache holds.
	byKey map[policy.PolicyKey]*policy.Policy
}

// of returns p's ruleIDs in direction d.
func (c *idCache) of(p *policy.Policy, d policy.Direction) []ruleIDs {
	if c.byPolicy == nil {
		c.byPolicy = map[*policy.Policy]*[2][]ruleIDs{}
		c.byKey = map[policy.PolicyKey]*policy.Policy{}
	}
	e := c.byPolicy[p]
	if e == nil {
		if last := c.byKey[p.Key]; last != nil && sameRuleSpecs(last, p) {
			e = c.byPolicy[last]
		} else {
			e = &[2][]ruleIDs{ruleIDsOf(p, policy.Ingress), ruleIDsOf(p, policy.Egress)}
		}
		c.byPolicy[p] = e
		c.byKey[p.Key] = p
	}
	return e[d]
}

// keep forgets the policies m does not hold any more.
func (c *idCache) keep(m *policy.Model) {
	for p := range c.byPolicy {
		if m.Policies[p.Key] != p {
			delete(c.byPolicy, p)
		}
	}
	for k, p := range c.byKey {
		if m.Policies[k] != p {
			delete(c.byKey, k)
		}
	}
}

// sameRuleSpecs reports whether a and b, two versions of one policy, have
// rules that ruleIDsOf reads alike (everything but their peers' and named
// ports' resolutions).
func sameRuleSpecs(a, b *policy.Policy) bool {
	if a.Key != b.Key {
		return false
	}
	for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
		ra, rb := a.Rules(d), b.Rules(d)
		if len(ra) != len(rb) {
			return false
		}
		for i := range ra {
			x, y := &ra[i], &rb[i]
			if x.Index != y.Index || x.AnyPeer != y.AnyPeer || x.AnyPort != y.AnyPort ||
				x.HasPodPeers != y.HasPodPeers || x.HasBlockPeers != y.HasBlockPeers || x.HasNamedPorts != y.HasNamedPorts ||
				x.PodPeerKey != y.PodPeerKey || x.BlockPeerKey != y.BlockPeerKey || x.NamedKey != y.NamedKey ||
				!slices.Equal(x.Ports, y.Ports) {
				return false
			}
		}
	}
	return true
}

func ruleIDsOf(p *policy.Policy, d policy.Direction) []ruleIDs {
	rules := p.Rules(d)
	out := make([]ruleIDs, 0, len(rules))
	for ri := range rules {
		r := &rules[ri]
		own := fmt.Sprintf("%s/%s/%d", p.Key, d, r.Index)
		id := ruleIDs{index: r.Index, anyPort: r.AnyPort, peer: "any",
			anyPeer: r.AnyPeer, hasPods: r.HasPodPeers, hasBlocks: r.HasBlockPeers, hasNamed: r.HasNamedPorts}
		for _, pr := range r.Ports {
			id.singlePort = id.singlePort || pr.First == pr.Last
			id.portRange = id.portRange || pr.First != pr.Last
		}
		if !r.AnyPeer {
			id.peer = "pods:" + r.PodPeerKey + "|blocks:" + r.BlockPeerKey
			if r.PodPeerKey == "" && r.BlockPeerKey == "" {
				id.peer = "own:" + own
			}
		}
		if len(r.Ports) > 0 {
			id.ports = "y"
		}
		id.portList = fmt.Sprintf("%v", r.Ports)
		if d == policy.Egress && r.HasNamedPorts && !r.AnyPort {
			nk := r.NamedKey
			if nk == "" {
				nk = "own:" + own
			}
			id.named = fmt.Sprintf("%s × named:%s", id.peer, nk)
		}
		out = append(out, id)
	}
	return out
}

func comparePortRanges(a, b policy.PortRange) int {
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.First, b.First), cmp.Compare(a.Last, b.Last))
}

// joinIDs is the text a merged set's name is hashed from.
func joinIDs(kind string, ids []string) string { return kind + "\n" + strings.Join(ids, "\n") }
