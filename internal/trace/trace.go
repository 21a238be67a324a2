package trace

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/plexus-net/plexus/agent"
	"github.com/plexus-net/plexus/agent/policy"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Cluster is what a trace reads from the API server.
type Cluster struct {
	Pods         []*corev1.Pod
	Namespaces   []*corev1.Namespace
	Policies     []*networkingv1.NetworkPolicy
	Nodes        []*corev1.Node
	NodeNetworks []*v1.NodeNetwork
	// Services are read to refuse a Service address as destination: policy sees the endpoint
	// the Service DNATs to, not the Service.
	Services []*corev1.Service
}

// Endpoint is one end of the traced flow.
type Endpoint struct {
	// Pod is namespace/name, empty for an address that is no pod's.
	Pod  string `json:"pod,omitempty"`
	IP   string `json:"ip"`
	Node string `json:"node,omitempty"`
}

// Side is one direction's decision on one node.
type Side struct {
	// Pod is the pod whose side this is, on Node.
	Pod  string `json:"pod"`
	Node string `json:"node"`
	// IsolatedBy lists the policies that isolate the pod in this direction; empty when none.
	IsolatedBy []string `json:"isolatedBy"`
	// Verdict is "allow" or "deny".
	Verdict string `json:"verdict"`
	// Tier is the decision tier that decided ("networkpolicy"), empty when none did.
	Tier string `json:"tier,omitempty"`
	// Policy, Rule and RuleText name the allowing rule; Rule is -1 when no rule decided.
	Policy   string `json:"policy,omitempty"`
	Rule     int    `json:"rule"`
	RuleText string `json:"ruleText,omitempty"`
	// Reason says why, for humans.
	Reason string `json:"reason"`
}

// Report is a trace's answer.
type Report struct {
	Src      Endpoint `json:"src"`
	Dst      Endpoint `json:"dst"`
	Protocol string   `json:"protocol"`
	Port     uint16   `json:"port"`
	// Egress is the source pod's side; Ingress the destination pod's, nil when the destination is
	// no pod of the cluster (nothing on the way in evaluates NetworkPolicy).
	Egress  *Side `json:"egress"`
	Ingress *Side `json:"ingress"`
	// Verdict is "ALLOW" when both sides allow, else "DENY".
	Verdict string `json:"verdict"`
	// Warnings are problems of the policies involved that the data plane also has (a policy
	// that cannot be read fully fails closed).
	Warnings []string `json:"warnings,omitempty"`
}

// Allowed reports whether the flow is allowed.
func (r *Report) Allowed() bool { return r.Verdict == "ALLOW" }

// Run traces q through the cluster's policies. Errors are *InputError.
func Run(c *Cluster, q Query) (*Report, error) {
	src, err := findPod(c, "source", q.Src)
	if err != nil {
		return nil, err
	}
	var dst *corev1.Pod
	if q.DstPod != (PodName{}) {
		if dst, err = findPod(c, "destination", q.DstPod); err != nil {
			return nil, err
		}
	} else if svc := serviceByIP(c, q.DstIP); svc != nil {
		return nil, inputErrorf("destination %s is an address of Service %s/%s: NetworkPolicy sees the endpoint it is DNATed to, so trace one of its endpoint pods (kubectl get endpointslices -n %s -l kubernetes.io/service-name=%s)",
			q.DstIP, svc.Namespace, svc.Name, svc.Namespace, svc.Name)
	} else {
		dst = podByIP(c, q.DstIP)
	}
	flow, err := pickAddresses(q, src, dst)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Src:      Endpoint{Pod: podKey(src), IP: flow.Src.String(), Node: src.Spec.NodeName},
		Dst:      Endpoint{IP: flow.Dst.String()},
		Protocol: flow.Protocol.String(), Port: flow.Port, Verdict: "ALLOW",
	}
	if dst != nil {
		r.Dst.Pod, r.Dst.Node = podKey(dst), dst.Spec.NodeName
	}
	models := map[string]*policy.Model{}
	model := func(node string) *policy.Model {
		if m, ok := models[node]; ok {
			return m
		}
		m := policy.Compile(policy.Input{
			NodeName: node, NodeIPs: nodeIPs(c, node),
			Policies: c.Policies, Pods: c.Pods, Namespaces: c.Namespaces,
		})
		models[node] = m
		for _, e := range m.Errors {
			if !slices.Contains(r.Warnings, e.Error()) {
				r.Warnings = append(r.Warnings, e.Error())
			}
		}
		return m
	}
	r.Egress = side(c, model(src.Spec.NodeName), policy.Egress, flow, src.Spec.NodeName)
	if dst != nil {
		r.Ingress = side(c, model(dst.Spec.NodeName), policy.Ingress, flow, dst.Spec.NodeName)
	}
	for _, s := range []*Side{r.Egress, r.Ingress} {
		if s != nil && s.Verdict != policy.Allow.String() {
			r.Verdict = "DENY"
		}
	}
	return r, nil
}

