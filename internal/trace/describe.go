package trace

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-net/plexus/agent/policy"
)

// describeRule renders rule i of np's direction d as a person reads it:
// "from podSelector app=frontend, port tcp/80".
func describeRule(np *networkingv1.NetworkPolicy, d policy.Direction, i int) string {
	if np == nil {
		return ""
	}
	var peers []networkingv1.NetworkPolicyPeer
	var ports []networkingv1.NetworkPolicyPort
	word := "from"
	switch {
	case d == policy.Ingress && i < len(np.Spec.Ingress):
		peers, ports = np.Spec.Ingress[i].From, np.Spec.Ingress[i].Ports
	case d == policy.Egress && i < len(np.Spec.Egress):
		peers, ports = np.Spec.Egress[i].To, np.Spec.Egress[i].Ports
		word = "to"
	default:
		return ""
	}
	peerText := word + " anywhere"
	if len(peers) > 0 {
		parts := make([]string, len(peers))
		for j, p := range peers {
			parts[j] = describePeer(p)
		}
		peerText = word + " " + strings.Join(parts, " or ")
	}
	portText := "any port"
	if len(ports) > 0 {
		parts := make([]string, len(ports))
		for j, p := range ports {
			parts[j] = describePort(p)
		}
		portText = "port " + strings.Join(parts, ", ")
	}
	return peerText + ", " + portText
}

// describePeer renders one peer: "podSelector app=web in namespaceSelector team=a",
// "ipBlock 10.0.0.0/8 except 10.1.0.0/16".
func describePeer(p networkingv1.NetworkPolicyPeer) string {
	if p.IPBlock != nil {
		s := "ipBlock " + p.IPBlock.CIDR
		if len(p.IPBlock.Except) > 0 {
			s += " except " + strings.Join(p.IPBlock.Except, ", ")
		}
		return s
	}
	var parts []string
	if p.PodSelector != nil {
		parts = append(parts, "podSelector "+selectorText(p.PodSelector, "all pods"))
	}
	if p.NamespaceSelector != nil {
		parts = append(parts, "namespaceSelector "+selectorText(p.NamespaceSelector, "all namespaces"))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " in ")
}

func selectorText(s *metav1.LabelSelector, empty string) string {
	if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
		return "{} (" + empty + ")"
	}
	return metav1.FormatLabelSelector(s)
}

// describePort renders one port entry: "tcp/80", "udp/53-60", "tcp/http", "tcp (all ports)".
func describePort(p networkingv1.NetworkPolicyPort) string {
	proto := "tcp"
	if p.Protocol != nil {
		proto = strings.ToLower(string(*p.Protocol))
	}
	if p.Port == nil {
		return proto + " (all ports)"
	}
	s := proto + "/" + p.Port.String()
	if p.EndPort != nil {
		s += fmt.Sprintf("-%d", *p.EndPort)
	}
	return s
}
