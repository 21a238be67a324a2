package policy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

const (
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
)

// check is "src>dst proto/port verdict [ns/policy#rule]": the flow's
// verdict and, for an allow by a rule, the rule that must have decided.
type check string

func (c check) parse(t *testing.T, fam int) (Flow, Verdict, string) {
	t.Helper()
	f := strings.Fields(string(c))
	ends := strings.Split(f[0], ">")
	pp := strings.Split(f[1], "/")
	n, err := strconv.Atoi(pp[1])
	if err != nil {
		t.Fatalf("check %q: %v", c, err)
	}
	protos := map[string]Protocol{"tcp": TCP, "udp": UDP, "sctp": SCTP, "icmp": 1}
	flow := Flow{Src: addrOf(fam, ends[0]), Dst: addrOf(fam, ends[1]), Protocol: protos[pp[0]], Port: uint16(n)}
	if !flow.Src.IsValid() || !flow.Dst.IsValid() {
		t.Fatalf("check %q: unknown endpoint", c)
	}
	v := map[string]Verdict{"allow": Allow, "deny": Deny}[f[2]]
	by := ""
	if len(f) > 3 {
		by = f[3]
	}
	return flow, v, by
}

// decidedBy returns "ns/name#rule" of the rules that allowed.
func decidedBy(r Result) string {
	var parts []string
	for _, d := range r.Decisions {
		if d.Rule >= 0 {
			parts = append(parts, fmt.Sprintf("%s#%d", d.Policy, d.Rule))
		}
	}
	return strings.Join(parts, ",")
}

type evalCase struct {
	name     string
	policies []*networkingv1.NetworkPolicy
	checks   []check
}

func runEvalCases(t *testing.T, cases []evalCase) {
	for _, tc := range cases {
		for fam := range families {
			t.Run(tc.name+"/"+families[fam].Name, func(t *testing.T) {
				m := mustCompile(t, testInput(tc.policies...))
				for _, c := range tc.checks {
					flow, want, by := c.parse(t, fam)
					got := m.Evaluate(flow)
					if got.Verdict != want || (by != "" && decidedBy(got) != by) {
						t.Errorf("%s: got %s (decided by %q), want %s %s\n%s", c, got.Verdict, decidedBy(got), want, by, got)
					}
				}
			})
		}
	}
}

func TestEvaluateIsolation(t *testing.T) {
	runEvalCases(t, []evalCase{
		{name: "no policy allows everything", checks: []check{
			"a/y>a/x tcp/1 allow", "a/x>ext udp/53 allow", "b/z>c/w tcp/80 allow",
		}},
		{name: "default deny ingress (empty policyTypes, no rules)", policies: []*networkingv1.NetworkPolicy{
			np("a", "deny", "", nil, nil, nil),
		}, checks: []check{
			"a/y>a/x tcp/8080 deny", "b/z>a/x udp/53 deny", "c/w>a/y tcp/1 deny", "a/x>a/x tcp/8080 deny",
			"ext>a/x icmp/0 deny",
			// Egress is not isolated by an ingress-only policy.
			"a/x>c/w tcp/80 allow", "a/x>ext tcp/443 allow",
			// Namespace c is not selected.
			"a/x>c/w tcp/1 allow",
		}},
		{name: "default deny egress", policies: []*networkingv1.NetworkPolicy{
			np("a", "deny", "", egressOnly, nil, nil),
		}, checks: []check{
			"a/x>c/w tcp/80 deny", "a/x>ext udp/53 deny", "a/x>node tcp/10250 deny", "a/x>a/y tcp/9090 deny",
			"c/w>a/x tcp/8080 allow", "b/z>a/y tcp/1 allow",
		}},
		{name: "policyTypes empty with egress rules isolates both", policies: []*networkingv1.NetworkPolicy{
			np("a", "p", "x", nil, nil, egressRules(out(peers(podPeer("y"))))),
		}, checks: []check{
			"a/y>a/x tcp/8080 deny", "a/x>a/y tcp/9090 allow a/p#0", "a/x>c/w tcp/1 deny",
		}},
		{name: "policyTypes Egress ignores ingress rules", policies: []*networkingv1.NetworkPolicy{
			np("a", "p", "x", egressOnly, ingressRules(in(nil)), nil),
		}, checks: []check{
			"c/w>a/x tcp/8080 allow", "a/x>c/w tcp/1 deny",
		}},
		{name: "policyTypes Ingress ignores egress rules", policies: []*networkingv1.NetworkPolicy{
			np("a", "p", "x", ingressOnly, nil, egressRules(out(peers(podPeer("y"))))),
		}, checks: []check{
			"a/x>c/w tcp/1 allow", "c/w>a/x tcp/8080 deny",
		}},
		{name: "pod selector limits isolation", policies: []*networkingv1.NetworkPolicy{
			np("a", "deny-x", "x", ingressOnly, nil, nil),
		}, checks: []check{
			"c/w>a/x tcp/8080 deny", "c/w>a/y tcp/9090 allow",
		}},
		{name: "traffic from the own node is always allowed", policies: []*networkingv1.NetworkPolicy{
			np("a", "deny", "", both, nil, nil),
		}, checks: []check{
			"node>a/x tcp/8080 allow", "node>a/y udp/53 allow",
			// Another node is just an address.
			"node2>a/x tcp/8080 deny",
			// The pod's own egress to its node is still isolated.
			"a/x>node tcp/22 deny",
		}},
		{name: "both sides must allow", policies: []*networkingv1.NetworkPolicy{
			np("a", "x-out", "x", egressOnly, nil, egressRules(out(nil))),
			np("c", "w-in", "", ingressOnly, ingressRules(in(peers(nsPodPeer("team-a-none", "x")))), nil),
		}, checks: []check{
			"a/x>c/w tcp/80 deny", "a/x>a/y tcp/80 allow a/x-out#0",
		}},
	})
}

