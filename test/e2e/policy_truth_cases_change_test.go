package e2e

import (
	"net/netip"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/controllers/render"
)

// changeAndServiceCases: policies updated and deleted, pods and namespaces relabelled, and traffic
// that goes through a Service (ClusterIP, NodePort), to the API server and to cluster DNS.
func changeAndServiceCases() []truthCase {
	x := "x"
	intoXFrom := func(ns string) allowFunc {
		return func(from, to *truthPod, _ probeKind) bool { return to.ns != "x" || from.ns == ns }
	}
	deniedIntoX := func(_, to *truthPod, _ probeKind) bool { return to.ns != "x" }
	return []truthCase{
		{name: "policy updated: the allowed namespace changes from y to z", steps: func(*truthWorld) []truthStep {
			return []truthStep{
				{what: "from y", do: applying(policy(x, "from-ns", sel(), ingressOnly, []inRule{from(peers(nsPeer(podsOfNS("y"))))}, nil)), allowed: intoXFrom("y")},
				{what: "updated to from z", do: applying(policy(x, "from-ns", sel(), ingressOnly, []inRule{from(peers(nsPeer(podsOfNS("z"))))}, nil)), allowed: intoXFrom("z")},
			}
		}},
		{name: "policy updated: ports change from TCP 80 to UDP 81, then to every port", steps: func(*truthWorld) []truthStep {
			p := func(ports ...npPort) *networkingv1.NetworkPolicy {
				return policy(x, "ports", sel(), ingressOnly, []inRule{from(nil, ports...)}, nil)
			}
			return []truthStep{
				{what: "TCP 80", do: applying(p(port("tcp", 80))), allowed: func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || k.is("tcp", 80) }},
				{what: "UDP 81", do: applying(p(port("udp", 81))), allowed: func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || k.is("udp", 81) }},
				{what: "no ports: all", do: applying(p()), allowed: allowAll},
			}
		}},
		{name: "policy updated: its pod selector widens from x/a to all of x", steps: func(*truthWorld) []truthStep {
			return []truthStep{
				{what: "selects x/a", do: applying(policy(x, "deny", podNamed("a"), ingressOnly, nil, nil)),
					allowed: func(_, to *truthPod, _ probeKind) bool { return !to.is("x/a") }},
				{what: "selects all of x", do: applying(policy(x, "deny", sel(), ingressOnly, nil, nil)), allowed: deniedIntoX},
			}
		}},
		{name: "policy deleted: x goes from default deny back to open", steps: func(*truthWorld) []truthStep {
			p := policy(x, "deny", sel(), bothWays, nil, nil)
			return []truthStep{
				{what: "deny all in x", do: applying(p), allowed: func(from, to *truthPod, _ probeKind) bool { return from.ns != "x" && to.ns != "x" }},
				{what: "deleted", do: func(w *truthWorld) { w.remove(p) }, allowed: allowAll},
			}
		}},
		{name: "pod relabelled: x/b gains, then loses, the label a deny policy selects", steps: func(*truthWorld) []truthStep {
			return []truthStep{
				{what: "policy on role=db, no such pod", do: applying(policy(x, "deny-db", sel("role", "db"), ingressOnly, nil, nil)), allowed: allowAll},
				{what: "x/b labelled role=db", do: func(w *truthWorld) { w.setPodLabels("x/b", map[string]string{podLabel: "b", "role": "db"}) },
					allowed: func(_, to *truthPod, _ probeKind) bool { return !to.is("x/b") }},
				{what: "label removed", do: func(w *truthWorld) { w.setPodLabels("x/b", map[string]string{podLabel: "b"}) }, allowed: allowAll},
			}
		}},
		{name: "pod relabelled as a peer: y/c gains the client label and reaches x, then loses it", steps: func(*truthWorld) []truthStep {
			return []truthStep{
				{what: "x accepts role=client pods of any namespace, none yet",
					do:      applying(policy(x, "from-clients", sel(), ingressOnly, []inRule{from(peers(nsPodsPeer(sel(), sel("role", "client"))))}, nil)),
					allowed: deniedIntoX},
				{what: "y/c labelled role=client", do: func(w *truthWorld) { w.setPodLabels("y/c", map[string]string{podLabel: "c", "role": "client"}) },
					allowed: func(from, to *truthPod, _ probeKind) bool { return to.ns != "x" || from.is("y/c") }},
				{what: "label removed", do: func(w *truthWorld) { w.setPodLabels("y/c", map[string]string{podLabel: "c"}) }, allowed: deniedIntoX},
			}
		}},
		{name: "namespace relabelled: z gains team=blue and reaches x, then loses it", steps: func(*truthWorld) []truthStep {
			return []truthStep{
				{what: "x accepts namespaces team=blue, none yet",
					do:      applying(policy(x, "from-blue", sel(), ingressOnly, []inRule{from(peers(nsPeer(sel("team", "blue"))))}, nil)),
					allowed: deniedIntoX},
				{what: "z labelled team=blue", do: func(w *truthWorld) { w.setNamespaceLabels("z", map[string]string{nsLabel: "z", "team": "blue"}) },
					allowed: intoXFrom("z")},
				{what: "label removed", do: func(w *truthWorld) { w.setNamespaceLabels("z", map[string]string{nsLabel: "z"}) }, allowed: deniedIntoX},
			}
		}},
		{name: "egress to a Service VIP is decided by the endpoint pod, not the VIP", steps: serviceVIPSteps},
		{name: "egress by an ipBlock of a Service VIP alone does not reach its endpoint", steps: vipBlockSteps},
		{name: "egress to the API server: allowed by an ipBlock of its address and port, denied without it", steps: apiServerSteps},
		{name: "egress allowing DNS only: kube-dns answers, nothing else is reached", steps: dnsOnlySteps},
		{name: "ingress via NodePort: the source a policy sees from each node (externalTrafficPolicy Cluster)", steps: nodePortSteps},
	}
}

