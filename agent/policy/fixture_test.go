package policy

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The test cluster: node n1 (this node) and n2, namespaces a (team=a),
// b (team=b) and c (no labels).
//
//	a/x  n1  app=x        http=8080/TCP dns=53/UDP
//	a/y  n1  app=y        http=9090/TCP
//	b/z  n2  app=z        http=7070/TCP (remote: only a peer here)
//	c/w  n1  app=w        no ports
//	a/h  n1  app=x        host network (never selected)
//
// Each endpoint name has one address per family.
var families = []struct {
	name  string
	addrs map[string]netip.Addr
}{
	{"IPv4", map[string]netip.Addr{
		"a/x": ip("10.1.0.1"), "a/y": ip("10.1.0.2"), "c/w": ip("10.1.0.3"), "b/z": ip("10.2.0.1"),
		"node": ip("10.0.0.1"), "node2": ip("10.0.0.2"),
		"ext": ip("203.0.113.5"), "ext-except": ip("203.0.113.200"), "ext-far": ip("198.51.100.1"),
	}},
	{"IPv6", map[string]netip.Addr{
		"a/x": ip("fd01::1"), "a/y": ip("fd01::2"), "c/w": ip("fd01::3"), "b/z": ip("fd02::1"),
		"node": ip("fd00::1"), "node2": ip("fd00::2"),
		"ext": ip("2001:db8::5"), "ext-except": ip("2001:db8::c8"), "ext-far": ip("2001:db8:1::1"),
	}},
}

// The ipBlocks of the tests: ext lies in extBlock, ext-except in its except.
var (
	extBlocks  = []string{"203.0.113.0/24", "2001:db8::/64"}
	extExcepts = map[string]string{"203.0.113.0/24": "203.0.113.128/25", "2001:db8::/64": "2001:db8::80/121"}
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func addrOf(fam int, name string) netip.Addr { return families[fam].addrs[name] }

func testInput(policies ...*networkingv1.NetworkPolicy) Input {
	pod := func(ns, name, node string, app string, ports ...corev1.ContainerPort) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Ports: ports}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning},
		}
		for _, f := range families {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: f.addrs[ns+"/"+name].String()})
		}
		return p
	}
	host := pod("a", "h", "n1", "x")
	host.Spec.HostNetwork = true
	host.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}}
	return Input{
		NodeName: "n1",
		NodeIPs:  []netip.Addr{addrOf(0, "node"), addrOf(1, "node")},
		Policies: policies,
		Namespaces: []*corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"team": "a"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"team": "b"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "c"}},
		},
		Pods: []*corev1.Pod{
			pod("a", "x", "n1", "x", cport("http", 8080, corev1.ProtocolTCP), cport("dns", 53, corev1.ProtocolUDP)),
			pod("a", "y", "n1", "y", cport("http", 9090, corev1.ProtocolTCP)),
			pod("b", "z", "n2", "z", cport("http", 7070, corev1.ProtocolTCP)),
			pod("c", "w", "n1", "w"),
			host,
		},
	}
}

func cport(name string, port int32, proto corev1.Protocol) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: port, Protocol: proto}
}

// np builds a policy in namespace ns selecting app=sel ("" selects all).
func np(ns, name, sel string, types []networkingv1.PolicyType, ingress []networkingv1.NetworkPolicyIngressRule, egress []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: types, Ingress: ingress, Egress: egress},
	}
	if sel != "" {
		p.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app": sel}}
	}
	return p
}

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	both        = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
)

// podPeer selects app=app pods ("" selects all) of the policy's namespace.
func podPeer(app string) networkingv1.NetworkPolicyPeer {
	s := &metav1.LabelSelector{}
	if app != "" {
		s.MatchLabels = map[string]string{"app": app}
	}
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(team string) networkingv1.NetworkPolicyPeer {
	s := &metav1.LabelSelector{}
	if team != "" {
		s.MatchLabels = map[string]string{"team": team}
	}
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func nsPodPeer(team, app string) networkingv1.NetworkPolicyPeer {
	p := nsPeer(team)
	p.PodSelector = podPeer(app).PodSelector
	return p
}

// blockPeers returns one ipBlock peer per family (ext's block, except
// ext-except's range when withExcept).
func blockPeers(withExcept bool) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for _, c := range extBlocks {
		b := &networkingv1.IPBlock{CIDR: c}
		if withExcept {
			b.Except = []string{extExcepts[c]}
		}
		out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: b})
	}
	return out
}

func port(proto corev1.Protocol, p int) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(int32(p))
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

func portRange(proto corev1.Protocol, p, end int) networkingv1.NetworkPolicyPort {
	r := port(proto, p)
	e := int32(end)
	r.EndPort = &e
	return r
}

func namedPortRef(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	v := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

func protoOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

func in(from []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{From: from, Ports: ports}
}

func out(to []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{To: to, Ports: ports}
}

func peers(p ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return p }

func ingressRules(r ...networkingv1.NetworkPolicyIngressRule) []networkingv1.NetworkPolicyIngressRule {
	return r
}

func egressRules(r ...networkingv1.NetworkPolicyEgressRule) []networkingv1.NetworkPolicyEgressRule {
	return r
}

func mustCompile(t testing.TB, in Input) *Model {
	t.Helper()
	m := Compile(in)
	if len(m.Errors) > 0 {
		t.Fatalf("compile errors: %v", m.Errors)
	}
	return m
}
