package nftables

import (
	"fmt"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/policy"
)

// layoutVersion is part of the stamp's digest: a newer agent with another
// rule layout rebuilds the table an older one left (v4: pod peers in hash
// sets beside the interval sets of v3).
const layoutVersion = "plexus-policy/v4"

// Key types of the merged sets of family f (see merge.go): the range sets'
// (interval flag) and the exact ports set's; the exact any-port set's is
// f.addr. Sets are
// declared by `type`, not `typeof`: nft keeps a typeof expression in the
// set's user data, which a set declared through netlink would lack, and
// the two would print differently; the rules print the same either way.
func anySetType(f fam) string   { return f.addr + " . inet_proto" }
func portsSetType(f fam) string { return f.addr + " . inet_proto . inet_service" }

// ndTypes are the ICMPv6 neighbour discovery messages always accepted.
const ndTypes = "{ nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }"

// staticObjectCount and staticRuleCount count what staticObjects makes
// that a state does not hold: the table and 3 base chains; 3 ct state
// rules, 1 neighbour discovery rule, 4 egress vmap rules, 2 node address
// rules, 2 ingress vmap rules. (The maps and node address sets are in
// every state.)
const (
	staticObjectCount = 1 + 3
	staticRuleCount   = 3 + 1 + 4 + 2 + 2
)

// staticObjects returns the table, base chains and rules, and the maps and
// sets whose number never changes. Order matters: a rule may only refer to
// an object added before it.
func staticObjects() []knftables.Object {
	objs := []knftables.Object{
		&knftables.Table{Comment: knftables.PtrTo("Plexus NetworkPolicy")},
		baseChain(chainForwardEgress, knftables.ForwardHook, priorityEgress),
		baseChain(chainInputEgress, knftables.InputHook, priorityEgress),
		baseChain(chainForwardIngress, knftables.ForwardHook, priorityIngress),
	}
	for _, f := range fams {
		objs = append(objs,
			&knftables.Map{Name: f.name(mapEgressPods), Type: f.addr + " : verdict"},
			&knftables.Map{Name: f.name(mapIngressPods), Type: f.addr + " : verdict"},
			&knftables.Set{Name: f.name(setNodeIPs), Type: f.addr},
		)
	}
	rule := func(chain string, words ...string) {
		objs = append(objs, &knftables.Rule{Chain: chain, Rule: knftables.Concat(words)})
	}
	for _, c := range []string{chainForwardEgress, chainInputEgress, chainForwardIngress} {
		// Replies and later packets of a decided connection.
		rule(c, "ct state established,related accept")
	}
	// IPv6 neighbour discovery between a pod and its node's gateway
	// address: an egress-isolated pod that could not resolve its gateway
	// could not even answer the connections it allows (Linux solicits
	// from the pod's global address, which is in egress-pods-v6).
	rule(chainInputEgress, "icmpv6 type", ndTypes, "accept")
	for _, f := range fams {
		rule(chainForwardEgress, f.ip, "saddr vmap", "@"+f.name(mapEgressPods))
		rule(chainInputEgress, f.ip, "saddr vmap", "@"+f.name(mapEgressPods))
	}
	for _, f := range fams {
		// Traffic from the pod's own node is always allowed. (The node's
		// own packets take the output hook, where nothing is evaluated;
		// this covers the node's addresses showing up in forward.)
		rule(chainForwardIngress, f.ip, "saddr", "@"+f.name(setNodeIPs), "accept")
	}
	for _, f := range fams {
		rule(chainForwardIngress, f.ip, "daddr vmap", "@"+f.name(mapIngressPods))
	}
	return objs
}

func baseChain(name string, hook knftables.BaseChainHook, prio knftables.BaseChainPriority) *knftables.Chain {
	return &knftables.Chain{Name: name, Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(hook), Priority: knftables.PtrTo(prio)}
}

// chainSets names a policy-set chain's merged sets (without the family
// suffix; "" for a set the chain does not have).
type chainSets struct {
	anyPods, portsPods, anyRanges, portsRanges string
}

// setChainRules returns a policy-set chain's rules: per family, a lookup
// in each of its merged sets, pod addresses (hash sets) first, all
// counting into the chain's allow counter and accepting; then the
// chain's drop.
func setChainRules(d policy.Direction, chain string, sets chainSets) []string {
	peerField := "saddr"
	if d == policy.Egress {
		peerField = "daddr"
	}
	allow := "counter name " + chainCounter(chain, "allow") + " accept"
	var rules []string
	for _, f := range fams {
		if sets.anyPods != "" {
			rules = append(rules, fmt.Sprintf("%s %s @%s %s", f.ip, peerField, f.name(sets.anyPods), allow))
		}
		if sets.portsPods != "" {
			rules = append(rules, fmt.Sprintf("%s %s . meta l4proto . th dport @%s %s", f.ip, peerField, f.name(sets.portsPods), allow))
		}
		if sets.anyRanges != "" {
			rules = append(rules, fmt.Sprintf("%s %s . meta l4proto @%s %s", f.ip, peerField, f.name(sets.anyRanges), allow))
		}
		if sets.portsRanges != "" {
			rules = append(rules, fmt.Sprintf("%s %s . meta l4proto . th dport @%s %s", f.ip, peerField, f.name(sets.portsRanges), allow))
		}
	}
	return append(rules, "counter name "+chainCounter(chain, "drop")+" drop")
}
