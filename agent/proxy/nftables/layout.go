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
		// Only clears the IPv6 affinity ct mark of connections DNATed to
		// the node itself (they never reach nat-postrouting).
		baseChain(chainNatInput, knftables.NATType, knftables.InputHook, knftables.SNATPriority),
		// Before DNAT (dstnat - 10): a frontend without endpoints still has
		// its virtual destination here. Reject is allowed in prerouting on
		// the kernels we support, so traffic is refused before routing
		// (a ClusterIP has no route of its own).
		baseChain(chainFilterPrerouting, knftables.FilterType, knftables.PreroutingHook, priorityBeforeDNAT),
		baseChain(chainFilterOutput, knftables.FilterType, knftables.OutputHook, priorityBeforeDNAT),
		&knftables.Chain{Name: chainServices},
		&knftables.Chain{Name: chainNoEndpoints},
		&knftables.Chain{Name: chainReject},
		&knftables.Chain{Name: chainDropExternal},
		&knftables.Set{Name: setStamp, Type: "ipv6_addr"},
	}
	for _, f := range fams {
		objs = append(objs,
			&knftables.Map{Name: f.name(mapVIPs), TypeOf: vipKey(f) + " : verdict"},
			&knftables.Map{Name: f.name(mapNoEndpoints), TypeOf: vipKey(f) + " : verdict"},
			&knftables.Map{Name: f.name(mapFromNode), TypeOf: vipKey(f) + " : verdict"},
			&knftables.Set{Name: f.name(setMasquerade), TypeOf: vipKey(f)},
			&knftables.Set{Name: f.name(setHairpin), Type: f.addr + " . " + f.addr},
		)
	}
	// Session affinity. IPv4: one dynamic map client . vip . l4proto .
	// port → endpoint, written after DNAT. IPv6 cannot have that shape:
	// nft 1.0.6 gives a map update statement 16 bytes of registers for
	// its key and 16 for its value, whatever their types (it aborts with
	// an assertion in netlink_linearize.c, or with some field orders
	// silently overlaps key and value), and an IPv6 client alone fills
	// 16 bytes. See affinityV6Rules for the IPv6 layout.
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
		// Two 32-bit hashes of client . frontend → ct mark. typeof
		// numgen only declares "two 32-bit integers": nft 1.0.6 accepts
		// a typeof jhash key but then crashes listing the ruleset.
		&knftables.Map{
			Name:   famV6.name(mapAffinity),
			TypeOf: fmt.Sprintf("numgen random mod %d . numgen random mod %d : ct mark", affinityHashMod, affinityHashMod),
			Flags:  []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
		},
		// The same key fields as vips-v6: the proxier writes both alike.
		&knftables.Map{Name: famV6.name(mapAffinityVIPs), TypeOf: vipKey(famV6) + " : verdict"},
	)
	rule := func(chain string, words ...string) {
		objs = append(objs, &knftables.Rule{Chain: chain, Rule: knftables.Concat(words)})
	}
	rule(chainNatPrerouting, "jump", chainServices)
	// The node's own connections to eTP Local frontends go to any endpoint of the cluster,
	// masqueraded (kube-proxy's short-circuit); everything else as from anywhere.
	for _, f := range fams {
		rule(chainNatOutput, vipKey(f), "@"+f.name(mapFromNode), "meta mark set meta mark or", masqueradeMark)
		rule(chainNatOutput, vipKey(f), "vmap", "@"+f.name(mapFromNode))
	}
	rule(chainNatOutput, "jump", chainServices)
	rule(chainFilterPrerouting, "ct state new jump", chainNoEndpoints)
	rule(chainFilterOutput, "ct state new jump", chainNoEndpoints)
	for _, f := range fams {
		// Mark first (dnat is a terminal statement), then a remembered
		// affinity choice, then the normal dispatch by endpoint count.
		rule(chainServices, vipKey(f), "@"+f.name(setMasquerade), "meta mark set meta mark or", masqueradeMark)
		if f == famV4 {
			rule(chainServices, "dnat", f.ip, "to", f.ip, "saddr .", vipKey(f), "map", "@"+f.name(mapAffinity))
		} else {
			// IPv6 affinity is looked up and recorded here, before
			// the dispatch (affinityV6Rules).
			rule(chainServices, vipKey(f), "vmap", "@"+f.name(mapAffinityVIPs))
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
	// The IPv6 affinity choice rides in the ct mark only until here.
	for _, c := range []string{chainNatPostrouting, chainNatInput} {
		rule(c, "ct mark &", affinityMarkMask, "==", affinityMarkTag, "ct mark set 0")
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
	// Reached by goto from no-endpoints: return ends no-endpoints too, so the packet goes on
	// (to nat-output's from-node dispatch). fib: only the node's own addresses are local.
	rule(chainDropExternal, "fib saddr type local return")
	rule(chainDropExternal, "drop")
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
	objs := []knftables.Object{
		// typeof, not type: only typeof lets the key hold `numgen random
		// mod n` (with `type ... . mark` nft refuses the integer).
		&knftables.Map{
			Name:   endpointsMap(f, n),
			TypeOf: fmt.Sprintf("%s . numgen random mod %d : %s daddr . th dport", vipKey(f), n, f.ip),
		},
		&knftables.Chain{Name: dnatChain(f, n)},
		// The node's own connections that from-node-f sent here use the
		// frontend's from-node slots. A ClusterIP or eTP Cluster frontend
		// has none: the lookup fails, and a failed lookup only ends the
		// rule. Before the IPv6 affinity rule: from-node traffic has no
		// affinity (it skips the services chain).
		&knftables.Rule{Chain: dnatChain(f, n), Rule: knftables.Concat(
			"fib saddr type local dnat", f.ip, "to", vipKey(f), ". numgen random mod", n, "offset", fromNodeSlotOffset,
			"map", "@"+endpointsMap(f, n))},
	}
	if f == famV6 {
		// An IPv6 affinity choice (see affinityV6Rules) picks the slot.
		objs = append(objs, &knftables.Rule{Chain: dnatChain(f, n), Rule: knftables.Concat(
			"ct mark &", affinityMarkMask, "==", affinityMarkTag,
			"dnat", f.ip, "to", vipKey(f), ". jhash ct mark mod", n, "map", "@"+endpointsMap(f, n))})
	}
	return append(objs, &knftables.Rule{Chain: dnatChain(f, n), Rule: knftables.Concat(
		"dnat", f.ip, "to", vipKey(f), ". numgen random mod", n, "map", "@"+endpointsMap(f, n))})
}

// affinityChain names the chain that records affinity with timeout t s.
func affinityChain(t int32) string { return prefixAffinity + strconv.Itoa(int(t)) }

// affinityObjects are the chain recording affinity entries with timeout t
// seconds: nft can only take a constant timeout per update statement, so
// there is one chain per distinct timeout in use. IPv4 packets come here
// from nat-postrouting, after DNAT; IPv6 packets from the services chain,
// before it. Each rule names its family, so neither sees the other's.
func affinityObjects(t int32) []knftables.Object {
	objs := []knftables.Object{&knftables.Chain{Name: affinityChain(t)}}
	f := famV4
	for _, p := range protocols {
		objs = append(objs, &knftables.Rule{Chain: affinityChain(t), Rule: knftables.Concat(
			"meta l4proto", p, "update", "@"+f.name(mapAffinity), "{",
			f.ip, "saddr . ct original", f.ip, "daddr . meta l4proto . ct original proto-dst",
			"timeout", fmt.Sprintf("%ds", t), ":", f.ip, "daddr . th dport", "}")})
	}
	for _, r := range affinityV6Rules(t) {
		objs = append(objs, &knftables.Rule{Chain: affinityChain(t), Rule: r})
	}
	return objs
}

const (
	// affinityMarkTag in the top byte of the ct mark says "the low 24
	// bits are this connection's IPv6 affinity choice"; affinityMarkMask
	// selects that byte. nat-postrouting and nat-input clear the mark.
	affinityMarkTag  = "0x50000000"
	affinityMarkMask = "0xff000000"
	// affinityChoices is the range of a fresh choice (24 bits).
	affinityChoices = 1 << 24
	// affinityHashMod keeps the key hashes 32 bits wide (mod is at most
	// 2^32-1 in nft).
	affinityHashMod = 4294967295
)

// affinityV6Key is the key of affinity-v6: two 32-bit hashes (different
// seeds) of client . frontend. nft 1.0.6 leaves a map update 16 bytes for
// the key, too few for an IPv6 client and frontend. A collision of both
// hashes only makes two clients share a choice, and a choice is a number
// that each frontend turns into one of its own endpoints, so it can never
// send a packet to another Service.
func affinityV6Key() string {
	in := "ip6 saddr . " + vipKey(famV6)
	return fmt.Sprintf("jhash %s mod %d seed 0x1 . jhash %s mod %d seed 0x2", in, affinityHashMod, in, affinityHashMod)
}

// affinityV6Rules record and apply IPv6 session affinity with timeout t.
// IPv6 packets of an affinity frontend jump here from the services chain
// (via affinity-vips-v6) before the dispatch:
//
//  1. a remembered choice for client . frontend goes into the ct mark;
//  2. otherwise a fresh random one (tagged, 24 bits);
//  3. the entry is written (or refreshed) with timeout t.
//
// The dispatch chain dnat-v6-N then DNATs to slot `jhash ct mark mod N` of
// the frontend's own endpoints map, so a choice can never leave the
// frontend. Why a choice and not the endpoint: nft 1.0.6 gives a map update
// 16 bytes of registers for the value, and an IPv6 endpoint with its port
// needs 20. Why the ct mark: nft cannot use a map lookup's result inside
// another lookup's key; the ct mark carries it from one rule to the next
// and, unlike the packet mark, is not seen by routing. The rules only
// touch a ct mark that is 0 (a new connection nobody else marked).
func affinityV6Rules(t int32) []string {
	key := affinityV6Key()
	return []string{
		knftables.Concat("ct mark 0 ct mark set", key, "map", "@"+famV6.name(mapAffinity)),
		knftables.Concat("meta nfproto ipv6 ct mark 0 ct mark set numgen random mod", affinityChoices, "offset", affinityMarkTag),
		knftables.Concat("ct mark &", affinityMarkMask, "==", affinityMarkTag,
			"update", "@"+famV6.name(mapAffinity), "{", key, "timeout", fmt.Sprintf("%ds", t), ": ct mark }"),
	}
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
