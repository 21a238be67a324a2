package nftables

import (
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/policy"
)

// layoutVersion is part of the stamp's digest: a newer agent with another
// rule layout rebuilds the table an older one left.
const layoutVersion = "plexus-policy/v1"

// portKey is the key of numbered-port sets.
const portKey = "meta l4proto . th dport"

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

// setChainRules: try each isolating policy in turn (an accept ends the
// base chain), then count the drop against each of them and drop.
func setChainRules(d policy.Direction, keys []policy.PolicyKey) []string {
	var rules []string
	for _, k := range keys {
		rules = append(rules, "jump "+policyChain(k, d))
	}
	for _, k := range keys {
		rules = append(rules, "counter name "+counterName(k, d, "drop"))
	}
	return append(rules, "drop")
}

// addPolicy adds the chain, counters and sets of one direction of p.
func addPolicy(s *state, p *policy.Policy, d policy.Direction) {
	chain := policyChain(p.Key, d)
	allow := "counter name " + counterName(p.Key, d, "allow") + " accept"
	for _, v := range []string{"allow", "drop"} {
		s.counters[counterName(p.Key, d, v)] = counterID{policy: p.Key, direction: d, verdict: v}
	}
	peerField := "saddr"
	if d == policy.Egress {
		peerField = "daddr"
	}
	var rules []string
	for _, r := range p.Rules(d) {
		names := ruleSets{}
		if r.HasPodPeers {
			names.pods = peerSetName(p.Key, d, r, prefixPods, r.PodPeerKey)
			fresh := false
			for _, f := range fams {
				fresh = s.addSetOnce(f.name(names.pods), &set{typ: f.addr}) || fresh
			}
			if fresh {
				for _, a := range r.PeerPods {
					s.element(famOf(a).name(names.pods), []string{a.String()}, "")
				}
			}
		}
		if r.HasBlockPeers {
			names.blocks = peerSetName(p.Key, d, r, prefixBlocks, r.BlockPeerKey)
			for _, f := range fams {
				if s.addSetOnce(f.name(names.blocks), &set{typ: f.addr, interval: true}) {
					for _, ar := range r.PeerBlocks.Family(f.is6) {
						s.element(f.name(names.blocks), []string{ar.String()}, "")
					}
				}
			}
		}
		if len(r.Ports) > 0 {
			names.ports = portsSetName(r.Ports)
			if s.addSetOnce(names.ports, &set{typ: portKey, typeOf: true, interval: true}) {
				for _, pr := range r.Ports {
					port := itoa(int(pr.First))
					if pr.Last != pr.First {
						port += "-" + itoa(int(pr.Last))
					}
					s.element(names.ports, []string{pr.Protocol.String(), port}, "")
				}
			}
		}
		if r.HasNamedPorts {
			names.named = namedSetName(p.Key, d, r)
			fresh := false
			for _, f := range fams {
				fresh = s.addSetOnce(f.name(names.named), &set{typ: f.ip + " daddr . " + portKey, typeOf: true}) || fresh
			}
			if fresh {
				for _, ap := range r.NamedPorts {
					s.element(famOf(ap.Addr).name(names.named), []string{ap.Addr.String(), ap.Protocol.String(), itoa(int(ap.Port))}, "")
				}
			}
		}
		rules = append(rules, ruleShapes(r, names, peerField, allow)...)
	}
	s.addChain(chain, rules)
}

// ruleShapes returns the nft rules of one policy rule: per family when it
// names peers or named ports (an address is of one family), once when not.
func ruleShapes(r policy.Rule, names ruleSets, peerField, allow string) []string {
	var out []string
	perFamily := !r.AnyPeer || r.HasNamedPorts
	for _, f := range fams {
		if !perFamily && f.is6 {
			break
		}
		// A peer is a selected pod or an ipBlock address: one rule for
		// each kind the spec has (nft cannot OR two lookups).
		peers := []string{""}
		if !r.AnyPeer {
			peers = nil
			for _, set := range []string{names.pods, names.blocks} {
				if set != "" {
					peers = append(peers, fmt.Sprintf("%s %s @%s ", f.ip, peerField, f.name(set)))
				}
			}
		}
		for _, peer := range peers {
			if r.AnyPort {
				out = append(out, peer+allow)
				continue
			}
			if len(r.Ports) > 0 && (f == famV4 || !r.AnyPeer) {
				// Numbered ports need no family of their own: with any
				// peer the rule is written once, with the v4 rules.
				out = append(out, fmt.Sprintf("%s%s @%s %s", peer, portKey, names.ports, allow))
			}
			if r.HasNamedPorts {
				out = append(out, fmt.Sprintf("%s%s daddr . %s @%s %s", peer, f.ip, portKey, f.name(names.named), allow))
			}
		}
	}
	return out
}

// ruleSets names the sets one rule uses ("" for none); peers and named
// get the family suffix.
type ruleSets struct {
	pods, blocks, ports, named string
}

// peerSetName: rules with the same selector peers (or ipBlock peers), in
// any policy, share one set (policy.Rule.PodPeerKey, BlockPeerKey);
// unreadable peers get a set of their own.
func peerSetName(k policy.PolicyKey, d policy.Direction, r policy.Rule, prefix, key string) string {
	if key == "" {
		return fmt.Sprintf("%s/%d/%s", policyChain(k, d), r.Index, strings.TrimSuffix(prefix, "/"))
	}
	return prefix + shortHash(key)
}

// portsSetName: equal port lists share one set, named by their content.
func portsSetName(ports []policy.PortRange) string {
	return prefixPorts + shortHash(fmt.Sprint(ports))
}

// namedSetName: egress named ports are shared like peers
// (policy.Rule.NamedKey); ingress ones depend on the pods the policy
// selects and belong to the policy.
func namedSetName(k policy.PolicyKey, d policy.Direction, r policy.Rule) string {
	if r.NamedKey == "" {
		return fmt.Sprintf("%s/%d/named", policyChain(k, d), r.Index)
	}
	return prefixNamed + shortHash(r.NamedKey)
}
