package nftables

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

const (
	tcp  = "TCP"
	udp  = "UDP"
	sctp = "SCTP"
)

// Lines every non-empty table has: the node's addresses.
const nodeIPLines = `
add element inet plexus-policy node-ips-v4 { 10.0.0.1 }
add element inet plexus-policy node-ips-v6 { fd00::1 }
`

func TestExactRules(t *testing.T) {
	cases := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		want     string
	}{
		{name: "no policy: only the node's addresses", want: ""},
		{name: "default deny ingress: a chain that only drops, pods of the namespace mapped, host-network pod not",
			policies: []*networkingv1.NetworkPolicy{pt.NP("a", "deny", "", nil, nil, nil)},
			want: `
add chain inet plexus-policy ingress-set/#1
add counter inet plexus-policy ingress-set/#1/allow
add counter inet plexus-policy ingress-set/#1/drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.1 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.2 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v6 { fd01::1 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v6 { fd01::2 : goto ingress-set/#1 }
add rule inet plexus-policy ingress-set/#1 counter name ingress-set/#1/drop drop
`},
		{name: "default deny egress",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "deny", "", pt.EgressOnly, nil, nil)},
			want: `
add chain inet plexus-policy egress-set/#1
add counter inet plexus-policy egress-set/#1/allow
add counter inet plexus-policy egress-set/#1/drop
add element inet plexus-policy egress-pods-v4 { 10.1.0.3 : goto egress-set/#1 }
add element inet plexus-policy egress-pods-v6 { fd01::3 : goto egress-set/#1 }
add rule inet plexus-policy egress-set/#1 counter name egress-set/#1/drop drop
`},
		{name: "rule without from and ports: every peer and protocol in the any-port set",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "all", "", pt.IngressOnly, pt.IngressRules(pt.In(nil)), nil)},
			want: `
add chain inet plexus-policy ingress-set/#1
add counter inet plexus-policy ingress-set/#1/allow
add counter inet plexus-policy ingress-set/#1/drop
add element inet plexus-policy any/#2-v4 { 0.0.0.0-255.255.255.255 . 0-255 }
add element inet plexus-policy any/#2-v6 { ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff . 0-255 }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.3 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v6 { fd01::3 : goto ingress-set/#1 }
add rule inet plexus-policy ingress-set/#1 counter name ingress-set/#1/drop drop
add rule inet plexus-policy ingress-set/#1 ip saddr . meta l4proto @any/#2-v4 counter name ingress-set/#1/allow accept
add rule inet plexus-policy ingress-set/#1 ip6 saddr . meta l4proto @any/#2-v6 counter name ingress-set/#1/allow accept
add set inet plexus-policy any/#2-v4 { type ipv4_addr . inet_proto ; flags interval ; }
add set inet plexus-policy any/#2-v6 { type ipv6_addr . inet_proto ; flags interval ; }
`},
		{name: "ports without from: every address × TCP, UDP, SCTP, protocol-only and endPort",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "ports", "", pt.IngressOnly, pt.IngressRules(
				pt.In(nil, pt.Port(tcp, 80), pt.PortRange(tcp, 81, 90), pt.Port(sctp, 9), pt.ProtoOnly(udp), pt.PortRange(sctp, 100, 200))), nil)},
			want: `
add chain inet plexus-policy ingress-set/#1
add counter inet plexus-policy ingress-set/#1/allow
add counter inet plexus-policy ingress-set/#1/drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.3 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v6 { fd01::3 : goto ingress-set/#1 }
add element inet plexus-policy ports/#2-v4 { 0.0.0.0-255.255.255.255 . sctp . 100-200 }
add element inet plexus-policy ports/#2-v4 { 0.0.0.0-255.255.255.255 . sctp . 9 }
add element inet plexus-policy ports/#2-v4 { 0.0.0.0-255.255.255.255 . tcp . 80-90 }
add element inet plexus-policy ports/#2-v4 { 0.0.0.0-255.255.255.255 . udp . 0-65535 }
add element inet plexus-policy ports/#2-v6 { ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff . sctp . 100-200 }
add element inet plexus-policy ports/#2-v6 { ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff . sctp . 9 }
add element inet plexus-policy ports/#2-v6 { ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff . tcp . 80-90 }
add element inet plexus-policy ports/#2-v6 { ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff . udp . 0-65535 }
add rule inet plexus-policy ingress-set/#1 counter name ingress-set/#1/drop drop
add rule inet plexus-policy ingress-set/#1 ip saddr . meta l4proto . th dport @ports/#2-v4 counter name ingress-set/#1/allow accept
add rule inet plexus-policy ingress-set/#1 ip6 saddr . meta l4proto . th dport @ports/#2-v6 counter name ingress-set/#1/allow accept
add set inet plexus-policy ports/#2-v4 { type ipv4_addr . inet_proto . inet_service ; flags interval ; }
add set inet plexus-policy ports/#2-v6 { type ipv6_addr . inet_proto . inet_service ; flags interval ; }
`},
		{name: "pod and namespace peers × numbered and named ports (resolved for the chain's pod), per family",
			policies: []*networkingv1.NetworkPolicy{pt.NP("a", "web", "x", pt.IngressOnly, pt.IngressRules(
				pt.In(pt.Peers(pt.PodPeer("y"), pt.NSPeer("b")), pt.Port(tcp, 80), pt.NamedPort(tcp, "http"), pt.NamedPort(udp, "dns"))), nil)},
			want: `
add chain inet plexus-policy ingress-set/#1
add counter inet plexus-policy ingress-set/#1/allow
add counter inet plexus-policy ingress-set/#1/drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.1 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v6 { fd01::1 : goto ingress-set/#1 }
add element inet plexus-policy ports-pods/#2-v4 { 10.1.0.2 . tcp . 80 }
add element inet plexus-policy ports-pods/#2-v4 { 10.1.0.2 . tcp . 8080 }
add element inet plexus-policy ports-pods/#2-v4 { 10.1.0.2 . udp . 53 }
add element inet plexus-policy ports-pods/#2-v4 { 10.2.0.1 . tcp . 80 }
add element inet plexus-policy ports-pods/#2-v4 { 10.2.0.1 . tcp . 8080 }
add element inet plexus-policy ports-pods/#2-v4 { 10.2.0.1 . udp . 53 }
add element inet plexus-policy ports-pods/#2-v6 { fd01::2 . tcp . 80 }
add element inet plexus-policy ports-pods/#2-v6 { fd01::2 . tcp . 8080 }
add element inet plexus-policy ports-pods/#2-v6 { fd01::2 . udp . 53 }
add element inet plexus-policy ports-pods/#2-v6 { fd02::1 . tcp . 80 }
add element inet plexus-policy ports-pods/#2-v6 { fd02::1 . tcp . 8080 }
add element inet plexus-policy ports-pods/#2-v6 { fd02::1 . udp . 53 }
add rule inet plexus-policy ingress-set/#1 counter name ingress-set/#1/drop drop
add rule inet plexus-policy ingress-set/#1 ip saddr . meta l4proto . th dport @ports-pods/#2-v4 counter name ingress-set/#1/allow accept
add rule inet plexus-policy ingress-set/#1 ip6 saddr . meta l4proto . th dport @ports-pods/#2-v6 counter name ingress-set/#1/allow accept
add set inet plexus-policy ports-pods/#2-v4 { type ipv4_addr . inet_proto . inet_service ; }
add set inet plexus-policy ports-pods/#2-v6 { type ipv6_addr . inet_proto . inet_service ; }
`},
		{name: "egress: ipBlock with except as intervals; named ports of any peer resolved per peer pod, in one set",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "out", "", pt.EgressOnly, nil, pt.EgressRules(
				pt.Out(pt.BlockPeers(true), pt.PortRange(udp, 53, 60)),
				pt.Out(nil, pt.NamedPort(tcp, "http"))))},
			want: `
add chain inet plexus-policy egress-set/#1
add counter inet plexus-policy egress-set/#1/allow
add counter inet plexus-policy egress-set/#1/drop
add element inet plexus-policy egress-pods-v4 { 10.1.0.3 : goto egress-set/#1 }
add element inet plexus-policy egress-pods-v6 { fd01::3 : goto egress-set/#1 }
add element inet plexus-policy ports-pods/#2-v4 { 10.1.0.1 . tcp . 8080 }
add element inet plexus-policy ports-pods/#2-v4 { 10.1.0.2 . tcp . 9090 }
add element inet plexus-policy ports-pods/#2-v4 { 10.2.0.1 . tcp . 7070 }
add element inet plexus-policy ports-pods/#2-v6 { fd01::1 . tcp . 8080 }
add element inet plexus-policy ports-pods/#2-v6 { fd01::2 . tcp . 9090 }
add element inet plexus-policy ports-pods/#2-v6 { fd02::1 . tcp . 7070 }
add element inet plexus-policy ports/#3-v4 { 203.0.113.0-203.0.113.127 . udp . 53-60 }
add element inet plexus-policy ports/#3-v6 { 2001:db8::-2001:db8::7f . udp . 53-60 }
add element inet plexus-policy ports/#3-v6 { 2001:db8::100-2001:db8::ffff:ffff:ffff:ffff . udp . 53-60 }
add rule inet plexus-policy egress-set/#1 counter name egress-set/#1/drop drop
add rule inet plexus-policy egress-set/#1 ip daddr . meta l4proto . th dport @ports-pods/#2-v4 counter name egress-set/#1/allow accept
add rule inet plexus-policy egress-set/#1 ip daddr . meta l4proto . th dport @ports/#3-v4 counter name egress-set/#1/allow accept
add rule inet plexus-policy egress-set/#1 ip6 daddr . meta l4proto . th dport @ports-pods/#2-v6 counter name egress-set/#1/allow accept
add rule inet plexus-policy egress-set/#1 ip6 daddr . meta l4proto . th dport @ports/#3-v6 counter name egress-set/#1/allow accept
add set inet plexus-policy ports-pods/#2-v4 { type ipv4_addr . inet_proto . inet_service ; }
add set inet plexus-policy ports-pods/#2-v6 { type ipv6_addr . inet_proto . inet_service ; }
add set inet plexus-policy ports/#3-v4 { type ipv4_addr . inet_proto . inet_service ; flags interval ; }
add set inet plexus-policy ports/#3-v6 { type ipv6_addr . inet_proto . inet_service ; flags interval ; }
`},
		{name: "pod and ipBlock peers in one rule: pods in the hash set, blocks in the interval set",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "mix", "", pt.IngressOnly, pt.IngressRules(
				pt.In(append(pt.Peers(pt.PodPeer("")), pt.BlockPeers(false)...))), nil)},
			want: `
add chain inet plexus-policy ingress-set/#1
add counter inet plexus-policy ingress-set/#1/allow
add counter inet plexus-policy ingress-set/#1/drop
add element inet plexus-policy any-pods/#2-v4 { 10.1.0.3 }
add element inet plexus-policy any-pods/#2-v6 { fd01::3 }
add element inet plexus-policy any/#3-v4 { 203.0.113.0-203.0.113.255 . 0-255 }
add element inet plexus-policy any/#3-v6 { 2001:db8::-2001:db8::ffff:ffff:ffff:ffff . 0-255 }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.3 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v6 { fd01::3 : goto ingress-set/#1 }
add rule inet plexus-policy ingress-set/#1 counter name ingress-set/#1/drop drop
add rule inet plexus-policy ingress-set/#1 ip saddr . meta l4proto @any/#3-v4 counter name ingress-set/#1/allow accept
add rule inet plexus-policy ingress-set/#1 ip saddr @any-pods/#2-v4 counter name ingress-set/#1/allow accept
add rule inet plexus-policy ingress-set/#1 ip6 saddr . meta l4proto @any/#3-v6 counter name ingress-set/#1/allow accept
add rule inet plexus-policy ingress-set/#1 ip6 saddr @any-pods/#2-v6 counter name ingress-set/#1/allow accept
add set inet plexus-policy any-pods/#2-v4 { type ipv4_addr ; }
add set inet plexus-policy any-pods/#2-v6 { type ipv6_addr ; }
add set inet plexus-policy any/#3-v4 { type ipv4_addr . inet_proto ; flags interval ; }
add set inet plexus-policy any/#3-v6 { type ipv6_addr . inet_proto ; flags interval ; }
`},
		{name: "union of policies in one chain: ports cut into disjoint atoms, a pod inside a block merged into it, single pod addresses of any port hashed",
			policies: []*networkingv1.NetworkPolicy{
				pt.NP("a", "u1", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.PortRange(tcp, 80, 90))), nil),
				pt.NP("a", "u2", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(networkingv1.NetworkPolicyPeer{
					IPBlock: &networkingv1.IPBlock{CIDR: "10.1.0.0/24"}}), pt.PortRange(tcp, 85, 100))), nil),
				pt.NP("a", "u3", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")))), nil),
			},
			want: `
add chain inet plexus-policy ingress-set/#1
add counter inet plexus-policy ingress-set/#1/allow
add counter inet plexus-policy ingress-set/#1/drop
add element inet plexus-policy any-pods/#2-v4 { 10.1.0.2 }
add element inet plexus-policy any-pods/#2-v6 { fd01::2 }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.1 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v6 { fd01::1 : goto ingress-set/#1 }
add element inet plexus-policy ports/#3-v4 { 10.1.0.0-10.1.0.255 . tcp . 85-100 }
add element inet plexus-policy ports/#3-v4 { 10.1.0.2 . tcp . 80-84 }
add element inet plexus-policy ports/#3-v6 { fd01::2 . tcp . 80-90 }
add rule inet plexus-policy ingress-set/#1 counter name ingress-set/#1/drop drop
add rule inet plexus-policy ingress-set/#1 ip saddr . meta l4proto . th dport @ports/#3-v4 counter name ingress-set/#1/allow accept
add rule inet plexus-policy ingress-set/#1 ip saddr @any-pods/#2-v4 counter name ingress-set/#1/allow accept
add rule inet plexus-policy ingress-set/#1 ip6 saddr . meta l4proto . th dport @ports/#3-v6 counter name ingress-set/#1/allow accept
add rule inet plexus-policy ingress-set/#1 ip6 saddr @any-pods/#2-v6 counter name ingress-set/#1/allow accept
add set inet plexus-policy any-pods/#2-v4 { type ipv4_addr ; }
add set inet plexus-policy any-pods/#2-v6 { type ipv6_addr ; }
add set inet plexus-policy ports/#3-v4 { type ipv4_addr . inet_proto . inet_service ; flags interval ; }
add set inet plexus-policy ports/#3-v6 { type ipv6_addr . inet_proto . inet_service ; flags interval ; }
`},
		{name: "pods isolated by the same policies share a chain",
			policies: []*networkingv1.NetworkPolicy{
				pt.NP("a", "deny", "", pt.IngressOnly, nil, nil),
				pt.NP("a", "x", "x", pt.IngressOnly, nil, nil),
			},
			want: `
add chain inet plexus-policy ingress-set/#1
add chain inet plexus-policy ingress-set/#2
add counter inet plexus-policy ingress-set/#1/allow
add counter inet plexus-policy ingress-set/#1/drop
add counter inet plexus-policy ingress-set/#2/allow
add counter inet plexus-policy ingress-set/#2/drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.1 : goto ingress-set/#2 }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.2 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v6 { fd01::1 : goto ingress-set/#2 }
add element inet plexus-policy ingress-pods-v6 { fd01::2 : goto ingress-set/#1 }
add rule inet plexus-policy ingress-set/#1 counter name ingress-set/#1/drop drop
add rule inet plexus-policy ingress-set/#2 counter name ingress-set/#2/drop drop
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake, e := newFake()
			mustSync(t, e, testModel(t, tc.policies...), false)
			expectDump(t, fake, nodeIPLines+tc.want)
		})
	}
}

// TestIncrementalWrites checks that a sync writes only the difference and
// leaves the table as a fresh full sync of the same model would.
func TestIncrementalWrites(t *testing.T) {
	deny := pt.NP("a", "deny", "", pt.IngressOnly, nil, nil)
	web := pt.NP("a", "web", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil)
	pods := pt.Pods()
	model := func(pods []*corev1.Pod, policies ...*networkingv1.NetworkPolicy) *policy.Model {
		return policy.Compile(policy.Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Policies: policies, Pods: pods, Namespaces: pt.Namespaces()})
	}
	relabelled := pt.Pods()
	relabelled[1].Labels = map[string]string{"app": "other"} // a/y is no peer of web any more
	added := append(pt.Pods(), pt.Pod("a", "v", "n1", map[string]string{"app": "x"}, []netip.Addr{pt.IP("10.1.0.9")}))
	steps := []struct {
		name  string
		model *policy.Model
		want  string // the transaction, hashed names normalised
	}{
		{"unchanged: nothing written", model(pods, deny, web), ""},
		{"peer relabelled: its elements out of the merged set", model(relabelled, deny, web), `
delete element inet plexus-policy ports-pods/#1-v4 { 10.1.0.2 . tcp . 80 }
delete element inet plexus-policy ports-pods/#1-v6 { fd01::2 . tcp . 80 }
`},
		{"pod added: map and merged set elements", model(added, deny, web), `
add element inet plexus-policy ingress-pods-v4 { 10.1.0.9 : goto ingress-set/#1 }
add element inet plexus-policy ports-pods/#2-v4 { 10.1.0.2 . tcp . 80 }
add element inet plexus-policy ports-pods/#2-v6 { fd01::2 . tcp . 80 }
`},
		{"policy removed: its pods move to the other chain, its objects go", model(added, deny), `
delete element inet plexus-policy ingress-pods-v4 { 10.1.0.1 }
delete element inet plexus-policy ingress-pods-v4 { 10.1.0.9 }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.1 : goto ingress-set/#1 }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.9 : goto ingress-set/#1 }
delete element inet plexus-policy ingress-pods-v6 { fd01::1 }
add element inet plexus-policy ingress-pods-v6 { fd01::1 : goto ingress-set/#1 }
delete chain inet plexus-policy ingress-set/#2
delete set inet plexus-policy ports-pods/#3-v4
delete set inet plexus-policy ports-pods/#3-v6
delete counter inet plexus-policy ingress-set/#2/allow
delete counter inet plexus-policy ingress-set/#2/drop
`},
	}
	fake, e := newFake()
	mustSync(t, e, model(pods, deny, web), false)
	for _, s := range steps {
		fake.LastTransaction = nil
		res := mustSync(t, e, s.model, false)
		got := ""
		if fake.LastTransaction != nil {
			got = strings.Join(normalizeNames(strings.Split(withoutStamp(fake.LastTransaction.String()), "\n")), "\n")
		}
		if strings.TrimSpace(got) != strings.TrimSpace(s.want) {
			t.Errorf("%s: transaction\n%s\nwant\n%s", s.name, got, s.want)
		}
		if res.Wrote != (s.want != "") {
			t.Errorf("%s: Wrote = %v", s.name, res.Wrote)
		}
		fresh, fe := newFake()
		mustSync(t, fe, s.model, true)
		if d := lineDiff(dumpLines(fresh), dumpLines(fake)); d != "" {
			t.Errorf("%s: incremental table differs from a fresh one:\n%s", s.name, d)
		}
	}
}

func TestRemoveAndFullResync(t *testing.T) {
	fake, e := newFake()
	m := testModel(t, pt.NP("a", "deny", "", nil, nil, nil))
	mustSync(t, e, m, false)
	if err := e.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := fake.Dump(); d != "" {
		t.Fatalf("table left after Remove:\n%s", d)
	}
	if err := e.Remove(context.Background()); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	// After Remove the next sync rebuilds everything.
	mustSync(t, e, m, false)
	if len(dumpLines(fake)) == 0 {
		t.Fatal("sync after Remove wrote nothing")
	}
}

// TestSharedSets checks that policy-set chains whose rules have equal
// peers and ports share one merged set, and that equal selectors in
// different namespaces do not.
func TestSharedSets(t *testing.T) {
	fake, e := newFake()
	m := testModel(t,
		pt.NP("a", "p1", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil),
		pt.NP("a", "p2", "y", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil),
		pt.NP("c", "p3", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil),
	)
	mustSync(t, e, m, false)
	lookups := func(pod string) []string {
		chain := PodChains(m, podNamed(m, pod))[policy.Ingress]
		var sets []string
		for _, r := range fake.Table.Chains[chain].Rules {
			for _, w := range strings.Fields(r.Rule) {
				if strings.HasPrefix(w, "@") {
					sets = append(sets, w[1:])
				}
			}
		}
		return sets
	}
	ax, ay, cw := lookups("a/x"), lookups("a/y"), lookups("c/w")
	if len(ax) != 2 || !slices.Equal(ax, ay) {
		t.Errorf("a/x and a/y (equal rules) look up %v and %v, want the same two sets", ax, ay)
	}
	if len(cw) != 2 || slices.ContainsFunc(cw, func(s string) bool { return slices.Contains(ax, s) }) {
		t.Errorf("c/w (its own namespace's app=y) looks up %v, a/x %v: want other sets", cw, ax)
	}
	if ax[0] == ay[1] || PodChains(m, podNamed(m, "a/x")) == PodChains(m, podNamed(m, "a/y")) {
		t.Errorf("a/x and a/y (other policies) share a chain, or one set serves both families")
	}
}

// TestRecoversAfterAFailedWrite removes the table behind the Enforcer's
// back: the next incremental write fails, and the one after rebuilds the
// whole table.
func TestRecoversAfterAFailedWrite(t *testing.T) {
	fake, e := newFake()
	deny := pt.NP("a", "deny", "", nil, nil, nil)
	mustSync(t, e, testModel(t, deny), false)
	want := dumpLines(fake)
	tx := fake.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	pods := pt.Pods()
	pods = append(pods, pt.Pod("a", "v", "n1", nil, []netip.Addr{pt.IP("10.1.0.9")}))
	changed := policy.Compile(policy.Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Pods: pods, Namespaces: pt.Namespaces(), Policies: pt.NPs(deny)})
	if _, err := e.Sync(context.Background(), changed, false); err == nil {
		t.Fatal("a write into a vanished table succeeded")
	}
	mustSync(t, e, testModel(t, deny), false)
	if d := lineDiff(want, dumpLines(fake)); d != "" {
		t.Errorf("table not rebuilt:\n%s", d)
	}
}

// TestOrderOfInputsDoesNotMatter: informers hand objects over in any
// order; the table must not depend on it.
func TestOrderOfInputsDoesNotMatter(t *testing.T) {
	s := pt.NewScale(300, 50)
	in := scaleInput(s)
	want := func() string { f, e := newFake(); mustSync(t, e, policy.Compile(in), false); return f.Dump() }()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3; i++ {
		shuffled := in
		shuffled.Pods, shuffled.Policies, shuffled.Namespaces = slices.Clone(in.Pods), slices.Clone(in.Policies), slices.Clone(in.Namespaces)
		rng.Shuffle(len(shuffled.Pods), func(a, b int) { shuffled.Pods[a], shuffled.Pods[b] = shuffled.Pods[b], shuffled.Pods[a] })
		rng.Shuffle(len(shuffled.Policies), func(a, b int) {
			shuffled.Policies[a], shuffled.Policies[b] = shuffled.Policies[b], shuffled.Policies[a]
		})
		rng.Shuffle(len(shuffled.Namespaces), func(a, b int) {
			shuffled.Namespaces[a], shuffled.Namespaces[b] = shuffled.Namespaces[b], shuffled.Namespaces[a]
		})
		f, e := newFake()
		mustSync(t, e, policy.Compile(shuffled), false)
		if got := f.Dump(); got != want {
			t.Fatalf("shuffle %d: the table differs:\n%s", i, lineDiff(strings.Split(want, "\n"), strings.Split(got, "\n")))
		}
	}
}

// TestStampSkipsNeedlessRebuilds: a full sync, or a new Enforcer (an agent
// restart), over an intact table writes nothing; a table whose stamp or
// chains differ from the model is rebuilt.
func TestStampSkipsNeedlessRebuilds(t *testing.T) {
	fake, e := newFake()
	m := testModel(t, pt.NP("a", "deny", "", nil, nil, nil))
	mustSync(t, e, m, false)
	if res := mustSync(t, e, m, true); res.Wrote {
		t.Error("a full sync over an intact table wrote")
	}
	if res := mustSync(t, New(fake), m, false); res.Wrote {
		t.Error("a restarted enforcer rewrote an intact table")
	}
	other := testModel(t, pt.NP("a", "deny", "", pt.EgressOnly, nil, nil))
	if res := mustSync(t, New(fake), other, false); !res.Wrote {
		t.Error("a restarted enforcer kept a table of another model")
	}
	// A chain deleted behind the enforcer's back, stamp intact.
	tx := fake.NewTransaction()
	tx.Add(&knftables.Chain{Name: "stray"})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	e = New(fake)
	if res := mustSync(t, e, other, true); !res.Wrote {
		t.Error("a full sync kept a table with a stray chain")
	}
	if _, ok := fake.Table.Chains["stray"]; ok {
		t.Error("the stray chain survived the rebuild")
	}
}
