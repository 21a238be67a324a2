package nftables

import (
	"context"
	"net/netip"
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
	webFromY := pt.NP("a", "web", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil)
	cases := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		// relabel replaces app labels; elementsOnly says the step from
		// the case before changes only elements (the element writer);
		// every other step but the first (nft builds the table) is one
		// structural netlink transaction.
		relabel      map[string]string
		elementsOnly bool
	}{
		{name: "no policy"},
		{name: "default deny ingress in a", policies: []*networkingv1.NetworkPolicy{pt.NP("a", "deny", "", nil, nil, nil)}},
		{name: "default deny egress in a", policies: []*networkingv1.NetworkPolicy{pt.NP("a", "deny", "", pt.EgressOnly, nil, nil)}},
		{name: "x from y on TCP 80 only", policies: []*networkingv1.NetworkPolicy{webFromY}},
		{name: "y relabelled: no peer any more", policies: []*networkingv1.NetworkPolicy{webFromY},
			relabel: map[string]string{"a/y": "other"}, elementsOnly: true},
		{name: "y relabelled back", policies: []*networkingv1.NetworkPolicy{webFromY}, elementsOnly: true},
		// The policy then selects no local pod: its objects go.
		{name: "x relabelled: no longer selected", policies: []*networkingv1.NetworkPolicy{webFromY},
			relabel: map[string]string{"a/x": "other"}},
		{name: "a from namespace b on UDP 81, from c's pods on any port", policies: []*networkingv1.NetworkPolicy{
			pt.NP("a", "p", "", pt.IngressOnly, pt.IngressRules(
				pt.In(pt.Peers(pt.NSPeer("b")), pt.Port(udp, 81)),
				pt.In(pt.Peers(pt.NSPodPeer("", "w")))), nil)}},
		{name: "ipBlock with except (node2 out)", policies: []*networkingv1.NetworkPolicy{
			pt.NP("a", "blk", "x", pt.IngressOnly, pt.IngressRules(pt.In(underlayBlocks(true))), nil),
			pt.NP("a", "blk2", "y", pt.IngressOnly, pt.IngressRules(pt.In(underlayBlocks(false), pt.Port(tcp, 81))), nil)}},
		{name: "named ports and endPort", policies: []*networkingv1.NetworkPolicy{
			pt.NP("a", "http", "", pt.IngressOnly, pt.IngressRules(pt.In(nil, pt.NamedPort(tcp, "http"), pt.NamedPort(udp, "dns"))), nil),
			pt.NP("c", "range", "", pt.IngressOnly, pt.IngressRules(pt.In(nil, pt.PortRange(udp, 80, 81))), nil)}},
		{name: "egress: named port of peer pods, to node1 on TCP 80", policies: []*networkingv1.NetworkPolicy{
			pt.NP("a", "out", "x", pt.EgressOnly, nil, pt.EgressRules(
				pt.Out(pt.Peers(pt.NSPeer("")), pt.NamedPort(tcp, "http")),
				pt.Out(underlayBlocks(true), pt.Port(tcp, 80))))}},
		{name: "both directions, policies unioned", policies: []*networkingv1.NetworkPolicy{
			pt.NP("a", "deny", "", pt.Both, nil, nil),
			pt.NP("a", "x-y", "", pt.Both,
				pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("")))),
				pt.EgressRules(pt.Out(pt.Peers(pt.PodPeer(""))))),
			pt.NP("c", "w-in", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.NSPeer("a")), pt.Port(tcp, 81))), nil)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := policy.Compile(l.inputRelabelled(tc.relabel, tc.policies...))
			first := l.enf.prev == nil
			writes, structural := l.enf.netlinkWrites, l.enf.structureWrites
			l.sync(t, m)
			switch {
			case first:
			case l.enf.netlinkWrites != writes+1:
				t.Errorf("not written through netlink")
			case (l.enf.structureWrites > structural) == tc.elementsOnly:
				t.Errorf("structural netlink transaction: %v, want %v", l.enf.structureWrites > structural, !tc.elementsOnly)
			}
			l.checkMatrix(t, m)
		})
	}
	t.Run("per-policy counters count first packets", func(t *testing.T) {
		count := pt.NP("a", "count", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80))), nil)
		l.sync(t, policy.Compile(l.input(count)))
		x := netip.AddrPortFrom(klabAddrs["a/x"][0], 80)
		for i := 0; i < 3; i++ {
			if !probe(l.ns["a/y"], x, policy.TCP) {
				t.Fatal("a/y cannot reach a/x:80")
			}
		}
		for i := 0; i < 2; i++ {
			if probe(l.ns["c/w"], x, policy.TCP) {
				t.Fatal("c/w reaches a/x:80")
			}
		}
		var got []PolicyCounter
		err := l.ns["node1"].Do(func() (err error) { got, err = l.enf.Counters(context.Background()); return err })
		if err != nil {
			t.Fatal(err)
		}
		key := policy.PolicyKey{Namespace: "a", Name: "count"}
		if len(got) != 2 || got[0].Policy != key || got[0].Verdict != "allow" || got[1].Verdict != "drop" {
			t.Fatalf("counters: %+v", got)
		}
		// One first packet per allowed connection (the rest is
		// established); a refused SYN may be retransmitted.
		if got[0].Packets != 3 || got[1].Packets < 2 {
			t.Errorf("allow %d packets (want 3), drop %d (want ≥ 2)", got[0].Packets, got[1].Packets)
		}
	})
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
