// Package nftables is the NetworkPolicy backend of the agent: it programs a
// policy.Model into one `inet` table whose number of kernel objects grows
// with the policies that select local pods and the distinct sets of them,
// never with pods × policies.
//
// Layout (per family f = v4|v6; docs/network-policy.md to come):
//
//   - base chains in the forward and input hooks, at filter priority, i.e.
//     after the service proxy's DNAT (prerouting, dstnat): they see the
//     endpoint a ClusterIP, NodePort or LoadBalancer IP was translated to,
//     and the client address before this node's masquerade (postrouting);
//     ct state established,related is accepted first, so only the first
//     packet of a connection is evaluated;
//   - forward-egress and input-egress (pod to pod / pod to this node) look
//     the source up in the verdict map egress-pods-f; forward-ingress
//     (priority after egress, so both must accept) first accepts sources in
//     node-ips-f and then looks the destination up in ingress-pods-f. Only
//     isolated pods are in the maps; anything else passes;
//   - a map element points to a policy-set chain (ingress-set/<hash>,
//     egress-set/<hash>) shared by every pod isolated by the same policies
//     (and, for ingress, whose named ports resolve to the same numbers).
//     It decides with at most four lookups per family, however many
//     policies isolate the pod (see merge.go): pod peers in hash sets,
//     the exact any-port set (any-pods/<hash>-f, key `addr`) and the
//     exact ports set (ports-pods/<hash>-f, key `addr . l4proto . th
//     dport`), then ranges (ipBlocks, every peer, port ranges) in
//     interval concatenations, the any-port set (any/<hash>-f, key `addr
//     . l4proto`) and the ports set (ports/<hash>-f, key `addr . l4proto
//     . th dport`); each holds its part of the union of the chain's
//     policies' rules. A match counts into the chain's allow counter
//     (<chain>/allow) and accepts; anything else counts into
//     <chain>/drop and is dropped. Sets are named by the specs of the
//     rules they merge (policy.Rule.PodPeerKey, BlockPeerKey, NamedKey,
//     the ports), so chains with equal rules share them.
//
// Counters are per policy-set chain: the kernel knows which set of
// policies decided, not which of them allowed. Counters reports each
// chain's allows and drops against every policy of its set; which policy
// and rule allow a given flow is plexusctl trace's answer (the model's).
//
// Node-originated traffic (the output hook) is never evaluated: traffic from
// the pod's own node is always allowed. IPv6 neighbour discovery between a
// pod and its node is always accepted (input-egress), as a pod without its
// gateway's link-layer address can reach nothing.
//
// What a policy sees through a Service (the proxy DNATs in prerouting, or
// in output for the node's own connections, and masquerades in
// postrouting):
//
//   - ClusterIP from a pod: the client pod's address and the endpoint pod
//     (egress policies of the client match the endpoint, not the VIP);
//   - NodePort or LoadBalancer IP, externalTrafficPolicy Local: the
//     client's address (the endpoint is on the node that received it);
//   - externalTrafficPolicy Cluster, endpoint on the receiving node: the
//     client's address too (policy runs before the masquerade);
//   - externalTrafficPolicy Cluster, endpoint on another node: the
//     receiving node's address (it masqueraded), which an ipBlock can
//     match; it is not the endpoint's own node, so not allowed by default;
//   - from a process on the node (host network, kubelet): the node itself,
//     always allowed on its own pods.
//
// Rule shapes depend only on the policies' specs, so pods coming, going or
// being relabelled change set and map elements only.
package nftables

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/policy"
	"github.com/plexus-net/plexus/internal/ipfamily"
)

const (
	// TableFamily serves both IP families with one set of base chains.
	TableFamily = knftables.InetFamily
	// TableName is the table the policy engine owns.
	TableName = "plexus-policy"

	// Base chains.
	chainForwardEgress  = "forward-egress"
	chainForwardIngress = "forward-ingress"
	chainInputEgress    = "input-egress"

	// Priorities: the filter priority, after every NAT prerouting and
	// before postrouting; ingress after egress so that an egress accept
	// does not skip the destination's ingress check (an accept ends only
	// its own base chain).
	priorityEgress  knftables.BaseChainPriority = "0"
	priorityIngress knftables.BaseChainPriority = "10"

	// setStamp holds one element: a digest of everything else the table
	// holds, written with every change, as an IPv6 address (a 16-byte
	// key nft prints back verbatim). A full sync compares it, and the
	// chain names, with what it would write, and rebuilds only if they
	// differ: an agent's restart or periodic full sync then costs a read,
	// not a rebuild that resets every counter.
	setStamp = "sync-stamp"

	// Verdict maps (+ -v4/-v6) and node address sets.
	mapEgressPods  = "egress-pods"
	mapIngressPods = "ingress-pods"
	setNodeIPs     = "node-ips"

	// Prefixes of the merged sets (ranges, pod addresses) and the
	// policy-set chains' infix.
	prefixAny       = "any/"
	prefixPorts     = "ports/"
	prefixAnyPods   = "any-pods/"
	prefixPortsPods = "ports-pods/"
	suffixSet       = "-set/"
)

// fam holds the per-family spellings.
type fam struct {
	suffix string // "v4"
	ip     string // "ip" or "ip6"
	addr   string // set type of an address
	is6    bool
}

var (
	famV4 = fam{suffix: "v4", ip: "ip", addr: "ipv4_addr"}
	famV6 = fam{suffix: "v6", ip: "ip6", addr: "ipv6_addr", is6: true}
	fams  = []fam{famV4, famV6}
)

func (f fam) name(stem string) string { return stem + "-" + f.suffix }

// famOf returns the spellings of a's family (ipfamily.Of: an IPv4-mapped
// address is IPv4).
func famOf(a netip.Addr) fam {
	if ipfamily.Of(a) == ipfamily.IPv6 {
		return famV6
	}
	return famV4
}

// setChain is the chain shared by the pods isolated by exactly keys in
// direction d whose ingress named ports resolve to named.
func setChain(d policy.Direction, keys []policy.PolicyKey, named []namedRef) string {
	parts := make([]string, 0, len(keys)+len(named))
	for _, k := range keys {
		parts = append(parts, k.String())
	}
	for _, n := range named {
		parts = append(parts, n.String())
	}
	return d.String() + suffixSet + shortHash(strings.Join(parts, "\n"))
}

// chainCounter is a policy-set chain's allow or drop counter.
func chainCounter(chain, verdict string) string { return chain + "/" + verdict }

// mergedSetName names a merged set by the specs of the terms it holds
// (see termIDs): kind is one of the prefixes above.
func mergedSetName(kind string, ids []string) string {
	return kind + shortHash(joinIDs(kind, ids))
}

// shortHash is 64 bits of sha256 in hex: enough to keep a node's few
// thousand names apart.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}