func TestEvaluatePeers(t *testing.T) {
	runEvalCases(t, []evalCase{
		{name: "rule without from allows every source", policies: []*networkingv1.NetworkPolicy{
			np("a", "all", "x", ingressOnly, ingressRules(in(nil)), nil),
		}, checks: []check{
			"b/z>a/x tcp/1 allow a/all#0", "ext>a/x udp/9 allow a/all#0", "ext-far>a/x icmp/0 allow a/all#0",
		}},
		{name: "podSelector peer is the policy's namespace", policies: []*networkingv1.NetworkPolicy{
			np("a", "from-y", "x", ingressOnly, ingressRules(in(peers(podPeer("y")))), nil),
		}, checks: []check{
			"a/y>a/x tcp/8080 allow a/from-y#0", "b/z>a/x tcp/8080 deny", "c/w>a/x tcp/8080 deny",
		}},
		{name: "empty podSelector peer: every pod of the namespace", policies: []*networkingv1.NetworkPolicy{
			np("c", "from-c", "", ingressOnly, ingressRules(in(peers(podPeer("")))), nil),
			np("a", "from-a", "", ingressOnly, ingressRules(in(peers(nsPodPeer("a", "")))), nil),
		}, checks: []check{
			"c/w>c/w tcp/1 allow c/from-c#0", "a/x>c/w tcp/1 deny",
			"a/x>a/y tcp/1 allow a/from-a#0", "c/w>a/y tcp/1 deny",
		}},
		{name: "namespaceSelector peer", policies: []*networkingv1.NetworkPolicy{
			np("a", "from-b", "", ingressOnly, ingressRules(in(peers(nsPeer("b")))), nil),
		}, checks: []check{
			"b/z>a/x tcp/8080 allow a/from-b#0", "a/y>a/x tcp/8080 deny", "c/w>a/x tcp/8080 deny",
		}},
		{name: "empty namespaceSelector: every namespace's pods, no external", policies: []*networkingv1.NetworkPolicy{
			np("a", "from-pods", "x", ingressOnly, ingressRules(in(peers(nsPeer("")))), nil),
		}, checks: []check{
			"b/z>a/x tcp/8080 allow", "c/w>a/x tcp/8080 allow", "a/y>a/x tcp/1 allow", "ext>a/x tcp/8080 deny",
			"node2>a/x tcp/8080 deny",
		}},
		{name: "namespaceSelector and podSelector together", policies: []*networkingv1.NetworkPolicy{
			np("c", "from-b-z", "", ingressOnly, ingressRules(in(peers(nsPodPeer("b", "z")))), nil),
			np("a", "from-any-w", "x", ingressOnly, ingressRules(in(peers(nsPodPeer("", "w")))), nil),
		}, checks: []check{
			"b/z>c/w tcp/1 allow c/from-b-z#0", "a/x>c/w tcp/1 deny",
			"c/w>a/x tcp/1 allow a/from-any-w#0", "b/z>a/x tcp/1 deny",
		}},
		{name: "host-network pods are neither selected nor peers", policies: []*networkingv1.NetworkPolicy{
			np("a", "x-from-x", "x", ingressOnly, ingressRules(in(peers(podPeer("x")))), nil),
		}, checks: []check{
			// a/h carries app=x but its address (the node's) is no peer;
			// from the own node it is allowed anyway, from node2 not.
			"a/x>a/x tcp/1 allow a/x-from-x#0", "node2>a/x tcp/1 deny", "node>a/x tcp/1 allow",
		}},
		{name: "ipBlock with except", policies: []*networkingv1.NetworkPolicy{
			np("a", "ext", "x", both, ingressRules(in(blockPeers(true))), egressRules(out(blockPeers(true)))),
		}, checks: []check{
			"ext>a/x tcp/8080 allow a/ext#0", "ext-except>a/x tcp/8080 deny", "ext-far>a/x tcp/8080 deny",
			"a/x>ext udp/53 allow a/ext#0", "a/x>ext-except udp/53 deny", "a/x>ext-far udp/53 deny",
			"a/y>a/x tcp/8080 deny",
		}},
		{name: "ipBlock without except", policies: []*networkingv1.NetworkPolicy{
			np("a", "ext", "x", ingressOnly, ingressRules(in(blockPeers(false))), nil),
		}, checks: []check{
			"ext>a/x tcp/8080 allow", "ext-except>a/x tcp/8080 allow", "ext-far>a/x tcp/8080 deny",
		}},
		{name: "ipBlock covering pods matches their addresses", policies: []*networkingv1.NetworkPolicy{
			np("a", "pods-cidr", "x", egressOnly, nil, egressRules(out(peers(
				networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.2.0.0/16"}},
				networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "fd02::/16"}})))),
		}, checks: []check{
			"a/x>b/z tcp/7070 allow", "a/x>a/y tcp/9090 deny",
		}},
	})
}