// side evaluates flow on node's model and returns the decision of direction d.
func side(c *Cluster, m *policy.Model, d policy.Direction, f policy.Flow, node string) *Side {
	res := m.Evaluate(f)
	for _, dec := range res.Decisions {
		if dec.Direction != d {
			continue
		}
		s := &Side{Pod: dec.Pod, Node: node, IsolatedBy: []string{}, Verdict: dec.Verdict.String(), Tier: dec.Tier, Rule: dec.Rule, Reason: dec.Reason}
		addr := f.Src
		if d == policy.Ingress {
			addr = f.Dst
		}
		if lp := m.PodByIP(addr); lp != nil {
			for _, k := range lp.Isolating(d) {
				s.IsolatedBy = append(s.IsolatedBy, k.String())
			}
		}
		if dec.Rule >= 0 {
			s.Policy = dec.Policy.String()
			s.RuleText = describeRule(findPolicy(c, dec.Policy), d, dec.Rule)
		}
		return s
	}
	// The model has no such pod: Run checked the pod is selectable, so this is a bug.
	return &Side{Node: node, IsolatedBy: []string{}, Verdict: policy.Deny.String(), Rule: -1,
		Reason: "the pod is missing from the node's policy model (a Plexus bug: please report it)"}
}

// pickAddresses chooses the flow's addresses: for an IP destination the source's address of its
// family; between two pods the first family both have, in the source's order (its primary first).
func pickAddresses(q Query, src, dst *corev1.Pod) (policy.Flow, error) {
	f := policy.Flow{Protocol: q.Protocol, Port: q.Port}
	srcIPs := policy.PodIPs(src)
	if q.DstIP.IsValid() {
		for _, a := range srcIPs {
			if a.Is4() == q.DstIP.Is4() {
				f.Src, f.Dst = a, q.DstIP
				return f, nil
			}
		}
		return f, inputErrorf("source pod %s has no %s address (it has %v) to reach %s", podKey(src), family(q.DstIP), srcIPs, q.DstIP)
	}
	dstIPs := policy.PodIPs(dst)
	for _, a := range srcIPs {
		for _, b := range dstIPs {
			if a.Is4() == b.Is4() {
				f.Src, f.Dst = a, b
				return f, nil
			}
		}
	}
	return f, inputErrorf("pods %s (%v) and %s (%v) share no IP family", podKey(src), srcIPs, podKey(dst), dstIPs)
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// findPod returns the pod named n, which must be a pod NetworkPolicy applies to.
func findPod(c *Cluster, what string, n PodName) (*corev1.Pod, error) {
	for _, p := range c.Pods {
		if p.Namespace != n.Namespace || p.Name != n.Name {
			continue
		}
		switch {
		case p.Spec.HostNetwork:
			return nil, inputErrorf("%s pod %s uses the host network: NetworkPolicy does not apply to it (its traffic is its node's)", what, n)
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
			return nil, inputErrorf("%s pod %s has finished (%s): it has no network any more", what, n, p.Status.Phase)
		case len(policy.PodIPs(p)) == 0:
			return nil, inputErrorf("%s pod %s has no IP address yet (status.podIPs is empty; is it scheduled and started?)", what, n)
		}
		return p, nil
	}
	return nil, inputErrorf("%s pod %s not found", what, n)
}

// podByIP returns the running, pod-network pod with address a, or nil.
func podByIP(c *Cluster, a netip.Addr) *corev1.Pod {
	for _, p := range c.Pods {
		if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if slices.Contains(policy.PodIPs(p), a) {
			return p
		}
	}
	return nil
}

// serviceByIP returns the Service with cluster, external or load-balancer address a, or nil.
func serviceByIP(c *Cluster, a netip.Addr) *corev1.Service {
	for _, svc := range c.Services {
		addrs := slices.Concat(svc.Spec.ClusterIPs, svc.Spec.ExternalIPs)
		for _, in := range svc.Status.LoadBalancer.Ingress {
			addrs = append(addrs, in.IP)
		}
		for _, s := range addrs {
			if b, err := netip.ParseAddr(s); err == nil && b.Unmap() == a {
				return svc
			}
		}
	}
	return nil
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// nodeIPs returns the node's addresses as its agent uses them: its NodeNetwork's status.nodeIPs
// when the agent has reported them, else the node IP rule applied to the Node object.
func nodeIPs(c *Cluster, node string) []netip.Addr {
	for _, nn := range c.NodeNetworks {
		if nn.Name != node || len(nn.Status.NodeIPs) == 0 {
			continue
		}
		var out []netip.Addr
		for _, s := range nn.Status.NodeIPs {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, a.Unmap())
			}
		}
		return out
	}
	for _, n := range c.Nodes {
		if n.Name == node {
			ips, _ := agent.NodeIPs(n, nil, false)
			return ips
		}
	}
	return nil
}

func findPolicy(c *Cluster, k policy.PolicyKey) *networkingv1.NetworkPolicy {
	for _, np := range c.Policies {
		if np.Namespace == k.Namespace && np.Name == k.Name {
			return np
		}
	}
	return nil
}
