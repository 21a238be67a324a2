package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// Flow is the first packet of a connection as the data plane sees it:
// after Service DNAT (Dst is the endpoint), before any SNAT of this node.
type Flow struct {
	Src, Dst netip.Addr
	Protocol Protocol
	// Port is the destination port (0 for protocols without ports).
	Port uint16
}

// String returns "src -> dst tcp/80".
func (f Flow) String() string {
	return fmt.Sprintf("%s -> %s %s/%d", f.Src, f.Dst, f.Protocol, f.Port)
}

// Verdict is what a tier says about a flow.
type Verdict uint8

// Verdicts. Pass hands the decision to the next tier.
const (
	Pass Verdict = iota
	Allow
	Deny
)

// String returns "pass", "allow" or "deny".
func (v Verdict) String() string {
	return [...]string{"pass", "allow", "deny"}[v]
}

// Decision is one direction's verdict for a flow and what decided it.
type Decision struct {
	Direction Direction
	// Pod is the local pod whose side this is (namespace/name).
	Pod string
	// Tier names the tier that decided ("" when no tier did and the
	// default applied).
	Tier    string
	Verdict Verdict
	// Policy and Rule name the allowing rule (Rule -1 and Policy zero
	// when no rule decided, e.g. a deny by isolation or a default).
	Policy PolicyKey
	Rule   int
	// Reason says why, for humans.
	Reason string
}

// String reads like "ingress of ns/pod: allow by ns/policy rule 0 (networkpolicy)".
func (d Decision) String() string {
	by := ""
	if d.Rule >= 0 {
		by = fmt.Sprintf(" by %s %s rule %d", d.Policy, d.Direction, d.Rule)
	}
	tier := d.Tier
	if tier == "" {
		tier = "default"
	}
	return fmt.Sprintf("%s of %s: %s%s [%s] %s", d.Direction, d.Pod, d.Verdict, by, tier, d.Reason)
}

// Result is the verdict for a flow with the decisions this node makes:
// egress of a local source pod, ingress of a local destination pod.
type Result struct {
	Flow      Flow
	Verdict   Verdict // Allow or Deny
	Decisions []Decision
}

// String lists the verdict and the decisions.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", r.Flow, r.Verdict)
	for _, d := range r.Decisions {
		fmt.Fprintf(&b, "\n  %s", d)
	}
	return b.String()
}

// Tier decides one direction of a flow for a local pod, or passes.
type Tier interface {
	// Name is the tier's name in decisions ("admin", "networkpolicy", …).
	Name() string
	// Decide returns the tier's decision; Verdict Pass leaves the flow to
	// the next tier.
	Decide(m *Model, d Direction, pod *LocalPod, f Flow) Decision
}

// Tiers are the decision tiers in order. The admin and baseline tiers
// (ClusterNetworkPolicy) are placeholders that always pass.
var Tiers = []Tier{passTier("admin"), NetworkPolicyTier{}, passTier("baseline")}

// Evaluate returns what this node's data plane does with the first packet
// of f: the egress side when the source is a local pod, the ingress side
// when the destination is one (traffic from the node itself is allowed).
// Both must allow.
func (m *Model) Evaluate(f Flow) Result { return m.EvaluateTiers(Tiers, f) }

// EvaluateTiers is Evaluate with the given tiers in place of Tiers (for the
// admin and baseline tiers to come, and their tests).
func (m *Model) EvaluateTiers(tiers []Tier, f Flow) Result {
	res := Result{Flow: f, Verdict: Allow}
	if src := m.PodByIP(f.Src); src != nil {
		res.add(decide(m, tiers, Egress, src, f))
	}
	if dst := m.PodByIP(f.Dst); dst != nil {
		if m.IsNodeIP(f.Src) {
			res.add(Decision{Direction: Ingress, Pod: dst.String(), Verdict: Allow, Rule: -1,
				Reason: "from the pod's own node (always allowed)"})
		} else {
			res.add(decide(m, tiers, Ingress, dst, f))
		}
	}
	return res
}

func (r *Result) add(d Decision) {
	r.Decisions = append(r.Decisions, d)
	if d.Verdict == Deny {
		r.Verdict = Deny
	}
}

// decide runs the tiers in order; the first that does not pass decides,
// and when all pass the flow is allowed.
func decide(m *Model, tiers []Tier, d Direction, pod *LocalPod, f Flow) Decision {
	for _, t := range tiers {
		if dec := t.Decide(m, d, pod, f); dec.Verdict != Pass {
			dec.Tier = t.Name()
			return dec
		}
	}
	return Decision{Direction: d, Pod: pod.String(), Verdict: Allow, Rule: -1, Reason: "no tier isolates the pod"}
}

// passTier is a tier not implemented yet: it always passes.
type passTier string

// Name returns the tier's name.
func (t passTier) Name() string { return string(t) }

// Decide passes.
func (t passTier) Decide(_ *Model, d Direction, pod *LocalPod, _ Flow) Decision {
	return Decision{Direction: d, Pod: pod.String(), Verdict: Pass, Rule: -1}
}

// NetworkPolicyTier is the networking.k8s.io/v1 NetworkPolicy tier: it
// passes for a direction no policy isolates, allows what a rule of an
// isolating policy matches (policies by namespace/name, rules in order,
// the first match named) and denies the rest.
type NetworkPolicyTier struct{}

// Name returns "networkpolicy".
func (NetworkPolicyTier) Name() string { return "networkpolicy" }

// Decide implements Tier.
func (NetworkPolicyTier) Decide(m *Model, d Direction, pod *LocalPod, f Flow) Decision {
	dec := Decision{Direction: d, Pod: pod.String(), Rule: -1}
	isolating := pod.Isolating(d)
	if len(isolating) == 0 {
		dec.Verdict, dec.Reason = Pass, "not isolated"
		return dec
	}
	peer, dst := f.Src, f.Dst
	if d == Egress {
		peer = f.Dst
	}
	for _, key := range isolating {
		rules := m.Policies[key].Rules(d)
		for i := range rules {
			if rules[i].MatchesPeer(peer) && rules[i].MatchesPort(dst, f.Protocol, f.Port) {
				dec.Verdict, dec.Policy, dec.Rule = Allow, key, rules[i].Index
				dec.Reason = "allowed by a rule"
				return dec
			}
		}
	}
	names := make([]string, len(isolating))
	for i, k := range isolating {
		names[i] = k.String()
	}
	dec.Verdict = Deny
	dec.Reason = "isolated by " + strings.Join(names, ", ") + "; no rule allows"
	return dec
}
