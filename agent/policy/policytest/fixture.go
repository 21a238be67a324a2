// Package policytest holds the test cluster and NetworkPolicy builders the
// policy engine's tests share (model, nftables backend, benchmarks). It
// depends on API types only.
package policytest

import (
	"net/netip"

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
//	b/z  n2  app=z        http=7070/TCP (remote: only a peer on n1)
//	c/w  n1  app=w        no ports
//	a/h  n1  app=x        host network (never selected)
//
// Each endpoint name has one address per family (Families).
const (
	// NodeName is the node whose pods are local.
	NodeName = "n1"
)

// Family is one IP family's addresses of the test cluster's endpoints:
// pods by namespace/name, "node" (n1), "node2", "ext" (inside ExtBlocks),
// "ext-except" (inside the block's except), "ext-far" (outside).
type Family struct {
	Name  string
	Addrs map[string]netip.Addr
}

// Families are IPv4 and IPv6.
var Families = []Family{
	{"IPv4", map[string]netip.Addr{
		"a/x": IP("10.1.0.1"), "a/y": IP("10.1.0.2"), "c/w": IP("10.1.0.3"), "b/z": IP("10.2.0.1"),
		"node": IP("10.0.0.1"), "node2": IP("10.0.0.2"),
		"ext": IP("203.0.113.5"), "ext-except": IP("203.0.113.200"), "ext-far": IP("198.51.100.1"),
	}},
	{"IPv6", map[string]netip.Addr{
		"a/x": IP("fd01::1"), "a/y": IP("fd01::2"), "c/w": IP("fd01::3"), "b/z": IP("fd02::1"),
		"node": IP("fd00::1"), "node2": IP("fd00::2"),
		"ext": IP("2001:db8::5"), "ext-except": IP("2001:db8::c8"), "ext-far": IP("2001:db8:1::1"),
	}},
}

// ExtBlocks are the ipBlocks of the tests, one per family; ExtExcepts
// their excepts.
var (
	ExtBlocks  = []string{"203.0.113.0/24", "2001:db8::/64"}
	ExtExcepts = map[string]string{"203.0.113.0/24": "203.0.113.128/25", "2001:db8::/64": "2001:db8::80/121"}
)

// IP parses an address or panics.
func IP(s string) netip.Addr { return netip.MustParseAddr(s) }

// Addr returns the address of a named endpoint in family fam (0 v4, 1 v6).
func Addr(fam int, name string) netip.Addr { return Families[fam].Addrs[name] }

// NodeIPs returns n1's addresses.
func NodeIPs() []netip.Addr { return []netip.Addr{Addr(0, "node"), Addr(1, "node")} }

// Pods returns the test cluster's pods.
func Pods() []*corev1.Pod {
	host := Pod("a", "h", "n1", map[string]string{"app": "x"}, nil)
	host.Spec.HostNetwork = true
	host.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}}
	return []*corev1.Pod{
		Pod("a", "x", "n1", map[string]string{"app": "x"}, Addrs("a/x"), CPort("http", 8080, corev1.ProtocolTCP), CPort("dns", 53, corev1.ProtocolUDP)),
		Pod("a", "y", "n1", map[string]string{"app": "y"}, Addrs("a/y"), CPort("http", 9090, corev1.ProtocolTCP)),
		Pod("b", "z", "n2", map[string]string{"app": "z"}, Addrs("b/z"), CPort("http", 7070, corev1.ProtocolTCP)),
		Pod("c", "w", "n1", map[string]string{"app": "w"}, Addrs("c/w")),
		host,
	}
}

// Addrs returns a named endpoint's address in every family.
func Addrs(name string) []netip.Addr {
	var out []netip.Addr
	for _, f := range Families {
		out = append(out, f.Addrs[name])
	}
	return out
}

// Namespaces returns a (team=a), b (team=b) and c.
func Namespaces() []*corev1.Namespace {
	return []*corev1.Namespace{
		Namespace("a", map[string]string{"team": "a"}),
		Namespace("b", map[string]string{"team": "b"}),
		Namespace("c", nil),
	}
}

// Namespace builds a Namespace.
func Namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// Pod builds a running pod with one container.
func Pod(ns, name, node string, labels map[string]string, ips []netip.Addr, ports ...corev1.ContainerPort) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, a := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: a.String()})
	}
	return p
}

// CPort is a named container port.
func CPort(name string, port int32, proto corev1.Protocol) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: port, Protocol: proto}
}

// NP builds a policy in namespace ns selecting app=sel ("" selects all).
func NP(ns, name, sel string, types []networkingv1.PolicyType, ingress []networkingv1.NetworkPolicyIngressRule, egress []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: types, Ingress: ingress, Egress: egress},
	}
	if sel != "" {
		p.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app": sel}}
	}
	return p
}

// Policy types lists.
var (
	IngressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	EgressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	Both        = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
)

// PodPeer selects app=app pods ("" selects all) of the policy's namespace.
func PodPeer(app string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: appSelector(app)}
}

// NSPeer selects every pod of the namespaces labelled team=team ("": all
// namespaces).
func NSPeer(team string) networkingv1.NetworkPolicyPeer {
	s := &metav1.LabelSelector{}
	if team != "" {
		s.MatchLabels = map[string]string{"team": team}
	}
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

// NSPodPeer selects app=app pods in namespaces labelled team=team.
func NSPodPeer(team, app string) networkingv1.NetworkPolicyPeer {
	p := NSPeer(team)
	p.PodSelector = appSelector(app)
	return p
}

func appSelector(app string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{}
	if app != "" {
		s.MatchLabels = map[string]string{"app": app}
	}
	return s
}

// BlockPeers returns one ipBlock peer per family (ExtBlocks, less
// ExtExcepts when withExcept).
func BlockPeers(withExcept bool) []networkingv1.NetworkPolicyPeer {
	var out []networkingv1.NetworkPolicyPeer
	for _, c := range ExtBlocks {
		b := &networkingv1.IPBlock{CIDR: c}
		if withExcept {
			b.Except = []string{ExtExcepts[c]}
		}
		out = append(out, networkingv1.NetworkPolicyPeer{IPBlock: b})
	}
	return out
}

// Port is a numbered policy port.
func Port(proto corev1.Protocol, p int) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(int32(p))
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

// PortRange is p..end.
func PortRange(proto corev1.Protocol, p, end int) networkingv1.NetworkPolicyPort {
	r := Port(proto, p)
	e := int32(end)
	r.EndPort = &e
	return r
}

// NamedPort names a container port.
func NamedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	v := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

// ProtoOnly is every port of proto.
func ProtoOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

// In is an ingress rule.
func In(from []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{From: from, Ports: ports}
}

// Out is an egress rule.
func Out(to []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{To: to, Ports: ports}
}

// Peers lists peers.
func Peers(p ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return p }

// IngressRules lists ingress rules.
func IngressRules(r ...networkingv1.NetworkPolicyIngressRule) []networkingv1.NetworkPolicyIngressRule {
	return r
}

// EgressRules lists egress rules.
func EgressRules(r ...networkingv1.NetworkPolicyEgressRule) []networkingv1.NetworkPolicyEgressRule {
	return r
}

// NPs lists policies.
func NPs(p ...*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy { return p }
