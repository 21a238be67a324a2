package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Input is everything the model is compiled from.
type Input struct {
	// NodeName is the node whose pods are local; empty makes every pod
	// local (a cluster-wide view, for tracing between any two pods).
	NodeName string
	// NodeIPs are the node's own addresses: all of them (uplink, tunnel,
	// pod gateway), since the data plane allows whatever the node itself
	// sends and Evaluate must agree.
	NodeIPs []netip.Addr
	// Policies, Pods and Namespaces are the cluster's objects; only the
	// fields the model reads matter (see trimming in the agent).
	Policies   []*networkingv1.NetworkPolicy
	Pods       []*corev1.Pod
	Namespaces []*corev1.Namespace
}

// pod is a pod as the compiler reads it.
type pod struct {
	namespace, name string
	labels          labels.Set
	ips             []netip.Addr
	ports           []corev1.ContainerPort
	local           bool
}

// index holds the inputs arranged for selector matching.
type index struct {
	pods        []*pod            // every selectable pod (has IPs, not host network, not finished)
	byNamespace map[string][]*pod // the same, per namespace
	nsLabels    map[string]labels.Set
	namespaces  []string // every namespace a pod or Namespace names, sorted
}

// Compile builds the model of in. It never fails: a policy it cannot read
// fully fails closed (it isolates and allows less) and is listed in
// Model.Errors.
func Compile(in Input) *Model {
	ix := newIndex(in)
	m := &Model{
		NodeIPs:  sortedAddrs(in.NodeIPs),
		Policies: map[PolicyKey]*Policy{},
		Pods:     make([]LocalPod, 0, len(ix.pods)),
	}
	cache := &resolveCache{peers: map[string]*peerResolution{}, named: map[string][]AddrPort{}}
	local := make(map[*pod]int, len(ix.pods))
	for _, p := range ix.pods {
		if p.local {
			local[p] = len(m.Pods)
			m.Pods = append(m.Pods, LocalPod{Namespace: p.namespace, Name: p.name, IPs: p.ips})
		}
	}
	policies := slices.Clone(in.Policies)
	slices.SortFunc(policies, func(a, b *networkingv1.NetworkPolicy) int {
		return comparePolicyKeys(PolicyKey{a.Namespace, a.Name}, PolicyKey{b.Namespace, b.Name})
	})
	for _, np := range policies {
		key := PolicyKey{np.Namespace, np.Name}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			m.Errors = append(m.Errors, fmt.Errorf("policy %s: podSelector: %w (selecting every pod of the namespace)", key, err))
			sel = labels.Everything()
		}
		var selected []*pod
		for _, p := range ix.byNamespace[np.Namespace] {
			if p.local && sel.Matches(p.labels) {
				selected = append(selected, p)
			}
		}
		if len(selected) == 0 {
			continue
		}
		pol := &Policy{Key: key}
		pol.IsolatesIngress, pol.IsolatesEgress = isolation(np)
		c := compiler{ix: ix, policy: np, selected: selected, errs: &m.Errors, cache: cache}
		if pol.IsolatesIngress {
			for i, r := range np.Spec.Ingress {
				pol.Ingress = append(pol.Ingress, c.rule(Ingress, i, r.From, r.Ports))
			}
		}
		if pol.IsolatesEgress {
			for i, r := range np.Spec.Egress {
				pol.Egress = append(pol.Egress, c.rule(Egress, i, r.To, r.Ports))
			}
		}
		m.Policies[key] = pol
		for _, p := range selected {
			lp := &m.Pods[local[p]]
			if pol.IsolatesIngress {
				lp.Ingress = append(lp.Ingress, key)
			}
			if pol.IsolatesEgress {
				lp.Egress = append(lp.Egress, key)
			}
		}
	}
	m.byIP = make(map[netip.Addr]int, 2*len(m.Pods))
	for i := range m.Pods {
		for _, a := range m.Pods[i].IPs {
			m.byIP[a] = i
		}
	}
	return m
}

// isolation returns the directions np isolates: policyTypes, or when it is
// empty Ingress always and Egress when the policy has egress rules.
func isolation(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

func newIndex(in Input) *index {
	ix := &index{byNamespace: map[string][]*pod{}, nsLabels: map[string]labels.Set{}, pods: make([]*pod, 0, len(in.Pods))}
	names := map[string]bool{}
	for _, ns := range in.Namespaces {
		ix.nsLabels[ns.Name] = labels.Set(ns.Labels)
		names[ns.Name] = true
	}
	for _, p := range in.Pods {
		if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			// Host-network pods carry the node's addresses; a finished
			// pod's address may already belong to a new pod.
			continue
		}
		ips := podIPs(p)
		if len(ips) == 0 {
			continue
		}
		x := &pod{
			namespace: p.Namespace, name: p.Name, labels: labels.Set(p.Labels), ips: ips,
			local: in.NodeName == "" || p.Spec.NodeName == in.NodeName,
		}
		if len(p.Spec.Containers) == 1 {
			x.ports = p.Spec.Containers[0].Ports // read only: no copy
		} else {
			for _, c := range p.Spec.Containers {
				x.ports = append(x.ports, c.Ports...)
			}
		}
		ix.pods = append(ix.pods, x)
		names[p.Namespace] = true
	}
	slices.SortFunc(ix.pods, func(a, b *pod) int {
		if c := strings.Compare(a.namespace, b.namespace); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	for _, p := range ix.pods {
		ix.byNamespace[p.namespace] = append(ix.byNamespace[p.namespace], p)
	}
	for n := range names {
		ix.namespaces = append(ix.namespaces, n)
	}
	slices.Sort(ix.namespaces)
	return ix
}

// podIPs returns the pod's parsed addresses, sorted, without duplicates.
func podIPs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a.Unmap())
		}
	}
	for _, ip := range p.Status.PodIPs {
		add(ip.IP)
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		add(p.Status.PodIP)
	}
	return sortedAddrs(out)
}

func sortedAddrs(in []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, len(in))
	for i, a := range in {
		out[i] = a.Unmap()
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