func TestEvaluatePorts(t *testing.T) {
	runEvalCases(t, []evalCase{
		{name: "rule without ports allows every port and protocol", policies: []*networkingv1.NetworkPolicy{
			np("a", "y", "x", ingressOnly, ingressRules(in(peers(podPeer("y")))), nil),
		}, checks: []check{
			"a/y>a/x tcp/1 allow", "a/y>a/x udp/65535 allow", "a/y>a/x sctp/9 allow", "a/y>a/x icmp/0 allow",
		}},
		{name: "numbered ports per protocol", policies: []*networkingv1.NetworkPolicy{
			np("a", "p", "x", ingressOnly, ingressRules(in(nil, port(tcp, 80), port(udp, 53), port(sctp, 9))), nil),
		}, checks: []check{
			"c/w>a/x tcp/80 allow a/p#0", "c/w>a/x udp/53 allow", "c/w>a/x sctp/9 allow",
			"c/w>a/x tcp/53 deny", "c/w>a/x udp/80 deny", "c/w>a/x tcp/81 deny", "c/w>a/x icmp/0 deny",
		}},
		{name: "protocol without a port: every port of it", policies: []*networkingv1.NetworkPolicy{
			np("a", "p", "x", ingressOnly, ingressRules(in(nil, protoOnly(udp))), nil),
		}, checks: []check{
			"c/w>a/x udp/1 allow", "c/w>a/x udp/65535 allow", "c/w>a/x tcp/1 deny",
		}},
		{name: "port without protocol is TCP", policies: []*networkingv1.NetworkPolicy{
			np("a", "p", "x", ingressOnly, ingressRules(in(nil, networkingv1.NetworkPolicyPort{Port: port(tcp, 80).Port})), nil),
		}, checks: []check{
			"c/w>a/x tcp/80 allow", "c/w>a/x udp/80 deny",
		}},
		{name: "endPort range", policies: []*networkingv1.NetworkPolicy{
			np("a", "p", "x", both, ingressRules(in(nil, portRange(tcp, 8000, 8100))), egressRules(out(nil, portRange(udp, 30000, 30010)))),
		}, checks: []check{
			"c/w>a/x tcp/8000 allow", "c/w>a/x tcp/8050 allow", "c/w>a/x tcp/8100 allow",
			"c/w>a/x tcp/7999 deny", "c/w>a/x tcp/8101 deny", "c/w>a/x udp/8050 deny",
			"a/x>ext udp/30000 allow", "a/x>ext udp/30010 allow", "a/x>ext udp/30011 deny",
		}},
		{name: "named port, ingress: resolved per destination pod", policies: []*networkingv1.NetworkPolicy{
			np("a", "http", "", ingressOnly, ingressRules(in(nil, namedPortRef(tcp, "http"))), nil),
		}, checks: []check{
			"c/w>a/x tcp/8080 allow a/http#0", "c/w>a/y tcp/9090 allow a/http#0",
			// x's http is 8080, y's is 9090: no cross-over.
			"c/w>a/x tcp/9090 deny", "c/w>a/y tcp/8080 deny",
		}},
		{name: "named port must match the protocol", policies: []*networkingv1.NetworkPolicy{
			np("a", "dns", "x", ingressOnly, ingressRules(in(nil, namedPortRef(udp, "dns"), namedPortRef(udp, "http"))), nil),
		}, checks: []check{
			"c/w>a/x udp/53 allow", "c/w>a/x tcp/53 deny", "c/w>a/x udp/8080 deny", "c/w>a/x tcp/8080 deny",
		}},
		{name: "named port, pod without the name is not matched", policies: []*networkingv1.NetworkPolicy{
			np("c", "http", "", ingressOnly, ingressRules(in(nil, namedPortRef(tcp, "http"))), nil),
		}, checks: []check{
			"a/x>c/w tcp/8080 deny", "a/x>c/w tcp/80 deny",
		}},
		{name: "named port, egress: resolved per peer pod", policies: []*networkingv1.NetworkPolicy{
			np("a", "http-out", "x", egressOnly, nil, egressRules(out(peers(nsPeer("")), namedPortRef(tcp, "http")))),
		}, checks: []check{
			"a/x>b/z tcp/7070 allow a/http-out#0", "a/x>a/y tcp/9090 allow", "a/x>b/z tcp/9090 deny",
			"a/x>a/y tcp/7070 deny", "a/x>c/w tcp/8080 deny", "a/x>ext tcp/8080 deny",
		}},
		{name: "named port, egress to any peer: only pods define names", policies: []*networkingv1.NetworkPolicy{
			np("a", "http-out", "x", egressOnly, nil, egressRules(out(nil, namedPortRef(tcp, "http")))),
		}, checks: []check{
			"a/x>b/z tcp/7070 allow", "a/x>ext tcp/7070 deny",
		}},
		{name: "numbered and named ports in one rule", policies: []*networkingv1.NetworkPolicy{
			np("a", "mix", "", ingressOnly, ingressRules(in(nil, port(tcp, 1000), namedPortRef(tcp, "http"))), nil),
		}, checks: []check{
			"c/w>a/x tcp/1000 allow", "c/w>a/x tcp/8080 allow", "c/w>a/y tcp/9090 allow", "c/w>a/y tcp/8080 deny",
		}},
		{name: "peers and ports are a product", policies: []*networkingv1.NetworkPolicy{
			np("a", "p", "x", ingressOnly, ingressRules(in(peers(podPeer("y"), nsPeer("b")), port(tcp, 80), port(udp, 53))), nil),
		}, checks: []check{
			"a/y>a/x tcp/80 allow", "a/y>a/x udp/53 allow", "b/z>a/x tcp/80 allow", "b/z>a/x udp/53 allow",
			"a/y>a/x tcp/53 deny", "c/w>a/x tcp/80 deny",
		}},
	})
}

