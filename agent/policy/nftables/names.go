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
//     egress-set/<hash>) shared by every pod isolated by the same policies:
//     it jumps to each policy's chain, counts one drop per policy and drops;
//   - a policy chain (np/<ns>/<name>/<direction>) holds one rule per rule
//     shape of the policy; a match counts into the policy's allow counter
//     and accepts. Peers are a set of pod addresses (pods/<hash>-f) and an
//     interval set of ipBlocks less their excepts (blocks/<hash>-f), each
//     with its own rule; numbered ports an interval set of
//     `l4proto . port` (ports/<hash>), named ports a set of `address .
//     l4proto . port` resolved per pod. Peer, port and egress named-port
//     sets are named by the spec they come from (policy.Rule.PodPeerKey,
//     BlockPeerKey, NamedKey, the port list), so rules with equal specs
//     in any policy share one set; ingress named ports depend on the pods a policy
//     selects and belong to it (np/…/<direction>/<rule>/named-f).
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

	// Prefixes of the per-policy and per-policy-set objects.
	prefixPolicy = "np/"
	prefixPods   = "pods/"
	prefixBlocks = "blocks/"
	prefixPorts  = "ports/"
	prefixNamed  = "named/"
	suffixSet    = "-set/"

	// maxPolicyPrefix bounds the policy part of an object name: nft names
	// are at most 255 bytes, and a suffix like /ingress/999/named-v4 must
	// fit after it.
	maxPolicyPrefix = 200
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

// policyPrefix returns np/<ns>/<name>, shortened with a hash when too long
// for nft (Kubernetes names are DNS labels and subdomains, which are
// valid in nft names).
func policyPrefix(k policy.PolicyKey) string {
	p := prefixPolicy + k.Namespace + "/" + k.Name
	if len(p) <= maxPolicyPrefix {
		return p
	}
	return p[:maxPolicyPrefix-17] + "~" + shortHash(k.String())
}

// policyChain is the chain of a policy's rules for one direction.
func policyChain(k policy.PolicyKey, d policy.Direction) string {
	return policyPrefix(k) + "/" + d.String()
}

// counterName is a policy's allow or drop counter for one direction.
func counterName(k policy.PolicyKey, d policy.Direction, verdict string) string {
	return policyChain(k, d) + "/" + verdict
}

// setChain is the chain shared by the pods isolated by exactly keys.
func setChain(d policy.Direction, keys []policy.PolicyKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.String()
	}
	return d.String() + suffixSet + shortHash(strings.Join(parts, "\n"))
}

// shortHash is 64 bits of sha256 in hex: enough to keep a node's few
// thousand names apart.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}