// applying is a step action that applies policies.
func applying(ps ...*networkingv1.NetworkPolicy) func(*truthWorld) {
	return func(w *truthWorld) { w.apply(ps...) }
}

// serviceVIPSteps: x/a may send only to pod y/b on TCP 80; Services in y over y/b and over y/c.
func serviceVIPSteps(w *truthWorld) []truthStep {
	var svcB, svcC *corev1.Service
	var extras []extraProbe
	steps := []truthStep{{what: "Services over y/b and y/c, no policy", do: func(w *truthWorld) {
		svcB = w.service("y", "svc-b", "b", corev1.ServiceTypeClusterIP)
		svcC = w.service("y", "svc-c", "c", corev1.ServiceTypeClusterIP)
	}, allowed: allowAll}}
	p := policy("x", "to-yb-80", podNamed("a"), egressOnly, nil,
		[]outRule{to(peers(nsPodsPeer(podsOfNS("y"), podNamed("b"))), port("tcp", 80))})
	steps = append(steps, truthStep{what: "x/a egress to y/b on TCP 80", do: func(w *truthWorld) {
		w.apply(p)
		for _, ip := range clusterIPs(svcB) {
			extras = append(extras, extraProbe{from: "x/a", target: target("tcp", ip, 80), what: "(ClusterIP of y/b)", want: true})
		}
		for _, ip := range clusterIPs(svcC) {
			extras = append(extras,
				extraProbe{from: "x/a", target: target("tcp", ip, 80), what: "(ClusterIP of y/c)", want: false},
				extraProbe{from: "x/b", target: target("tcp", ip, 80), what: "(ClusterIP of y/c, unisolated client)", want: true})
		}
	}, allowed: func(from, to *truthPod, k probeKind) bool {
		return !from.is("x/a") || (to.is("y/b") && k.is("tcp", 80))
	}})
	// extras are filled when the step runs (the VIPs exist only then): hand them over by pointer.
	steps[1].extrasFrom = &extras
	return steps
}

// vipBlockSteps: x/a may send only to the ClusterIP of a Service over y/b, by ipBlock.
func vipBlockSteps(w *truthWorld) []truthStep {
	var extras []extraProbe
	step := truthStep{what: "x/a egress to ipBlock <ClusterIP>/32 only", do: func(w *truthWorld) {
		svc := w.service("y", "svc-b", "b", corev1.ServiceTypeClusterIP)
		ips := clusterIPs(svc)
		w.apply(policy("x", "to-vip", podNamed("a"), egressOnly, nil, []outRule{to(blockPeers(hostPrefixes(ips...)))}))
		for _, ip := range ips {
			extras = append(extras,
				extraProbe{from: "x/a", target: target("tcp", ip, 80), what: "(ClusterIP of y/b, allowed only as an ipBlock)", want: false},
				extraProbe{from: "x/b", target: target("tcp", ip, 80), what: "(ClusterIP of y/b, unisolated client)", want: true})
		}
	}, allowed: func(from, _ *truthPod, _ probeKind) bool { return !from.is("x/a") }}
	step.extrasFrom = &extras
	return []truthStep{step}
}

// apiServer returns the kubernetes Service's ClusterIPs and port and its endpoints' addresses
// and port.
func apiServer() (vips []netip.Addr, vipPort int32, eps []netip.Addr, epPort int32) {
	svc := serviceByName("default", "kubernetes")
	vips, vipPort = clusterIPs(svc), svc.Spec.Ports[0].Port
	var slices discoveryv1.EndpointSliceList
	Expect(k8s.List(ctx, &slices, client.InNamespace("default"), client.MatchingLabels{discoveryv1.LabelServiceName: "kubernetes"})).To(Succeed())
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				eps = append(eps, netip.MustParseAddr(a))
			}
		}
		if len(s.Ports) > 0 && s.Ports[0].Port != nil {
			epPort = *s.Ports[0].Port
		}
	}
	return vips, vipPort, eps, epPort
}