func TestEvaluateUnion(t *testing.T) {
	runEvalCases(t, []evalCase{
		{name: "rules of one policy are unioned", policies: []*networkingv1.NetworkPolicy{
			np("a", "p", "x", ingressOnly, ingressRules(in(peers(podPeer("y")), port(tcp, 80)), in(peers(nsPodPeer("", "w")), port(tcp, 81))), nil),
		}, checks: []check{
			"a/y>a/x tcp/80 allow a/p#0", "c/w>a/x tcp/81 allow a/p#1", "a/y>a/x tcp/81 deny", "c/w>a/x tcp/80 deny",
		}},
		{name: "policies are unioned; a deny-all adds nothing", policies: []*networkingv1.NetworkPolicy{
			np("a", "deny", "", ingressOnly, nil, nil),
			np("a", "p1", "x", ingressOnly, ingressRules(in(peers(podPeer("y")))), nil),
			np("a", "p2", "x", ingressOnly, ingressRules(in(peers(nsPeer("b")))), nil),
		}, checks: []check{
			"a/y>a/x tcp/80 allow a/p1#0", "b/z>a/x tcp/80 allow a/p2#0", "c/w>a/x tcp/80 deny",
			"a/x>a/y tcp/80 deny",
		}},
		{name: "an ingress-only policy does not open egress isolated by another", policies: []*networkingv1.NetworkPolicy{
			np("a", "deny-out", "x", egressOnly, nil, nil),
			np("a", "allow-in", "x", ingressOnly, ingressRules(in(nil)), nil),
		}, checks: []check{
			"a/x>c/w tcp/80 deny", "c/w>a/x tcp/80 allow a/allow-in#0",
		}},
	})
}

