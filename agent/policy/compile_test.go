package policy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCompileLocalPodsAndIsolation(t *testing.T) {
	m := mustCompile(t, testInput(
		np("a", "in", "x", nil, nil, nil),
		np("a", "out", "", egressOnly, nil, nil),
		np("b", "remote-only", "", both, nil, nil), // selects only b/z, which is on n2
	))
	var got []string
	for _, p := range m.Pods {
		got = append(got, p.String()+" in="+keys(p.Ingress)+" out="+keys(p.Egress))
	}
	// a/h (host network) and b/z (other node) are not local pods.
	want := []string{"a/x in=a/in out=a/out", "a/y in= out=a/out", "c/w in= out="}
	if !slices.Equal(got, want) {
		t.Errorf("pods:\n got %q\nwant %q", got, want)
	}
	if _, ok := m.Policies[PolicyKey{"b", "remote-only"}]; ok {
		t.Errorf("a policy selecting no local pod was compiled")
	}
	if p := m.PodByIP(ip("10.0.0.1")); p != nil {
		t.Errorf("the host-network pod's address maps to local pod %s", p)
	}
}

func TestCompileClusterView(t *testing.T) {
	in := testInput(np("b", "deny", "", ingressOnly, nil, nil))
	in.NodeName = ""
	m := mustCompile(t, in)
	if r := m.Evaluate(Flow{Src: addrOf(0, "a/x"), Dst: addrOf(0, "b/z"), Protocol: TCP, Port: 7070}); r.Verdict != Deny {
		t.Errorf("cluster view: remote pod's policy not enforced:\n%s", r)
	}
}

func TestCompileResolvesNamedPortsPerPod(t *testing.T) {
	m := mustCompile(t, testInput(
		np("a", "in", "", ingressOnly, ingressRules(in(nil, namedPortRef(tcp, "http"), namedPortRef(udp, "dns"))), nil),
		np("a", "out", "x", egressOnly, nil, egressRules(out(peers(nsPeer("b")), namedPortRef(tcp, "http")))),
	))
	str := func(aps []AddrPort) string {
		var s []string
		for _, a := range aps {
			s = append(s, a.String())
		}
		return strings.Join(s, ", ")
	}
	in := m.Policies[PolicyKey{"a", "in"}].Ingress[0]
	if got, want := str(in.NamedPorts), "10.1.0.1 tcp/8080, 10.1.0.1 udp/53, 10.1.0.2 tcp/9090, fd01::1 tcp/8080, fd01::1 udp/53, fd01::2 tcp/9090"; got != want {
		t.Errorf("ingress named ports:\n got %s\nwant %s", got, want)
	}
	out := m.Policies[PolicyKey{"a", "out"}].Egress[0]
	if got, want := str(out.NamedPorts), "10.2.0.1 tcp/7070, fd02::1 tcp/7070"; got != want {
		t.Errorf("egress named ports:\n got %s\nwant %s", got, want)
	}
}

func TestCompileFailsClosed(t *testing.T) {
	bad := np("a", "bad", "", ingressOnly, ingressRules(in(peers(
		networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}},
		networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "not-a-cidr"}},
	))), nil)
	bad.Spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}
	m := Compile(testInput(bad))
	if len(m.Errors) != 3 {
		t.Fatalf("want 3 errors, got %v", m.Errors)
	}
	// The unreadable pod selector isolates every pod of the namespace,
	// the unreadable peers allow nothing.
	for _, c := range []string{"a/x", "a/y"} {
		if r := m.Evaluate(Flow{Src: addrOf(0, "c/w"), Dst: addrOf(0, c), Protocol: TCP, Port: 80}); r.Verdict != Deny {
			t.Errorf("fail-closed: %s", r)
		}
	}
}

func TestAddrSet(t *testing.T) {
	r := func(p string) AddrRange { return rangeOf(netip.MustParsePrefix(p)) }
	cases := []struct {
		name string
		in   []AddrRange
		cut  []AddrRange
		want string
	}{
		{"merge overlap and adjacency", []AddrRange{r("10.0.1.0/24"), r("10.0.0.0/24"), r("10.0.0.5/32")}, nil, "10.0.0.0/23"},
		{"families stay apart", []AddrRange{r("fd00::/64"), r("10.0.0.0/8")}, nil, "10.0.0.0/8, fd00::/64"},
		{"except in the middle", []AddrRange{r("10.0.0.0/24")}, []AddrRange{r("10.0.0.128/26")}, "10.0.0.0/25, 10.0.0.192/26"},
		{"except at the start", []AddrRange{r("10.0.0.0/24")}, []AddrRange{r("10.0.0.0/25")}, "10.0.0.128/25"},
		{"except a single address", []AddrRange{r("10.0.0.0/30")}, []AddrRange{r("10.0.0.1/32")}, "10.0.0.0, 10.0.0.2/31"},
		{"except everything", []AddrRange{r("10.0.0.0/24")}, []AddrRange{r("10.0.0.0/16")}, ""},
		{"other family's except ignored", []AddrRange{r("10.0.0.0/24")}, []AddrRange{r("::/0")}, "10.0.0.0/24"},
		{"whole space", []AddrRange{r("0.0.0.0/0"), r("255.255.255.255/32"), r("::/0")}, nil, "0.0.0.0/0, ::/0"},
		{"IPv6 except", []AddrRange{r("2001:db8::/64")}, []AddrRange{r("2001:db8::80/121")}, "2001:db8::/121, 2001:db8::100-2001:db8::ffff:ffff:ffff:ffff"},
	}
	for _, tc := range cases {
		var rs []AddrRange
		for _, x := range tc.in {
			rs = append(rs, subtractRanges(x, tc.cut)...)
		}
		if got := newAddrSet(rs).String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	s := newAddrSet([]AddrRange{r("10.0.0.0/25"), r("10.0.0.200/32"), r("fd00::/127")})
	for a, want := range map[string]bool{"10.0.0.0": true, "10.0.0.127": true, "10.0.0.128": false, "10.0.0.200": true,
		"10.0.0.201": false, "9.255.255.255": false, "fd00::1": true, "fd00::2": false, "::ffff:10.0.0.1": true} {
		if got := s.Contains(ip(a)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", a, got, want)
		}
	}
}

func keys(ks []PolicyKey) string {
	var s []string
	for _, k := range ks {
		s = append(s, k.String())
	}
	return strings.Join(s, ",")
}