// apiServerSteps: x/a may send to the API server's endpoint address and port only, then not even
// there.
func apiServerSteps(w *truthWorld) []truthStep {
	vips, vipPort, eps, epPort := apiServer()
	probes := func(want bool) []extraProbe {
		var out []extraProbe
		for _, ip := range vips {
			out = append(out, extraProbe{from: "x/a", target: target("connect", ip, vipPort), what: "(the kubernetes Service)", want: want})
		}
		for _, ip := range eps {
			out = append(out, extraProbe{from: "x/a", target: target("connect", ip, epPort), what: "(the API server's endpoint)", want: want})
		}
		return out
	}
	xaDenied := func(from, _ *truthPod, _ probeKind) bool { return !from.is("x/a") }
	return []truthStep{
		{what: "x/a egress to ipBlock <API server>/32 on its port", do: applying(policy("x", "to-apiserver", podNamed("a"), egressOnly, nil,
			[]outRule{to(blockPeers(hostPrefixes(eps...)), port("tcp", epPort))})), allowed: xaDenied, extras: probes(true)},
		{what: "the rule removed", do: applying(policy("x", "to-apiserver", podNamed("a"), egressOnly, nil, nil)),
			allowed: xaDenied, extras: probes(false)},
	}
}

// dnsOnlySteps: x/a may send to kube-system on port 53 only.
func dnsOnlySteps(w *truthWorld) []truthStep {
	dns := serviceByName(render.DNSNamespace, render.DNSServiceName)
	vips, vipPort, _, _ := apiServer()
	var extras []extraProbe
	for _, ip := range clusterIPs(dns) {
		extras = append(extras, extraProbe{from: "x/a", target: target("dns", ip, render.DNSPort), what: "(kube-dns)", want: true})
	}
	for _, ip := range vips {
		extras = append(extras, extraProbe{from: "x/a", target: target("connect", ip, vipPort), what: "(the kubernetes Service)", want: false})
	}
	kubeSystem := sel("kubernetes.io/metadata.name", render.DNSNamespace)
	return []truthStep{{what: "x/a egress to kube-system on UDP and TCP 53",
		do: applying(policy("x", "dns-only", podNamed("a"), egressOnly, nil,
			[]outRule{to(peers(nsPeer(kubeSystem)), port("udp", render.DNSPort), port("tcp", render.DNSPort))})),
		allowed: func(from, _ *truthPod, _ probeKind) bool { return !from.is("x/a") }, extras: extras}}
}

// nodePortSteps: a NodePort Service over x/a (on node 1), whose policy accepts only node 2's
// addresses. What the policy sees (agent/policy/nftables/names.go): a connection that enters at
// node 1 keeps its client's address (node 1 itself is the pod's own node, always allowed); one
// that enters at node 2 or 3 is masqueraded to that node's address on its way to node 1. Which
// address of the node that is depends on the route to node 1's pods: the underlay address when
// routed directly, the node's VTEP address (the first address of its pod CIDR) over VXLAN, as
// for any traffic a node sends to a remote pod. The policy names both, as the README tells users
// to, so the case holds in every routing mode another spec may have left the lab in.
func nodePortSteps(w *truthWorld) []truthStep {
	var extras []extraProbe
	step := truthStep{what: "x/a accepts only node 2's addresses", do: func(w *truthWorld) {
		svc := w.service("x", "np-a", "a", corev1.ServiceTypeNodePort)
		nodePort := svc.Spec.Ports[0].NodePort
		node2 := nodeVTEPAddrs(labCfg.NodeAt(2).Name)
		for _, v6 := range w.families {
			node2 = append(node2, nodeIP(2, v6))
		}
		w.apply(policy("x", "from-node2", podNamed("a"), ingressOnly, []inRule{from(blockPeers(hostPrefixes(node2...)))}, nil))
		for _, v6 := range w.families {
			for src := 1; src <= labNodes; src++ {
				for via := 1; via <= labNodes; via++ {
					extras = append(extras, extraProbe{from: nodeSource(src), target: target("tcp", nodeIP(via, v6), nodePort),
						what: "(NodePort of " + nodeSource(via) + ")", want: (via == 1 && src != 3) || via == 2})
				}
				extras = append(extras, extraProbe{from: nodeSource(src), target: target("tcp", w.pod("x/a").ip(v6), 80),
					what: "(x/a directly)", want: src != 3})
			}
		}
	}, allowed: func(_, to *truthPod, _ probeKind) bool { return !to.is("x/a") }}
	step.extrasFrom = &extras
	return []truthStep{step}
}

// nodeVTEPAddrs are the VTEP addresses of a node: the source of what it sends to a remote pod
// over VXLAN (agent/routing: the first address of each of its pod CIDRs).
func nodeVTEPAddrs(node string) []netip.Addr {
	nn, ok := nodeNetworks()[node]
	ExpectWithOffset(1, ok).To(BeTrue(), "no NodeNetwork %s", node)
	var out []netip.Addr
	for _, c := range nn.Spec.PodCIDRs {
		out = append(out, routing.VTEPAddr(netip.MustParsePrefix(string(c))))
	}
	return out
}

// nodeIP is lab node i's underlay address of a family.
func nodeIP(i int, v6 bool) netip.Addr {
	if v6 {
		return labCfg.NodeAt(i).IPv6
	}
	return labCfg.NodeAt(i).IPv4
}

// nodeSource names node i as a probe source.
func nodeSource(i int) string { return "node" + string(rune('0'+i)) }
