package nftables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/policy"
)

// policyTracer walks a first packet through the policy table held by a
// knftables.Fake: it interprets exactly the rule grammar this package
// writes (and panics on anything else, so a new rule shape is noticed).
// It stands in for the shared nft packet tracer (internal nfttrace, being
// lifted out of the proxy's tests), which does not read interval ranges
// or named counters yet; replace it once that one does.
//
// Hooks: a packet from one of the node's addresses is the node's own
// (output: nothing evaluated); to one of them it goes through input
// (input-egress); anything else through forward (forward-egress, then
// forward-ingress: an accept ends only its own base chain).
type policyTracer struct {
	table   *knftables.FakeTable
	nodeIPs map[netip.Addr]bool
}

func newPolicyTracer(fake *knftables.Fake, nodeIPs []netip.Addr) *policyTracer {
	t := &policyTracer{table: fake.Table, nodeIPs: map[netip.Addr]bool{}}
	for _, a := range nodeIPs {
		t.nodeIPs[a] = true
	}
	return t
}

// verdict returns Allow or Deny for the first packet of f and the allow
// counters that counted it.
func (t *policyTracer) verdict(f policy.Flow) (policy.Verdict, []string) {
	if t.table == nil || t.nodeIPs[f.Src] {
		return policy.Allow, nil
	}
	chains := []string{chainForwardEgress, chainForwardIngress}
	if t.nodeIPs[f.Dst] {
		chains = []string{chainInputEgress}
	}
	var counted []string
	for _, c := range chains {
		v, cs := t.run(c, f)
		counted = append(counted, cs...)
		if v == "drop" {
			return policy.Deny, counted
		}
	}
	return policy.Allow, counted
}

// run evaluates chain: "accept", "drop" or "" (fell off the end).
func (t *policyTracer) run(chain string, f policy.Flow) (string, []string) {
	c := t.table.Chains[chain]
	if c == nil {
		panic("tracer: no chain " + chain)
	}
	var counted []string
	for _, r := range c.Rules {
		v, cs := t.rule(r.Rule, f)
		counted = append(counted, cs...)
		if v != "" {
			return v, counted
		}
	}
	return "", counted
}

// rule evaluates one rule: its verdict, or "" to go on.
func (t *policyTracer) rule(text string, f policy.Flow) (string, []string) {
	toks := strings.Fields(text)
	var counted []string
	for len(toks) > 0 {
		switch {
		case toks[0] == "ct" && strings.Join(toks[:3], " ") == "ct state established,related":
			return "", nil // a first packet is new
		case toks[0] == "icmpv6" && toks[1] == "type":
			return "", nil // neighbour discovery: never a traced flow
		case toks[0] == "accept" || toks[0] == "drop":
			return toks[0], counted
		case toks[0] == "jump" || toks[0] == "goto":
			v, cs := t.run(toks[1], f)
			counted = append(counted, cs...)
			if v != "" || toks[0] == "goto" {
				return v, counted
			}
			toks = toks[2:]
		case toks[0] == "counter" && toks[1] == "name":
			counted = append(counted, toks[2])
			toks = toks[3:]
		default:
			n, key, ok := t.key(toks, f)
			if !ok {
				return "", nil // wrong family
			}
			toks = toks[n:]
			switch toks[0] {
			case "vmap":
				v := t.lookup(toks[1][1:], key, true)
				if v == "" {
					return "", counted
				}
				return t.rule(v, f)
			default:
				if !strings.HasPrefix(toks[0], "@") {
					panic("tracer: cannot read " + text)
				}
				if t.lookup(toks[0][1:], key, false) == "" {
					return "", nil
				}
				toks = toks[1:]
			}
		}
	}
	return "", counted
}

// key reads a key expression (fields joined by " . ") at toks: how many
// tokens it took and its values; ok false if the packet is of the other
// IP family.
func (t *policyTracer) key(toks []string, f policy.Flow) (int, []string, bool) {
	var vals []string
	i := 0
	for {
		switch {
		case (toks[i] == "ip" || toks[i] == "ip6") && (toks[i+1] == "saddr" || toks[i+1] == "daddr"):
			if (toks[i] == "ip6") != f.Src.Is6() {
				return 0, nil, false
			}
			a := f.Src
			if toks[i+1] == "daddr" {
				a = f.Dst
			}
			vals = append(vals, a.String())
			i += 2
		case toks[i] == "meta" && toks[i+1] == "l4proto":
			vals = append(vals, f.Protocol.String())
			i += 2
		case toks[i] == "th" && toks[i+1] == "dport":
			vals = append(vals, strconv.Itoa(int(f.Port)))
			i += 2
		default:
			panic(fmt.Sprintf("tracer: cannot read key at %q", strings.Join(toks[i:], " ")))
		}
		if i < len(toks) && toks[i] == "." {
			i++
			continue
		}
		return i, vals, true
	}
}

// lookup finds key in a set (returns "member") or map (returns the
// value); "" when absent. Elements may be ranges "a-b" and prefixes.
func (t *policyTracer) lookup(name string, key []string, isMap bool) string {
	var elems []*knftables.Element
	if isMap {
		elems = t.table.Maps[name].Elements
	} else if s := t.table.Sets[name]; s != nil {
		elems = s.Elements
	} else {
		panic("tracer: no set " + name)
	}
	for _, e := range elems {
		if matchFields(e.Key, key) {
			if isMap {
				return strings.Join(e.Value, " ")
			}
			return "member"
		}
	}
	return ""
}

func matchFields(elem, key []string) bool {
	if len(elem) != len(key) {
		return false
	}
	for i := range elem {
		if !matchField(elem[i], key[i]) {
			return false
		}
	}
	return true
}

// matchField matches one value against an element field: equal, inside a
// prefix, or inside a range of addresses or ports.
func matchField(elem, v string) bool {
	if elem == v {
		return true
	}
	if p, err := netip.ParsePrefix(elem); err == nil {
		a, err := netip.ParseAddr(v)
		return err == nil && p.Contains(a)
	}
	lo, hi, ok := strings.Cut(elem, "-")
	if !ok {
		return false
	}
	if a, err := netip.ParseAddr(v); err == nil {
		from, err1 := netip.ParseAddr(lo)
		to, err2 := netip.ParseAddr(hi)
		return err1 == nil && err2 == nil && !a.Less(from) && !to.Less(a)
	}
	n, err := strconv.Atoi(protocolNumber(v))
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	return err == nil && err1 == nil && err2 == nil && l <= n && n <= h
}

// protocolNumber turns a protocol name into its number (a protocol range
// such as 0-255 holds it); anything else is returned as it is.
func protocolNumber(v string) string {
	if n, ok := protocolNumbers[v]; ok {
		return strconv.Itoa(int(n))
	}
	return v
}
