package nftables

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"regexp"
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

var (
	setRef    = regexp.MustCompile(`<(ingress|egress):([^>]*)>`)
	sharedRef = regexp.MustCompile(`<(pods|blocks|ports|named):([^>]*)>`)
)

// expand replaces <ingress:ns/a,ns/b> by the name of the policy-set chain
// of those policies, and <pods:KEY> (blocks, ports, named) by the name of the
// shared set of that key.
func expand(s string) string {
	s = sharedRef.ReplaceAllStringFunc(s, func(m string) string {
		g := sharedRef.FindStringSubmatch(m)
		return g[1] + "/" + shortHash(g[2])
	})
	return setRef.ReplaceAllStringFunc(s, func(m string) string {
		g := setRef.FindStringSubmatch(m)
		d := policy.Ingress
		if g[1] == "egress" {
			d = policy.Egress
		}
		var keys []policy.PolicyKey
		for _, k := range strings.Split(g[2], ",") {
			ns, name, _ := strings.Cut(k, "/")
			keys = append(keys, policy.PolicyKey{Namespace: ns, Name: name})
		}
		return setChain(d, keys)
	})
}

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
		{name: "default deny ingress: empty policy chain, pods of the namespace mapped, host-network pod not",
			policies: []*networkingv1.NetworkPolicy{pt.NP("a", "deny", "", nil, nil, nil)},
			want: `
add chain inet plexus-policy np/a/deny/ingress
add counter inet plexus-policy np/a/deny/ingress/allow
add counter inet plexus-policy np/a/deny/ingress/drop
add chain inet plexus-policy <ingress:a/deny>
add rule inet plexus-policy <ingress:a/deny> jump np/a/deny/ingress
add rule inet plexus-policy <ingress:a/deny> counter name np/a/deny/ingress/drop
add rule inet plexus-policy <ingress:a/deny> drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.1 : goto <ingress:a/deny> }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.2 : goto <ingress:a/deny> }
add element inet plexus-policy ingress-pods-v6 { fd01::1 : goto <ingress:a/deny> }
add element inet plexus-policy ingress-pods-v6 { fd01::2 : goto <ingress:a/deny> }
`},
		{name: "default deny egress",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "deny", "", pt.EgressOnly, nil, nil)},
			want: `
add chain inet plexus-policy np/c/deny/egress
add counter inet plexus-policy np/c/deny/egress/allow
add counter inet plexus-policy np/c/deny/egress/drop
add chain inet plexus-policy <egress:c/deny>
add rule inet plexus-policy <egress:c/deny> jump np/c/deny/egress
add rule inet plexus-policy <egress:c/deny> counter name np/c/deny/egress/drop
add rule inet plexus-policy <egress:c/deny> drop
add element inet plexus-policy egress-pods-v4 { 10.1.0.3 : goto <egress:c/deny> }
add element inet plexus-policy egress-pods-v6 { fd01::3 : goto <egress:c/deny> }
`},
		{name: "rule without from and ports: one rule, no sets",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "all", "", pt.IngressOnly, pt.IngressRules(pt.In(nil)), nil)},
			want: `
add chain inet plexus-policy np/c/all/ingress
add rule inet plexus-policy np/c/all/ingress counter name np/c/all/ingress/allow accept
add counter inet plexus-policy np/c/all/ingress/allow
add counter inet plexus-policy np/c/all/ingress/drop
add chain inet plexus-policy <ingress:c/all>
add rule inet plexus-policy <ingress:c/all> jump np/c/all/ingress
add rule inet plexus-policy <ingress:c/all> counter name np/c/all/ingress/drop
add rule inet plexus-policy <ingress:c/all> drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.3 : goto <ingress:c/all> }
add element inet plexus-policy ingress-pods-v6 { fd01::3 : goto <ingress:c/all> }
`},
		{name: "ports without from: one family-less rule; TCP, UDP, SCTP, protocol-only and endPort",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "ports", "", pt.IngressOnly, pt.IngressRules(
				pt.In(nil, pt.Port(tcp, 80), pt.PortRange(tcp, 81, 90), pt.Port(sctp, 9), pt.ProtoOnly(udp), pt.PortRange(sctp, 100, 200))), nil)},
			want: `
add chain inet plexus-policy np/c/ports/ingress
add set inet plexus-policy <ports:[tcp/80-90 udp/0-65535 sctp/9 sctp/100-200]> { type inet_proto . inet_service ; flags interval ; }
add element inet plexus-policy <ports:[tcp/80-90 udp/0-65535 sctp/9 sctp/100-200]> { tcp . 80-90 }
add element inet plexus-policy <ports:[tcp/80-90 udp/0-65535 sctp/9 sctp/100-200]> { udp . 0-65535 }
add element inet plexus-policy <ports:[tcp/80-90 udp/0-65535 sctp/9 sctp/100-200]> { sctp . 9 }
add element inet plexus-policy <ports:[tcp/80-90 udp/0-65535 sctp/9 sctp/100-200]> { sctp . 100-200 }
add rule inet plexus-policy np/c/ports/ingress meta l4proto . th dport @<ports:[tcp/80-90 udp/0-65535 sctp/9 sctp/100-200]> counter name np/c/ports/ingress/allow accept
add counter inet plexus-policy np/c/ports/ingress/allow
add counter inet plexus-policy np/c/ports/ingress/drop
add chain inet plexus-policy <ingress:c/ports>
add rule inet plexus-policy <ingress:c/ports> jump np/c/ports/ingress
add rule inet plexus-policy <ingress:c/ports> counter name np/c/ports/ingress/drop
add rule inet plexus-policy <ingress:c/ports> drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.3 : goto <ingress:c/ports> }
add element inet plexus-policy ingress-pods-v6 { fd01::3 : goto <ingress:c/ports> }
`},
		{name: "pod and namespace peers × numbered and named ports, per family",
			policies: []*networkingv1.NetworkPolicy{pt.NP("a", "web", "x", pt.IngressOnly, pt.IngressRules(
				pt.In(pt.Peers(pt.PodPeer("y"), pt.NSPeer("b")), pt.Port(tcp, 80), pt.NamedPort(tcp, "http"), pt.NamedPort(udp, "dns"))), nil)},
			want: `
add chain inet plexus-policy np/a/web/ingress
add set inet plexus-policy <pods:in:a/pods:app=y;ns:team=b/pods:>-v4 { type ipv4_addr ; }
add set inet plexus-policy <pods:in:a/pods:app=y;ns:team=b/pods:>-v6 { type ipv6_addr ; }
add set inet plexus-policy <ports:[tcp/80]> { type inet_proto . inet_service ; flags interval ; }
add set inet plexus-policy np/a/web/ingress/0/named-v4 { type ipv4_addr . inet_proto . inet_service ; }
add set inet plexus-policy np/a/web/ingress/0/named-v6 { type ipv6_addr . inet_proto . inet_service ; }
add element inet plexus-policy <pods:in:a/pods:app=y;ns:team=b/pods:>-v4 { 10.1.0.2 }
add element inet plexus-policy <pods:in:a/pods:app=y;ns:team=b/pods:>-v4 { 10.2.0.1 }
add element inet plexus-policy <pods:in:a/pods:app=y;ns:team=b/pods:>-v6 { fd01::2 }
add element inet plexus-policy <pods:in:a/pods:app=y;ns:team=b/pods:>-v6 { fd02::1 }
add element inet plexus-policy <ports:[tcp/80]> { tcp . 80 }
add element inet plexus-policy np/a/web/ingress/0/named-v4 { 10.1.0.1 . tcp . 8080 }
add element inet plexus-policy np/a/web/ingress/0/named-v4 { 10.1.0.1 . udp . 53 }
add element inet plexus-policy np/a/web/ingress/0/named-v6 { fd01::1 . tcp . 8080 }
add element inet plexus-policy np/a/web/ingress/0/named-v6 { fd01::1 . udp . 53 }
add rule inet plexus-policy np/a/web/ingress ip saddr @<pods:in:a/pods:app=y;ns:team=b/pods:>-v4 meta l4proto . th dport @<ports:[tcp/80]> counter name np/a/web/ingress/allow accept
add rule inet plexus-policy np/a/web/ingress ip saddr @<pods:in:a/pods:app=y;ns:team=b/pods:>-v4 ip daddr . meta l4proto . th dport @np/a/web/ingress/0/named-v4 counter name np/a/web/ingress/allow accept
add rule inet plexus-policy np/a/web/ingress ip6 saddr @<pods:in:a/pods:app=y;ns:team=b/pods:>-v6 meta l4proto . th dport @<ports:[tcp/80]> counter name np/a/web/ingress/allow accept
add rule inet plexus-policy np/a/web/ingress ip6 saddr @<pods:in:a/pods:app=y;ns:team=b/pods:>-v6 ip6 daddr . meta l4proto . th dport @np/a/web/ingress/0/named-v6 counter name np/a/web/ingress/allow accept
add counter inet plexus-policy np/a/web/ingress/allow
add counter inet plexus-policy np/a/web/ingress/drop
add chain inet plexus-policy <ingress:a/web>
add rule inet plexus-policy <ingress:a/web> jump np/a/web/ingress
add rule inet plexus-policy <ingress:a/web> counter name np/a/web/ingress/drop
add rule inet plexus-policy <ingress:a/web> drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.1 : goto <ingress:a/web> }
add element inet plexus-policy ingress-pods-v6 { fd01::1 : goto <ingress:a/web> }
`},
		{name: "egress: ipBlock with except as intervals; named ports of any peer resolved per peer pod",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "out", "", pt.EgressOnly, nil, pt.EgressRules(
				pt.Out(pt.BlockPeers(true), pt.PortRange(udp, 53, 60)),
				pt.Out(nil, pt.NamedPort(tcp, "http"))))},
			want: `
add chain inet plexus-policy np/c/out/egress
add set inet plexus-policy <blocks:block:2001:db8::/64!2001:db8::80/121;block:203.0.113.0/24!203.0.113.128/25>-v4 { type ipv4_addr ; flags interval ; }
add set inet plexus-policy <blocks:block:2001:db8::/64!2001:db8::80/121;block:203.0.113.0/24!203.0.113.128/25>-v6 { type ipv6_addr ; flags interval ; }
add set inet plexus-policy <ports:[udp/53-60]> { type inet_proto . inet_service ; flags interval ; }
add set inet plexus-policy <named:any|[{TCP http}]>-v4 { type ipv4_addr . inet_proto . inet_service ; }
add set inet plexus-policy <named:any|[{TCP http}]>-v6 { type ipv6_addr . inet_proto . inet_service ; }
add element inet plexus-policy <blocks:block:2001:db8::/64!2001:db8::80/121;block:203.0.113.0/24!203.0.113.128/25>-v4 { 203.0.113.0/25 }
add element inet plexus-policy <blocks:block:2001:db8::/64!2001:db8::80/121;block:203.0.113.0/24!203.0.113.128/25>-v6 { 2001:db8::/121 }
add element inet plexus-policy <blocks:block:2001:db8::/64!2001:db8::80/121;block:203.0.113.0/24!203.0.113.128/25>-v6 { 2001:db8::100-2001:db8::ffff:ffff:ffff:ffff }
add element inet plexus-policy <ports:[udp/53-60]> { udp . 53-60 }
add element inet plexus-policy <named:any|[{TCP http}]>-v4 { 10.1.0.1 . tcp . 8080 }
add element inet plexus-policy <named:any|[{TCP http}]>-v4 { 10.1.0.2 . tcp . 9090 }
add element inet plexus-policy <named:any|[{TCP http}]>-v4 { 10.2.0.1 . tcp . 7070 }
add element inet plexus-policy <named:any|[{TCP http}]>-v6 { fd01::1 . tcp . 8080 }
add element inet plexus-policy <named:any|[{TCP http}]>-v6 { fd01::2 . tcp . 9090 }
add element inet plexus-policy <named:any|[{TCP http}]>-v6 { fd02::1 . tcp . 7070 }
add rule inet plexus-policy np/c/out/egress ip daddr @<blocks:block:2001:db8::/64!2001:db8::80/121;block:203.0.113.0/24!203.0.113.128/25>-v4 meta l4proto . th dport @<ports:[udp/53-60]> counter name np/c/out/egress/allow accept
add rule inet plexus-policy np/c/out/egress ip6 daddr @<blocks:block:2001:db8::/64!2001:db8::80/121;block:203.0.113.0/24!203.0.113.128/25>-v6 meta l4proto . th dport @<ports:[udp/53-60]> counter name np/c/out/egress/allow accept
add rule inet plexus-policy np/c/out/egress ip daddr . meta l4proto . th dport @<named:any|[{TCP http}]>-v4 counter name np/c/out/egress/allow accept
add rule inet plexus-policy np/c/out/egress ip6 daddr . meta l4proto . th dport @<named:any|[{TCP http}]>-v6 counter name np/c/out/egress/allow accept
add counter inet plexus-policy np/c/out/egress/allow
add counter inet plexus-policy np/c/out/egress/drop
add chain inet plexus-policy <egress:c/out>
add rule inet plexus-policy <egress:c/out> jump np/c/out/egress
add rule inet plexus-policy <egress:c/out> counter name np/c/out/egress/drop
add rule inet plexus-policy <egress:c/out> drop
add element inet plexus-policy egress-pods-v4 { 10.1.0.3 : goto <egress:c/out> }
add element inet plexus-policy egress-pods-v6 { fd01::3 : goto <egress:c/out> }
`},
		{name: "pod and ipBlock peers in one rule: one rule per kind",
			policies: []*networkingv1.NetworkPolicy{pt.NP("c", "mix", "", pt.IngressOnly, pt.IngressRules(
				pt.In(append(pt.Peers(pt.PodPeer("")), pt.BlockPeers(false)...))), nil)},
			want: `
add chain inet plexus-policy np/c/mix/ingress
add set inet plexus-policy <pods:in:c/pods:>-v4 { type ipv4_addr ; }
add set inet plexus-policy <pods:in:c/pods:>-v6 { type ipv6_addr ; }
add set inet plexus-policy <blocks:block:2001:db8::/64!;block:203.0.113.0/24!>-v4 { type ipv4_addr ; flags interval ; }
add set inet plexus-policy <blocks:block:2001:db8::/64!;block:203.0.113.0/24!>-v6 { type ipv6_addr ; flags interval ; }
add element inet plexus-policy <pods:in:c/pods:>-v4 { 10.1.0.3 }
add element inet plexus-policy <pods:in:c/pods:>-v6 { fd01::3 }
add element inet plexus-policy <blocks:block:2001:db8::/64!;block:203.0.113.0/24!>-v4 { 203.0.113.0/24 }
add element inet plexus-policy <blocks:block:2001:db8::/64!;block:203.0.113.0/24!>-v6 { 2001:db8::/64 }
add rule inet plexus-policy np/c/mix/ingress ip saddr @<pods:in:c/pods:>-v4 counter name np/c/mix/ingress/allow accept
add rule inet plexus-policy np/c/mix/ingress ip saddr @<blocks:block:2001:db8::/64!;block:203.0.113.0/24!>-v4 counter name np/c/mix/ingress/allow accept
add rule inet plexus-policy np/c/mix/ingress ip6 saddr @<pods:in:c/pods:>-v6 counter name np/c/mix/ingress/allow accept
add rule inet plexus-policy np/c/mix/ingress ip6 saddr @<blocks:block:2001:db8::/64!;block:203.0.113.0/24!>-v6 counter name np/c/mix/ingress/allow accept
add counter inet plexus-policy np/c/mix/ingress/allow
add counter inet plexus-policy np/c/mix/ingress/drop
add chain inet plexus-policy <ingress:c/mix>
add rule inet plexus-policy <ingress:c/mix> jump np/c/mix/ingress
add rule inet plexus-policy <ingress:c/mix> counter name np/c/mix/ingress/drop
add rule inet plexus-policy <ingress:c/mix> drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.3 : goto <ingress:c/mix> }
add element inet plexus-policy ingress-pods-v6 { fd01::3 : goto <ingress:c/mix> }
`},
		{name: "pods isolated by the same policies share a chain; the union tries each policy",
			policies: []*networkingv1.NetworkPolicy{
				pt.NP("a", "deny", "", pt.IngressOnly, nil, nil),
				pt.NP("a", "x", "x", pt.IngressOnly, nil, nil),
			},
			want: `
add chain inet plexus-policy np/a/deny/ingress
add chain inet plexus-policy np/a/x/ingress
add counter inet plexus-policy np/a/deny/ingress/allow
add counter inet plexus-policy np/a/deny/ingress/drop
add counter inet plexus-policy np/a/x/ingress/allow
add counter inet plexus-policy np/a/x/ingress/drop
add chain inet plexus-policy <ingress:a/deny,a/x>
add rule inet plexus-policy <ingress:a/deny,a/x> jump np/a/deny/ingress
add rule inet plexus-policy <ingress:a/deny,a/x> jump np/a/x/ingress
add rule inet plexus-policy <ingress:a/deny,a/x> counter name np/a/deny/ingress/drop
add rule inet plexus-policy <ingress:a/deny,a/x> counter name np/a/x/ingress/drop
add rule inet plexus-policy <ingress:a/deny,a/x> drop
add chain inet plexus-policy <ingress:a/deny>
add rule inet plexus-policy <ingress:a/deny> jump np/a/deny/ingress
add rule inet plexus-policy <ingress:a/deny> counter name np/a/deny/ingress/drop
add rule inet plexus-policy <ingress:a/deny> drop
add element inet plexus-policy ingress-pods-v4 { 10.1.0.1 : goto <ingress:a/deny,a/x> }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.2 : goto <ingress:a/deny> }
add element inet plexus-policy ingress-pods-v6 { fd01::1 : goto <ingress:a/deny,a/x> }
add element inet plexus-policy ingress-pods-v6 { fd01::2 : goto <ingress:a/deny> }
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake, e := newFake()
			mustSync(t, e, testModel(t, tc.policies...), false)
			expectDump(t, fake, expand(nodeIPLines+tc.want))
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
		want  string // the transaction
	}{
		{"unchanged: nothing written", model(pods, deny, web), ""},
		{"peer relabelled: one element out", model(relabelled, deny, web), `
delete element inet plexus-policy <pods:in:a/pods:app=y>-v4 { 10.1.0.2 }
delete element inet plexus-policy <pods:in:a/pods:app=y>-v6 { fd01::2 }
`},
		{"pod added: map and peer elements", model(added, deny, web), `
add element inet plexus-policy ingress-pods-v4 { 10.1.0.9 : goto <ingress:a/deny,a/web> }
add element inet plexus-policy <pods:in:a/pods:app=y>-v4 { 10.1.0.2 }
add element inet plexus-policy <pods:in:a/pods:app=y>-v6 { fd01::2 }
`},
		{"policy removed: its pods move to the other chain, its objects go", model(added, deny), `
delete element inet plexus-policy ingress-pods-v4 { 10.1.0.1 }
delete element inet plexus-policy ingress-pods-v4 { 10.1.0.9 }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.1 : goto <ingress:a/deny> }
add element inet plexus-policy ingress-pods-v4 { 10.1.0.9 : goto <ingress:a/deny> }
delete element inet plexus-policy ingress-pods-v6 { fd01::1 }
add element inet plexus-policy ingress-pods-v6 { fd01::1 : goto <ingress:a/deny> }
delete chain inet plexus-policy <ingress:a/deny,a/web>
delete chain inet plexus-policy np/a/web/ingress
delete set inet plexus-policy <pods:in:a/pods:app=y>-v4
delete set inet plexus-policy <pods:in:a/pods:app=y>-v6
delete set inet plexus-policy <ports:[tcp/80]>
delete counter inet plexus-policy np/a/web/ingress/allow
delete counter inet plexus-policy np/a/web/ingress/drop
`},
	}
	fake, e := newFake()
	mustSync(t, e, model(pods, deny, web), false)
	for _, s := range steps {
		fake.LastTransaction = nil
		res := mustSync(t, e, s.model, false)
		got := ""
		if fake.LastTransaction != nil {
			got = withoutStamp(fake.LastTransaction.String())
		}
		if strings.TrimSpace(got) != strings.TrimSpace(expand(s.want)) {
			t.Errorf("%s: transaction\n%s\nwant\n%s", s.name, got, expand(s.want))
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

// TestSharedSets checks that rules with equal peers or ports share one
// set across policies, and that equal selectors in different namespaces
// do not.
func TestSharedSets(t *testing.T) {
	fake, e := newFake()
	mustSync(t, e, testModel(t,
		pt.NP("a", "p1", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil),
		pt.NP("a", "p2", "y", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil),
		pt.NP("c", "p3", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil),
	), false)
	var sets []string
	for _, l := range dumpLines(fake) {
		if strings.HasPrefix(l, "add set ") {
			sets = append(sets, strings.Fields(l)[4])
		}
	}
	want := []string{
		expand("<pods:in:a/pods:app=y>-v4"), expand("<pods:in:a/pods:app=y>-v6"),
		expand("<pods:in:c/pods:app=y>-v4"), expand("<pods:in:c/pods:app=y>-v6"),
		expand("<ports:[tcp/80]>"),
	}
	slices.Sort(want)
	if !slices.Equal(sets, want) {
		t.Errorf("sets:\n got %v\nwant %v", sets, want)
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
