package policytest

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Scale is a generated cluster for benchmarks: pods spread over
// namespaces, all on NodeName, and policies of every shape.
type Scale struct {
	Pods       []*corev1.Pod
	Namespaces []*corev1.Namespace
	Policies   []*networkingv1.NetworkPolicy
}

// Scale shape: namespaces hold scaleApps apps each; a tenth of the
// namespaces carry env=prod.
const (
	scaleNamespaces = 100
	scaleApps       = 20
)

// NewScale returns pods pods (dual-stack, one named port each), all on
// NodeName, and
// policies policies, evenly over 100 namespaces. Policy i selects app
// i%20 of its namespace and, by i%5: allows ingress from one app on TCP 80;
// from env=prod namespaces on a named port; from an ipBlock with an
// except on a port range; isolates egress to its namespace plus UDP 53
// anywhere; or denies all ingress.
func NewScale(pods, policies int) *Scale { return NewScaleLocal(pods, policies, 1) }

// NewScaleLocal is NewScale with only every localEvery-th pod on NodeName
// (the others on n2): a node's share of a larger cluster.
func NewScaleLocal(pods, policies, localEvery int) *Scale {
	s := &Scale{}
	for n := 0; n < scaleNamespaces; n++ {
		labels := map[string]string{"kubernetes.io/metadata.name": scaleNS(n)}
		if n%10 == 0 {
			labels["env"] = "prod"
		}
		s.Namespaces = append(s.Namespaces, Namespace(scaleNS(n), labels))
	}
	for i := 0; i < pods; i++ {
		p := ScalePod(i, fmt.Sprintf("app%d", (i/scaleNamespaces)%scaleApps))
		if (i+i/scaleNamespaces)%localEvery != 0 { // spread over namespaces and apps
			p.Spec.NodeName = "n2"
		}
		s.Pods = append(s.Pods, p)
	}
	for i := 0; i < policies; i++ {
		s.Policies = append(s.Policies, ScalePolicy(i, 80))
	}
	return s
}

func scaleNS(n int) string { return fmt.Sprintf("ns%d", n) }

// ScalePod returns generated pod i with label app.
func ScalePod(i int, app string) *corev1.Pod {
	v4 := netip.AddrFrom4([4]byte{10, byte(64 + i>>16), byte(i >> 8), byte(i)})
	v6 := netip.AddrFrom16([16]byte{0xfd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)})
	return Pod(scaleNS(i%scaleNamespaces), fmt.Sprintf("pod%d", i), NodeName, map[string]string{"app": app},
		[]netip.Addr{v4, v6}, CPort("http", int32(8000+i%3), corev1.ProtocolTCP))
}

// ScalePolicy returns generated policy i; port is its first numbered port
// (change it to change the policy).
func ScalePolicy(i, port int) *networkingv1.NetworkPolicy {
	ns := scaleNS(i % scaleNamespaces)
	sel := fmt.Sprintf("app%d", (i/scaleNamespaces)%scaleApps)
	name := fmt.Sprintf("pol%d", i)
	switch i % 5 {
	case 0:
		return NP(ns, name, sel, IngressOnly, IngressRules(In(Peers(PodPeer(fmt.Sprintf("app%d", (i+1)%scaleApps))), Port(corev1.ProtocolTCP, port))), nil)
	case 1:
		prod := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}
		return NP(ns, name, sel, IngressOnly, IngressRules(In(Peers(prod), NamedPort(corev1.ProtocolTCP, "http"), Port(corev1.ProtocolTCP, port))), nil)
	case 2:
		blocks := Peers(
			networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "172.16.0.0/12", Except: []string{fmt.Sprintf("172.16.%d.0/24", i%256)}}},
			networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "fd99::/48", Except: []string{fmt.Sprintf("fd99:0:0:%x::/64", i)}}})
		return NP(ns, name, sel, IngressOnly, IngressRules(In(blocks, PortRange(corev1.ProtocolTCP, port, port+100))), nil)
	case 3:
		dns := intstr.FromInt32(53)
		udp := corev1.ProtocolUDP
		return NP(ns, name, sel, EgressOnly, nil, EgressRules(
			Out(Peers(PodPeer("")), Port(corev1.ProtocolTCP, port)),
			Out(nil, networkingv1.NetworkPolicyPort{Protocol: &udp, Port: &dns})))
	default:
		return NP(ns, name, sel, IngressOnly, nil, nil)
	}
}
