package nftables

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"
)

// priorityBeforeDNAT is dstnat (-100) - 10, as a number: nft 1.0.6
// accepts the name "dstnat" only with the nat type in some hooks.
const priorityBeforeDNAT knftables.BaseChainPriority = "-110"

// protocols are the L4 protocols a Service may use, as nft spells them.
var protocols = []string{"tcp", "udp", "sctp"}

// vipKey is the key expression of every frontend set and map of family f.
func vipKey(f fam) string {
	return f.ip + " daddr . meta l4proto . th dport"
}

// staticObjects returns the table and the objects whose number never
// depends on the Services: base chains, constant rules, the frontend sets
// and maps of both families. Order matters: a rule may only refer to a set
// or chain added before it.
func staticObjects() []knftables.Object {
	objs := []knftables.Object{
		&knftables.Table{Comment: knftables.PtrTo("Plexus service proxy")},
		baseChain(chainNatPrerouting, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority),
		baseChain(chainNatOutput, knftables.NATType, knftables.OutputHook, knftables.DNATPriority),
		baseChain(chainNatPostrouting, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority),
		// Before DNAT (dstnat - 10): a frontend without endpoints still has
		// its virtual destination here. Reject is allowed in prerouting on
		// the kernels we support, so traffic is refused before routing
		// (a ClusterIP has no route of its own).
		baseChain(chainFilterPrerouting, knftables.FilterType, knftables.PreroutingHook, priorityBeforeDNAT),
		baseChain(chainFilterOutput, knftables.FilterType, knftables.OutputHook, priorityBeforeDNAT),
		&knftables.Chain{Name: chainServices},
		&knftables.Chain{Name: chainNoEndpoints},
		&knftables.Chain{Name: chainReject},
		&knftables.Set{Name: setStamp, Type: "ipv6_addr"},
	}
	for _, f := range fams {
		objs = append(objs,
			&knftables.Map{Name: f.name(mapVIPs), TypeOf: vipKey(f) + " : verdict"},
			&knftables.Map{Name: f.name(mapNoEndpoints), TypeOf: vipKey(f) + " : verdict"},
			&knftables.Set{Name: f.name(setMasquerade), TypeOf: vipKey(f)},
			&knftables.Set{Name: f.name(setHairpin), Type: f.addr + " . " + f.addr},
		)
	}
	// Session affinity, IPv4 only: nft 1.0.6 aborts (register allocation
	// assertion in netlink_linearize.c) on any packet-path map update whose
	// key or value concatenates IPv6 addresses with more fields, so there
	// is no IPv6 affinity map; the feature table says so.
	objs = append(objs,
		// Declared with `type`, not `typeof`: nft 1.0.6 cannot express
		// `ct original proto-dst` inside a typeof concatenation (it
		// silently drops the field).
		&knftables.Map{
			Name:  famV4.name(mapAffinity),
			Type:  "ipv4_addr . ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
			Flags: []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
		},
		&knftables.Map{Name: famV4.name(mapAffinityVIPs), Type: "ipv4_addr . inet_proto . inet_service : verdict"},
	)
	rule := func(chain string, words ...string) {
		objs = append(objs, &knftables.Rule{Chain: chain, Rule: knftables.Concat(words)})
	}
	rule(chainNatPrerouting, "jump", chainServices)
	rule(chainNatOutput, "jump", chainServices)
	rule(chainFilterPrerouting, "ct state new jump", chainNoEndpoints)
	rule(chainFilterOutput, "ct state new jump", chainNoEndpoints)
	for _, f := range fams {
		// Mark first (dnat is a terminal statement), then a remembered
		// affinity choice, then the normal dispatch by endpoint count.
		rule(chainServices, vipKey(f), "@"+f.name(setMasquerade), "meta mark set meta mark or", masqueradeMark)
		if f == famV4 {
			rule(chainServices, "dnat", f.ip, "to", f.ip, "saddr .", vipKey(f), "map", "@"+f.name(mapAffinity))
		}
		rule(chainServices, vipKey(f), "vmap", "@"+f.name(mapVIPs))
		rule(chainNoEndpoints, vipKey(f), "vmap", "@"+f.name(mapNoEndpoints))
	}
	for _, f := range []fam{famV4} {
		for _, p := range protocols {
			// After DNAT the packet carries the endpoint; conntrack still
			// knows the frontend. The `meta l4proto X` prefix is needed:
			// without a protocol in context nft 1.0.6 drops `ct original
			// proto-dst` from a concatenation.
			rule(chainNatPostrouting, "meta l4proto", p, "ct status dnat ct original", f.ip,
				"daddr . meta l4proto . ct original proto-dst vmap", "@"+f.name(mapAffinityVIPs))
		}
	}
	// Clear the mark before masquerading: a packet that leaves through the VXLAN device hands its
	// mark to the encapsulated outer packet, which would otherwise be masqueraded too (its UDP
	// source port rewritten) and dropped by the peer.
	rule(chainNatPostrouting, "meta mark &", masqueradeMark, "==", masqueradeMark,
		"meta mark set meta mark ^", masqueradeMark, "masquerade fully-random")
	for _, f := range fams {
		rule(chainNatPostrouting, "ct status dnat", f.ip, "saddr .", f.ip, "daddr", "@"+f.name(setHairpin), "masquerade fully-random")
	}
	rule(chainReject, "meta l4proto tcp reject with tcp reset")
	rule(chainReject, "reject")
	return objs
}