func TestEvaluateNamesTheDeciders(t *testing.T) {
	m := mustCompile(t, testInput(
		np("a", "deny", "", ingressOnly, nil, nil),
		np("a", "web", "x", ingressOnly, ingressRules(in(nil, port(tcp, 80))), nil),
	))
	r := m.Evaluate(Flow{Src: addrOf(0, "c/w"), Dst: addrOf(0, "a/x"), Protocol: TCP, Port: 81})
	want := "10.1.0.3 -> 10.1.0.1 tcp/81: deny\n" +
		"  egress of c/w: allow [default] no tier isolates the pod\n" +
		"  ingress of a/x: deny [networkpolicy] isolated by a/deny, a/web; no rule allows"
	if r.String() != want {
		t.Errorf("got\n%s\nwant\n%s", r, want)
	}
	r = m.Evaluate(Flow{Src: addrOf(0, "c/w"), Dst: addrOf(0, "a/x"), Protocol: TCP, Port: 80})
	want = "10.1.0.3 -> 10.1.0.1 tcp/80: allow\n" +
		"  egress of c/w: allow [default] no tier isolates the pod\n" +
		"  ingress of a/x: allow by a/web ingress rule 0 [networkpolicy] allowed by a rule"
	if r.String() != want {
		t.Errorf("got\n%s\nwant\n%s", r, want)
	}
}

// denyPortTier stands in for an admin tier: it denies one port, and
// allows another, whatever the NetworkPolicies say.
type denyPortTier struct{}

func (denyPortTier) Name() string { return "admin" }

func (denyPortTier) Decide(_ *Model, d Direction, pod *LocalPod, f Flow) Decision {
	dec := Decision{Direction: d, Pod: pod.String(), Rule: -1}
	switch f.Port {
	case 22:
		dec.Verdict, dec.Reason = Deny, "admin deny"
	case 8080:
		dec.Verdict, dec.Reason = Allow, "admin allow"
	}
	return dec
}

// TestTiersDecideInOrder checks the pipeline: a tier before NetworkPolicy
// that allows or denies decides; when it passes, NetworkPolicy decides;
// when every tier passes, the flow is allowed.
func TestTiersDecideInOrder(t *testing.T) {
	m := mustCompile(t, testInput(np("a", "web", "x", ingressOnly, ingressRules(in(nil, port(tcp, 22), port(tcp, 80))), nil)))
	tiers := []Tier{denyPortTier{}, NetworkPolicyTier{}, passTier("baseline")}
	for _, c := range []struct {
		dst  string
		port uint16
		want Verdict
		tier string
	}{
		{"a/x", 22, Deny, "admin"},          // NetworkPolicy would allow
		{"a/x", 8080, Allow, "admin"},       // NetworkPolicy would deny
		{"a/x", 80, Allow, "networkpolicy"}, // admin passes
		{"a/x", 81, Deny, "networkpolicy"},
		{"a/y", 81, Allow, ""}, // every tier passes: not isolated
	} {
		r := m.EvaluateTiers(tiers, Flow{Src: addrOf(0, "b/z"), Dst: addrOf(0, c.dst), Protocol: TCP, Port: c.port})
		if r.Verdict != c.want || r.Decisions[0].Tier != c.tier {
			t.Errorf("%s:%d: got %s by %q, want %s by %q", c.dst, c.port, r.Verdict, r.Decisions[0].Tier, c.want, c.tier)
		}
	}
}
