package e2e

import (
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Short builders for the truth table's NetworkPolicies, so a case reads like the policy it applies.

type (
	peer     = networkingv1.NetworkPolicyPeer
	npPort   = networkingv1.NetworkPolicyPort
	inRule   = networkingv1.NetworkPolicyIngressRule
	outRule  = networkingv1.NetworkPolicyEgressRule
	polTypes = []networkingv1.PolicyType
)

var (
	ingressOnly = polTypes{networkingv1.PolicyTypeIngress}
	egressOnly  = polTypes{networkingv1.PolicyTypeEgress}
	bothWays    = polTypes{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
)

// truthCase is one row of the suite: steps applied in order, each checked by a probe round.
type truthCase struct {
	name  string
	steps func(w *truthWorld) []truthStep
}

// truthStep changes the cluster (do), then expects the matrix allowed describes and the extras.
type truthStep struct {
	what    string
	do      func(w *truthWorld)
	allowed allowFunc
	extras  []extraProbe
	// extrasFrom, when set, holds more extras that do fills in (they name objects do creates).
	extrasFrom *[]extraProbe
}

// policy is a NetworkPolicy in namespace ns (short name) selecting pods.
func policy(ns, name string, pods *metav1.LabelSelector, types polTypes, in []inRule, out []outRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: truthNamespace(ns)},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: *pods, PolicyTypes: types, Ingress: in, Egress: out},
	}
}

// sel is a label selector of key/value pairs; sel() selects everything.
func sel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{}
	for i := 0; i+1 < len(kv); i += 2 {
		if s.MatchLabels == nil {
			s.MatchLabels = map[string]string{}
		}
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

// selExpr is a selector of one expression (In, NotIn, Exists, DoesNotExist).
func selExpr(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

// podsOfNS selects namespace x by its label.
func podsOfNS(ns string) *metav1.LabelSelector { return sel(nsLabel, ns) }

// podNamed selects pod a by its label.
func podNamed(name string) *metav1.LabelSelector { return sel(podLabel, name) }

func podsPeer(s *metav1.LabelSelector) peer { return peer{PodSelector: s} }
func nsPeer(s *metav1.LabelSelector) peer   { return peer{NamespaceSelector: s} }
func nsPodsPeer(ns, pods *metav1.LabelSelector) peer {
	return peer{NamespaceSelector: ns, PodSelector: pods}
}

// blockPeers is one ipBlock peer per CIDR, each with the excepts of its family.
func blockPeers(cidrs []netip.Prefix, except ...netip.Prefix) []peer {
	var out []peer
	for _, c := range cidrs {
		b := &networkingv1.IPBlock{CIDR: c.Masked().String()}
		for _, e := range except {
			if e.Addr().Is6() == c.Addr().Is6() {
				b.Except = append(b.Except, e.Masked().String())
			}
		}
		out = append(out, peer{IPBlock: b})
	}
	return out
}

// hostPrefixes are /32 and /128 prefixes of addresses.
func hostPrefixes(ips ...netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, ip := range ips {
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out
}

func protocol(proto string) *corev1.Protocol {
	p := corev1.Protocol(strings.ToUpper(proto))
	return &p
}

// port is one numbered port of a protocol; portRange port..end; namedPort a container port name;
// anyPort every port of a protocol.
func port(proto string, n int32) npPort {
	v := intstr.FromInt32(n)
	return npPort{Protocol: protocol(proto), Port: &v}
}

func portRange(proto string, from, end int32) npPort {
	p := port(proto, from)
	p.EndPort = &end
	return p
}

func namedPort(proto, name string) npPort {
	v := intstr.FromString(name)
	return npPort{Protocol: protocol(proto), Port: &v}
}

func anyPort(proto string) npPort { return npPort{Protocol: protocol(proto)} }

// from is an ingress rule; to an egress rule. nil peers or ports mean "any".
func from(peers []peer, ports ...npPort) inRule { return inRule{From: peers, Ports: ports} }
func to(peers []peer, ports ...npPort) outRule  { return outRule{To: peers, Ports: ports} }

// peers is a peer list.
func peers(p ...peer) []peer { return p }

// allowAll is the matrix of a cluster without policies.
func allowAll(_, _ *truthPod, _ probeKind) bool { return true }

// is says whether the kind is this protocol and port.
func (k probeKind) is(proto string, port int32) bool { return k.proto == proto && k.port == port }

// in says whether s is one of the values.
func in(s string, values ...string) bool {
	for _, v := range values {
		if s == v {
			return true
		}
	}
	return false
}