func baseChain(name string, typ knftables.BaseChainType, hook knftables.BaseChainHook, prio knftables.BaseChainPriority) *knftables.Chain {
	return &knftables.Chain{Name: name, Type: knftables.PtrTo(typ), Hook: knftables.PtrTo(hook), Priority: knftables.PtrTo(prio)}
}

// dnatChain names the chain for frontends of family f with n endpoints;
// endpointsMap names its map.
func dnatChain(f fam, n int) string    { return prefixDNAT + f.suffix + "-" + strconv.Itoa(n) }
func endpointsMap(f fam, n int) string { return mapEndpoints + "-" + f.suffix + "-" + strconv.Itoa(n) }

// dnatObjects are the chain and map of endpoint count n in family f.
func dnatObjects(f fam, n int) []knftables.Object {
	return []knftables.Object{
		// typeof, not type: only typeof lets the key hold `numgen random
		// mod n` (with `type ... . mark` nft refuses the integer).
		&knftables.Map{
			Name:   endpointsMap(f, n),
			TypeOf: fmt.Sprintf("%s . numgen random mod %d : %s daddr . th dport", vipKey(f), n, f.ip),
		},
		&knftables.Chain{Name: dnatChain(f, n)},
		&knftables.Rule{Chain: dnatChain(f, n), Rule: knftables.Concat(
			"dnat", f.ip, "to", vipKey(f), ". numgen random mod", n, "map", "@"+endpointsMap(f, n))},
	}
}

// affinityChain names the chain that records affinity with timeout t s.
func affinityChain(t int32) string { return prefixAffinity + strconv.Itoa(int(t)) }

// affinityObjects are the chain recording affinity entries with timeout t
// seconds: nft can only take a constant timeout per update statement, so
// there is one chain per distinct timeout in use.
func affinityObjects(t int32) []knftables.Object {
	objs := []knftables.Object{&knftables.Chain{Name: affinityChain(t)}}
	for _, f := range []fam{famV4} {
		for _, p := range protocols {
			objs = append(objs, &knftables.Rule{Chain: affinityChain(t), Rule: knftables.Concat(
				"meta l4proto", p, "update", "@"+f.name(mapAffinity), "{",
				f.ip, "saddr . ct original", f.ip, "daddr . meta l4proto . ct original proto-dst",
				"timeout", fmt.Sprintf("%ds", t), ":", f.ip, "daddr . th dport", "}")})
		}
	}
	return objs
}

// stampElement is the sync-stamp element that says "at write number seq
// the table held the model with digest": ::SSSS:SSSS:DDDD:DDDD:DDDD:DDDD.
func stampElement(seq uint32, digest uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint64(b[8:], digest)
	return netip.AddrFrom16(b).String()
}

// parseStamp reads a stampElement back.
func parseStamp(s string) (seq uint32, digest uint64, ok bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return 0, 0, false
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint64(b[8:]), true
}

// latestStamp returns the stamp with the highest seq.
func latestStamp(elems []string) (seq uint32, digest uint64, ok bool) {
	for _, e := range elems {
		if s, d, valid := parseStamp(e); valid && (!ok || s > seq) {
			seq, digest, ok = s, d, true
		}
	}
	return seq, digest, ok
}

// parseDynamicChain tells what a per-count or per-timeout chain name is.
func parseDynamicChain(name string) (f fam, n int, timeout int32, ok bool) {
	if rest, found := strings.CutPrefix(name, prefixDNAT); found {
		for _, ff := range fams {
			if num, found := strings.CutPrefix(rest, ff.suffix+"-"); found {
				v, err := strconv.Atoi(num)
				return ff, v, 0, err == nil && v > 0
			}
		}
		return fam{}, 0, 0, false
	}
	if num, found := strings.CutPrefix(name, prefixAffinity); found {
		v, err := strconv.Atoi(num)
		return fam{}, 0, int32(v), err == nil && v > 0
	}
	return fam{}, 0, 0, false
}
