// Package nftables is the nftables backend of the service proxy: it
// programs the proxy.Model into one `inet` table with a constant number of
// kernel objects, whatever the number of Services.
//
// Layout (per family f = v4|v6; see docs/service-proxy.md):
//
//   - every frontend (ClusterIP, node address at NodePort, LB IP, external
//     IP) is a key `daddr . l4proto . dport` in a few named maps;
//   - vips-f maps it to `goto dnat-f-N`, where N is the number of endpoints
//     it gets; dnat-f-N holds one rule (dnat-v6-N an affinity rule first)
//     that DNATs through the map
//     endpoints-f-N keyed `daddr . l4proto . dport . numgen random mod N`;
//     so there is one chain and one map per endpoint count in use, not per
//     Service;
//   - no-endpoints-f maps frontends without usable endpoints to reject (or
//     drop for a Local traffic policy with no local endpoint), checked in
//     filter hooks before conntrack NAT;
//   - from-node-f sends connections the node itself opens to an external
//     frontend of an eTP Local Service to all of the cluster's endpoints
//     (slots from fromNodeSlotOffset of the same endpoints maps), as
//     kube-proxy does; drop-external lets them past the Local drop;
//   - masquerade-f marks external frontends for SNAT; hairpin-f holds
//     `ep . ep` pairs of local endpoints so a pod reaching itself through
//     its Service is masqueraded;
//   - affinity-v4 is a dynamic map `client . vip . l4proto . port →
//     endpoint` with per-entry timeouts, written from the packet path after
//     DNAT for frontends in affinity-vips-v4 and read before the normal
//     dispatch;
//   - affinity-v6 cannot have that shape (nft 1.0.6 leaves a map update 16
//     bytes of key and 16 of value): it maps two hashes of client .
//     frontend to a random choice. For frontends in affinity-vips-v6 the
//     chain affinity-T loads the remembered or a new choice into the ct
//     mark and records it with timeout T before dispatch, and dnat-v6-N
//     DNATs to slot `jhash choice mod N` of the frontend's own endpoints
//     (see affinityV6Rules); the mark is reset to 0 in nat-postrouting and
//     nat-input. There is one affinity-T chain per timeout in use.
//
// A sync writes only the elements that differ from what the Proxier last
// wrote (kept in memory), through a lasting netlink socket when only
// elements change (netlink.go, encode.go) and through nft otherwise; after
// a restart or a failure it compares a digest
// stamped into the table (the newest element of the set sync-stamp) and
// the chain names, and rebuilds the table atomically only when they differ.
package nftables

import "sigs.k8s.io/knftables"

const (
	// TableFamily is the family of the proxy's table: inet serves both IP
	// families with one set of base chains.
	TableFamily = knftables.InetFamily
	// TableName is the nftables table Plexus's service proxy owns.
	TableName = "plexus-proxy"

	// Base chains.
	chainNatPrerouting    = "nat-prerouting"
	chainNatOutput        = "nat-output"
	chainNatPostrouting   = "nat-postrouting"
	chainNatInput         = "nat-input"
	chainFilterPrerouting = "filter-prerouting"
	chainFilterOutput     = "filter-output"

	// Regular chains with constant rules.
	chainServices    = "services"
	chainNoEndpoints = "no-endpoints"
	chainReject      = "reject-packet"
	// chainDropExternal drops new connections to an eTP Local frontend
	// without a local endpoint, except those the node itself opens: kube-
	// proxy short-circuits those to any endpoint (see mapFromNode).
	chainDropExternal = "drop-external"

	// Prefixes of chains created per endpoint count (dnat-v4-3) and per
	// affinity timeout (affinity-10800).
	prefixDNAT     = "dnat-"
	prefixAffinity = "affinity-"
	// setStamp holds stamps "write number . digest of the model", encoded
	// as IPv6 addresses (an address type is the simplest wide key nft
	// prints back verbatim); the highest write number is the table's
	// current state. Each write adds a stamp. A netlink write deletes the
	// older ones every time; an nft write only when it deletes elements
	// anyway (or every stampPruneEvery writes), because a `delete element`
	// costs nft ≈ 11 ms more than an add (see Netlink) and adding a
	// Service should not pay it. Why elements and not, say, the
	// name of an empty chain: adding a chain makes the kernel validate the
	// whole table (every verdict map element), ≈ 15 ms at 10k Services.
	setStamp = "sync-stamp"
	// stampPruneEvery bounds the number of stamps kept.
	stampPruneEvery = 256

	// Set and map name stems; the family suffix (-v4, -v6) is appended.
	mapVIPs         = "vips"
	mapEndpoints    = "endpoints" // + -f-N
	mapNoEndpoints  = "no-endpoints"
	setMasquerade   = "masquerade"
	setHairpin      = "hairpin"
	mapAffinity     = "affinity"
	mapAffinityVIPs = "affinity-vips"
	// mapFromNode maps the external frontends of eTP Local Services to
	// `goto dnat-f-C` (C: the number of cluster-wide endpoints), for
	// connections the node itself opens (nat-output): kube-proxy sends
	// those to any endpoint of the cluster, as the client's address needs
	// no keeping and the node may have no local endpoint.
	mapFromNode = "from-node"

	// fromNodeSlotOffset is where the slots of a frontend's from-node
	// endpoints start in its endpoints-f-C map: the same frontend may have
	// its local endpoints in that map too (slots 0..C-1) when the counts
	// match, and a second map per count would double the objects.
	// dnat-f-N looks them up with `numgen random mod N offset` this.
	fromNodeSlotOffset = 1 << 16

	// masqueradeMark is the packet mark bit that asks nat-postrouting to
	// masquerade (the same bit kube-proxy uses, so tools recognise it).
	masqueradeMark = "0x00004000"

	// layoutVersion is part of the digest: a new rule layout changes every
	// digest, so a newer agent rebuilds the table of an older one. v2:
	// IPv6 session affinity (affinity-v6, nat-input). v3: the node's own
	// traffic to eTP Local frontends (from-node, drop-external).
	layoutVersion = "plexus-proxy/v3"
)

// fam holds the per-family spellings.
type fam struct {
	suffix string // "v4"
	ip     string // "ip" or "ip6"
	addr   string // set type of an address
}

var (
	famV4 = fam{suffix: "v4", ip: "ip", addr: "ipv4_addr"}
	famV6 = fam{suffix: "v6", ip: "ip6", addr: "ipv6_addr"}
	fams  = []fam{famV4, famV6}
)

func (f fam) name(stem string) string { return stem + "-" + f.suffix }
