package nftables

import (
	"context"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

// ipBlocks returns one ipBlock per family: the underlay segment, less
// node2's address when exceptNode2.
func underlayBlocks(exceptNode2 bool) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for i, c := range []string{"10.97.0.0/24", "fd10:97::/64"} {
		b := &networkingv1.IPBlock{CIDR: c}
		if exceptNode2 {
			b.Except = []string{klabAddrs["node2"][i].String() + []string{"/32", "/128"}[i]}
		}
		out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: b})
	}
	return out
}

// TestKernelTruthTable programs policy cases into a real kernel and checks
// every probe of both families against the model's verdict: real TCP and
// UDP packets between namespaces acting as pods and nodes, through a DNAT
// that stands in for the service proxy.
func TestKernelTruthTable(t *testing.T) {
	l := newKLab(t)
	const tcp, udp = "TCP", "UDP"
	cases := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
	}{
		{"no policy", nil},
		{"default deny ingress in a", []*networkingv1.NetworkPolicy{pt.NP("a", "deny", "", nil, nil, nil)}},
		{"default deny egress in a", []*networkingv1.NetworkPolicy{pt.NP("a", "deny", "", pt.EgressOnly, nil, nil)}},
		{"x from y on TCP 80 only", []*networkingv1.NetworkPolicy{
			pt.NP("a", "web", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil)}},
		{"a from namespace b on UDP 81, from c's pods on any port", []*networkingv1.NetworkPolicy{
			pt.NP("a", "p", "", pt.IngressOnly, pt.IngressRules(
				pt.In(pt.Peers(pt.NSPeer("b")), pt.Port(udp, 81)),
				pt.In(pt.Peers(pt.NSPodPeer("", "w")))), nil)}},
		{"ipBlock with except (node2 out)", []*networkingv1.NetworkPolicy{
			pt.NP("a", "blk", "x", pt.IngressOnly, pt.IngressRules(pt.In(underlayBlocks(true))), nil),
			pt.NP("a", "blk2", "y", pt.IngressOnly, pt.IngressRules(pt.In(underlayBlocks(false), pt.Port(tcp, 81))), nil)}},
		{"named ports and endPort", []*networkingv1.NetworkPolicy{
			pt.NP("a", "http", "", pt.IngressOnly, pt.IngressRules(pt.In(nil, pt.NamedPort(tcp, "http"), pt.NamedPort(udp, "dns"))), nil),
			pt.NP("c", "range", "", pt.IngressOnly, pt.IngressRules(pt.In(nil, pt.PortRange(udp, 80, 81))), nil)}},
		{"egress: named port of peer pods, to node1 on TCP 80", []*networkingv1.NetworkPolicy{
			pt.NP("a", "out", "x", pt.EgressOnly, nil, pt.EgressRules(
				pt.Out(pt.Peers(pt.NSPeer("")), pt.NamedPort(tcp, "http")),
				pt.Out(underlayBlocks(true), pt.Port(tcp, 80))))}},
		{"both directions, policies unioned", []*networkingv1.NetworkPolicy{
			pt.NP("a", "deny", "", pt.Both, nil, nil),
			pt.NP("a", "x-y", "", pt.Both,
				pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("")))),
				pt.EgressRules(pt.Out(pt.Peers(pt.PodPeer(""))))),
			pt.NP("c", "w-in", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.NSPeer("a")), pt.Port(tcp, 81))), nil)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := policy.Compile(l.input(tc.policies...))
			l.sync(t, m)
			l.checkMatrix(t, m)
		})
	}
	t.Run("table removed: nothing enforced", func(t *testing.T) {
		if err := l.ns["node1"].Do(func() error { return l.enf.Remove(context.Background()) }); err != nil {
			t.Fatal(err)
		}
		if out := l.ns["node1"].Exec(t, "nft", "list", "tables"); strings.Contains(out, TableName) {
			t.Fatalf("table left: %s", out)
		}
		l.checkMatrix(t, policy.Compile(l.input()))
	})
}
