package e2e

import (
	"net/netip"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// truthCases are the suite's cases. Every case starts from no policy (checked: everything reaches
// everything), so its expectations are relative to an open cluster. In the predicates, a rule
// reads "to.ns != x || ...": traffic into an isolated pod passes only if some rule allows it.
func truthCases() []truthCase {
	return append(append(selectorCases(), blockAndPortCases()...), changeAndServiceCases()...)
}

// one is a case of a single step.
func one(name string, policies func(w *truthWorld) []*networkingv1.NetworkPolicy, allowed allowFunc) truthCase {
	return truthCase{name: name, steps: func(w *truthWorld) []truthStep {
		ps := policies(w)
		return []truthStep{{what: name, do: func(w *truthWorld) { w.apply(ps...) }, allowed: allowed}}
	}}
}

func selectorCases() []truthCase {
	x := "x"
	return []truthCase{
		one("default deny ingress in x", pols(policy(x, "deny-in", sel(), ingressOnly, nil, nil)),
			func(_, to *truthPod, _ probeKind) bool { return to.ns != "x" }),
		one("default deny egress in x", pols(policy(x, "deny-out", sel(), egressOnly, nil, nil)),
			func(from, _ *truthPod, _ probeKind) bool { return from.ns != "x" }),
		one("deny all ingress and egress in x", pols(policy(x, "deny-all", sel(), bothWays, nil, nil)),
			func(from, to *truthPod, _ probeKind) bool { return from.ns != "x" && to.ns != "x" }),
		one("allow all ingress into x with an empty rule ({})", pols(policy(x, "allow-in", sel(), ingressOnly, []inRule{{}}, nil)),
			allowAll),
		one("deny all and allow all ingress into x: policies are unioned, so all is allowed",
			pols(policy(x, "deny-in", sel(), ingressOnly, nil, nil), policy(x, "allow-in", sel(), ingressOnly, []inRule{{}}, nil)),
			allowAll),
		one("allow all egress from x with an empty rule ({})", pols(policy(x, "allow-out", sel(), egressOnly, nil, []outRule{{}})),
			allowAll),
		one("ingress into x from namespace y (namespaceSelector)",
			pols(policy(x, "from-y", sel(), ingressOnly, []inRule{from(peers(nsPeer(podsOfNS("y"))))}, nil)),
			func(from, to *truthPod, _ probeKind) bool { return to.ns != "x" || from.ns == "y" }),
		one("ingress into x/a from pod b of namespace y (namespaceSelector and podSelector in one peer)",
			pols(policy(x, "from-yb", podNamed("a"), ingressOnly, []inRule{from(peers(nsPodsPeer(podsOfNS("y"), podNamed("b"))))}, nil)),
			func(from, to *truthPod, _ probeKind) bool { return !to.is("x/a") || from.is("y/b") }),
		one("ingress into x/a from pod b of its own namespace (podSelector only)",
			pols(policy(x, "from-b", podNamed("a"), ingressOnly, []inRule{from(peers(podsPeer(podNamed("b"))))}, nil)),
			func(from, to *truthPod, _ probeKind) bool { return !to.is("x/a") || from.is("x/b") }),
		one("ingress into x from namespace y or from x's own pod a (two peers are ORed)",
			pols(policy(x, "from-y-or-a", sel(), ingressOnly, []inRule{from(peers(nsPeer(podsOfNS("y")), podsPeer(podNamed("a"))))}, nil)),
			func(from, to *truthPod, _ probeKind) bool { return to.ns != "x" || from.ns == "y" || from.is("x/a") }),
		one("ingress into x from pods b of every namespace (namespaceSelector {} with a podSelector)",
			pols(policy(x, "from-any-b", sel(), ingressOnly, []inRule{from(peers(nsPodsPeer(sel(), podNamed("b"))))}, nil)),
			func(from, to *truthPod, _ probeKind) bool { return to.ns != "x" || from.name == "b" }),
		{name: "ingress into x from every pod (namespaceSelector {} and podSelector {}): a node other than the pod's own is no pod",
			steps: func(w *truthWorld) []truthStep {
				p := policy(x, "from-all-pods", sel(), ingressOnly, []inRule{from(peers(nsPodsPeer(sel(), sel())))}, nil)
				var extras []extraProbe
				for _, v6 := range w.families {
					xa := w.pod("x/a").ip(v6)
					extras = append(extras,
						extraProbe{from: "node1", target: target("tcp", xa, 80), what: "(x/a from its own node)", want: true},
						extraProbe{from: "node2", target: target("tcp", xa, 80), what: "(x/a from another node)", want: false})
				}
				return []truthStep{{what: "namespaceSelector {} and podSelector {}", do: func(w *truthWorld) { w.apply(p) },
					allowed: allowAll, extras: extras}}
			}},
		one("ingress into x from namespaces y and z by expression (ns In [y, z])",
			pols(policy(x, "from-y-z", sel(), ingressOnly, []inRule{from(peers(nsPeer(selExpr(nsLabel, metav1.LabelSelectorOpIn, "y", "z"))))}, nil)),
			func(from, to *truthPod, _ probeKind) bool { return to.ns != "x" || in(from.ns, "y", "z") }),
		one("ingress into x from x's pods other than a by expression (pod NotIn [a])",
			pols(policy(x, "from-not-a", sel(), ingressOnly, []inRule{from(peers(podsPeer(selExpr(podLabel, metav1.LabelSelectorOpNotIn, "a"))))}, nil)),
			func(from, to *truthPod, _ probeKind) bool {
				return to.ns != "x" || (from.ns == "x" && from.name != "a")
			}),
		one("a policy selecting x/a and x/b by expression (pod In [a, b]) denies their ingress; x/c stays open",
			pols(policy(x, "deny-ab", selExpr(podLabel, metav1.LabelSelectorOpIn, "a", "b"), ingressOnly, nil, nil)),
			func(_, to *truthPod, _ probeKind) bool { return !(to.ns == "x" && in(to.name, "a", "b")) }),
		one("a policy selecting no pod changes nothing",
			pols(policy(x, "selects-nobody", podNamed("nobody"), bothWays, nil, nil)),
			allowAll),
		one("ingress and egress in one policy on x/a: in from y, out to z",
			pols(policy(x, "a-in-y-out-z", podNamed("a"), bothWays,
				[]inRule{from(peers(nsPeer(podsOfNS("y"))))}, []outRule{to(peers(nsPeer(podsOfNS("z"))))})),
			func(from, to *truthPod, _ probeKind) bool {
				return (!from.is("x/a") || to.ns == "z") && (!to.is("x/a") || from.ns == "y")
			}),
		one("both ends must allow: y sends only to x, x accepts only from y",
			pols(policy("y", "out-to-x", sel(), egressOnly, nil, []outRule{to(peers(nsPeer(podsOfNS("x"))))}),
				policy(x, "in-from-y", sel(), ingressOnly, []inRule{from(peers(nsPeer(podsOfNS("y"))))}, nil)),
			func(from, to *truthPod, _ probeKind) bool {
				return (from.ns != "y" || to.ns == "x") && (to.ns != "x" || from.ns == "y")
			}),
		one("egress from x within its namespace only (podSelector {})",
			pols(policy(x, "out-own-ns", sel(), egressOnly, nil, []outRule{to(peers(podsPeer(sel())))})),
			func(from, to *truthPod, _ probeKind) bool { return from.ns != "x" || to.ns == "x" }),
		one("policyTypes left empty with egress rules isolates both directions",
			pols(policy(x, "implicit-types", sel(), nil, nil, []outRule{to(peers(nsPeer(podsOfNS("z"))))})),
			func(from, to *truthPod, _ probeKind) bool { return (from.ns != "x" || to.ns == "z") && to.ns != "x" }),
		one("policyTypes [Ingress] ignores the policy's egress rules",
			pols(policy(x, "ingress-only", sel(), ingressOnly, nil, []outRule{to(peers(nsPeer(podsOfNS("z"))))})),
			func(_, to *truthPod, _ probeKind) bool { return to.ns != "x" }),
	}
}

// pols wraps fixed policies for one().
func pols(ps ...*networkingv1.NetworkPolicy) func(*truthWorld) []*networkingv1.NetworkPolicy {
	return func(*truthWorld) []*networkingv1.NetworkPolicy { return ps }
}

// podIPs are the addresses of pods (every family).
func (w *truthWorld) podIPs(ids ...string) []netip.Addr {
	var out []netip.Addr
	for _, id := range ids {
		out = append(out, w.pod(id).ips...)
	}
	return out
}

// nodePodCIDRs are node i's pod CIDRs of every family.
func (w *truthWorld) nodePodCIDRs(i int) []netip.Prefix { return w.podCIDRs[i] }
