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
	"k8s.io/apimachinery/pkg/util/intstr"
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
	// localIndex is the pod's position in the Model.Pods being built
	// (local pods only).
	localIndex int
	// published is the LocalPod the last model made of this parse (see
	// Compiler.publish), nil before.
	published *LocalPod
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
// Model.Errors. It is NewCompiler().Compile(in): a Compiler kept between
// calls returns the same model for less work.
func Compile(in Input) *Model {
	return NewCompiler().Compile(in)
}

// compiledPolicy is one policy compiled against an index, with what a
// later Compile needs to tell whether it still holds.
type compiledPolicy struct {
	np  *networkingv1.NetworkPolicy
	key PolicyKey
	// podSel selects the policy's pods (Everything when unreadable, and
	// podSelErr says why).
	podSel    labels.Selector
	podSelErr error
	// peerKeys are its rules' peer keys (see compiler.peerKeys), which
	// depend on the spec alone.
	peerKeys map[ruleID]peerKeys
	// peers are the readable selector peers of every rule: a pod they
	// can match changes the rule's peers.
	peers []peerSelector
	// anyPod: an egress rule resolves named ports against every pod
	// (any peer) or against the pods in ipBlocks; any pod change may
	// change it.
	anyPod bool
	// selected are the local pods the policy selects, in index order;
	// policy is nil when there are none.
	selected []*pod
	policy   *Policy
	// events are the policy's errors in order (see errorEvent).
	events []errorEvent
}

// peerSelector is one readable selector peer: pods matching pods in the
// namespaces matching ns (nil ns: the policy's own namespace).
type peerSelector struct {
	ns, pods labels.Selector
}

// errorEvent is one error of a policy, or the errors of resolving peers
// that several rules, in any policy, may share (key non-empty): the model
// reports those once, for the first rule in policy order that resolves
// them, as resolving them once does.
type errorEvent struct {
	key  string
	errs []error
}

// compilePolicy compiles np against ix; cache shares peer resolutions
// between the policies of one Compile.
//
// prev, when not nil, is the previous compile of the same object: what
// depends on the policy's spec alone (its podSelector, the peers it
// depends on, its rules' peer keys) is taken from it.
func compilePolicy(ix *index, np *networkingv1.NetworkPolicy, cache *resolveCache, prev *compiledPolicy) *compiledPolicy {
	key := PolicyKey{np.Namespace, np.Name}
	cp := &compiledPolicy{np: np, key: key}
	if prev != nil && prev.np == np {
		cp.podSel, cp.podSelErr, cp.peers, cp.anyPod, cp.peerKeys = prev.podSel, prev.podSelErr, prev.peers, prev.anyPod, prev.peerKeys
	} else {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			sel = labels.Everything()
		}
		cp.podSel, cp.podSelErr = sel, err
		cp.peers, cp.anyPod = dependencies(np)
		cp.peerKeys = map[ruleID]peerKeys{}
	}
	if cp.podSelErr != nil {
		cp.events = append(cp.events, errorEvent{errs: []error{fmt.Errorf("policy %s: podSelector: %w (selecting every pod of the namespace)", key, cp.podSelErr)}})
	}
	sel := cp.podSel
	for _, p := range ix.byNamespace[np.Namespace] {
		if p.local && sel.Matches(p.labels) {
			cp.selected = append(cp.selected, p)
		}
	}
	if len(cp.selected) == 0 {
		return cp
	}
	pol := &Policy{Key: key}
	pol.IsolatesIngress, pol.IsolatesEgress = isolation(np)
	c := compiler{ix: ix, policy: np, selected: cp.selected, events: &cp.events, cache: cache, keys: cp.peerKeys}
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
	cp.policy = pol
	return cp
}

// dependencies returns the readable selector peers of np's rules, and
// whether an egress rule's named ports depend on every pod.
func dependencies(np *networkingv1.NetworkPolicy) (peers []peerSelector, anyPod bool) {
	add := func(list []networkingv1.NetworkPolicyPeer) {
		for _, p := range list {
			if p.IPBlock != nil || (p.PodSelector == nil && p.NamespaceSelector == nil) {
				continue
			}
			ps := peerSelector{pods: labels.Everything()}
			var err error
			if p.PodSelector != nil {
				if ps.pods, err = metav1.LabelSelectorAsSelector(p.PodSelector); err != nil {
					continue // matches nothing
				}
			}
			if p.NamespaceSelector != nil {
				if ps.ns, err = metav1.LabelSelectorAsSelector(p.NamespaceSelector); err != nil {
					continue
				}
			}
			peers = append(peers, ps)
		}
	}
	for _, r := range np.Spec.Ingress {
		add(r.From)
	}
	for _, r := range np.Spec.Egress {
		add(r.To)
		named := false
		for _, p := range r.Ports {
			named = named || (p.Port != nil && p.Port.Type == intstr.String)
		}
		if !named {
			continue
		}
		if len(r.To) == 0 {
			anyPod = true
		}
		for _, p := range r.To {
			anyPod = anyPod || p.IPBlock != nil
		}
	}
	return peers, anyPod
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

// parsePod returns p as the compiler reads it, or nil when no policy may
// select it or name it as a peer: host-network pods carry the node's
// addresses, a finished pod's address may already belong to a new pod, and
// a pod without an address has nothing to match.
func parsePod(p *corev1.Pod, nodeName string) *pod {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	ips := sortedAddrs(PodIPs(p))
	if len(ips) == 0 {
		return nil
	}
	x := &pod{
		namespace: p.Namespace, name: p.Name, labels: labels.Set(p.Labels), ips: ips,
		local: nodeName == "" || p.Spec.NodeName == nodeName,
	}
	if len(p.Spec.Containers) == 1 {
		x.ports = p.Spec.Containers[0].Ports // read only: no copy
	} else {
		for _, c := range p.Spec.Containers {
			x.ports = append(x.ports, c.Ports...)
		}
	}
	return x
}

// newIndex arranges pods, already sorted by namespace/name, and the
// namespaces' labels.
func newIndex(pods []*pod, nsLabels map[string]labels.Set) *index {
	ix := &index{byNamespace: map[string][]*pod{}, nsLabels: nsLabels, pods: pods}
	names := make(map[string]bool, len(nsLabels))
	for n := range nsLabels {
		names[n] = true
	}
	// A namespace's pods are contiguous in pods: slice, do not copy.
	for start := 0; start < len(pods); {
		ns := pods[start].namespace
		end := start + 1
		for end < len(pods) && pods[end].namespace == ns {
			end++
		}
		ix.byNamespace[ns] = pods[start:end:end]
		names[ns] = true
		start = end
	}
	ix.namespaces = make([]string, 0, len(names))
	for n := range names {
		ix.namespaces = append(ix.namespaces, n)
	}
	slices.Sort(ix.namespaces)
	return ix
}

func comparePods(a, b *pod) int {
	if c := strings.Compare(a.namespace, b.namespace); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// podIPs returns the pod's parsed addresses, sorted, without duplicates.
// PodIPs returns the pod's status addresses as the compiler reads them, in the status's order:
// status.podIPs, or status.podIP when the list is empty; unparsable ones are left out, IPv4-mapped
// ones unmapped. The CNI admission and plexusctl trace read pods through it too, so all three
// agree on a pod's addresses.
func PodIPs(p *corev1.Pod) []netip.Addr {
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
	return out
}

func sortedAddrs(in []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, len(in))
	for i, a := range in {
		out[i] = a.Unmap()
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
