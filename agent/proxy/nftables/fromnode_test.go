package nftables

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

// fromNodeWorld is an eTP Local LoadBalancer (NodePort 30443, LB IP, external IP, health check
// 32000) with the given endpoints, dual-stack when eps6 is set.
func fromNodeWorld(policy corev1.ServiceExternalTrafficPolicy, eps []pt.EP, eps6 []pt.EP) *world {
	w := &world{}
	ips := []string{"10.96.0.30"}
	if eps6 != nil {
		ips = append(ips, "fd00:10:96::30")
	}
	lb := pt.Service("ns", "lb", ips, pt.NodePortPort("p", corev1.ProtocolTCP, 443, 30443))
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	lb.Spec.ExternalTrafficPolicy = policy
	if policy == corev1.ServiceExternalTrafficPolicyLocal {
		lb.Spec.HealthCheckNodePort = 32000
	}
	lb.Spec.ExternalIPs = []string{"203.0.113.30"}
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.30"}}
	w.add(lb, pt.Slice("ns", "lb", "lb-4", "p", corev1.ProtocolTCP, 8443, eps...))
	if eps6 != nil {
		w.slices = append(w.slices, pt.Slice("ns", "lb", "lb-6", "p", corev1.ProtocolTCP, 8443, eps6...))
	}
	return w
}

// TestFromNodeShortCircuit traces kube-proxy's short-circuit of eTP Local: connections the
// node itself (or a host-network pod) opens to one of its own external frontends go to any
// endpoint of the cluster, masqueraded, even when the node has no local endpoint; traffic from
// outside and from pods keeps the Local policy (local endpoints, client address kept, or dropped).
func TestFromNodeShortCircuit(t *testing.T) {
	local, remote2 := pt.EP{IP: "10.244.1.8", Node: "node-a"}, pt.EP{IP: "10.244.2.8", Node: "node-b"}
	terminatingLocal := pt.EP{IP: "10.244.1.8", Node: "node-a", NotReady: true, Terminating: true}
	fromNode := func(dst string, port uint16) packet {
		return packet{Src: ip(nodeIP), Dst: ip(dst), Proto: "tcp", DPort: port, Local: true}
	}
	fromOutside := func(dst string, port uint16) packet {
		return packet{Src: ip(remote), Dst: ip(dst), Proto: "tcp", DPort: port}
	}
	cases := []struct {
		name string
		eps  []pt.EP
		p    packet
		want string
	}{
		{"node to its NodePort, local and remote endpoints: all, masqueraded", []pt.EP{local, remote2},
			fromNode(nodeIP, 30443), "dnat 10.244.1.8:8443,10.244.2.8:8443 masq=10.244.1.8:8443,10.244.2.8:8443"},
		{"node to the LB IP", []pt.EP{local, remote2},
			fromNode("198.51.100.30", 443), "dnat 10.244.1.8:8443,10.244.2.8:8443 masq=10.244.1.8:8443,10.244.2.8:8443"},
		{"node to the external IP", []pt.EP{local, remote2},
			fromNode("203.0.113.30", 443), "dnat 10.244.1.8:8443,10.244.2.8:8443 masq=10.244.1.8:8443,10.244.2.8:8443"},
		{"outside to the NodePort: the local endpoint, client kept", []pt.EP{local, remote2},
			fromOutside(nodeIP, 30443), "dnat 10.244.1.8:8443"},
		{"node to its NodePort without a local endpoint: the remote one", []pt.EP{remote2},
			fromNode(nodeIP, 30443), "dnat 10.244.2.8:8443 masq=10.244.2.8:8443"},
		{"node to the LB IP without a local endpoint", []pt.EP{remote2},
			fromNode("198.51.100.30", 443), "dnat 10.244.2.8:8443 masq=10.244.2.8:8443"},
		{"outside to the NodePort without a local endpoint: drop", []pt.EP{remote2},
			fromOutside(nodeIP, 30443), "drop"},
		{"a pod to the LB IP without a local endpoint: drop (Plexus keeps the Local policy for pods)", []pt.EP{remote2},
			packet{Src: ip(podA), Dst: ip("198.51.100.30"), Proto: "tcp", DPort: 443}, "drop"},
		{"node to the ClusterIP: unchanged", []pt.EP{remote2},
			fromNode("10.96.0.30", 443), "dnat 10.244.2.8:8443"},
		// One local terminating and one remote ready endpoint: both lists have one endpoint
		// (so both live in endpoints-v4-1), but different ones.
		{"equal counts, node: the ready remote endpoint", []pt.EP{terminatingLocal, remote2},
			fromNode(nodeIP, 30443), "dnat 10.244.2.8:8443 masq=10.244.2.8:8443"},
		{"equal counts, outside: the local terminating endpoint", []pt.EP{terminatingLocal, remote2},
			fromOutside(nodeIP, 30443), "dnat 10.244.1.8:8443"},
	}
	for _, c := range cases {
		tr := traceWorld(t, fromNodeWorld(corev1.ServiceExternalTrafficPolicyLocal, c.eps, nil))
		if got := tr.Trace(c.p).String(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}

	// IPv6: the same through the node's IPv6 NodePort.
	w := fromNodeWorld(corev1.ServiceExternalTrafficPolicyLocal, []pt.EP{remote2}, []pt.EP{{IP: "fd10:244:0:2::8", Node: "node-b"}})
	tr := traceWorld(t, w)
	p6 := packet{Src: ip("fd10:99::11"), Dst: ip("fd10:99::11"), Proto: "tcp", DPort: 30443, Local: true}
	if got, want := tr.Trace(p6).String(), "dnat [fd10:244:0:2::8]:8443 masq=[fd10:244:0:2::8]:8443"; got != want {
		t.Errorf("IPv6, node to its NodePort:\n got %s\nwant %s", got, want)
	}
	p6.Local, p6.Src = false, ip("fd10:99::100")
	if got := tr.Trace(p6).String(); got != "drop" {
		t.Errorf("IPv6, outside to the NodePort without a local endpoint: %s, want drop", got)
	}
}

// TestFromNodeAcrossPolicyFlips flips one Service Cluster → Local → Cluster → Local through one
// Proxier (partial syncs, as the agent does): at every step the node's own connections reach an
// endpoint, outside clients get the policy's answer, the health check port follows (served
// only under Local, 0 local endpoints here), and the table equals a fresh build.
func TestFromNodeAcrossPolicyFlips(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	hc := &fakeHealth{}
	p := New(fake, WithHealthChecker(hc))
	eps := []pt.EP{{IP: "10.244.2.8", Node: "node-b"}, {IP: "10.244.3.8", Node: "node-c"}}
	const all = "10.244.2.8:8443,10.244.3.8:8443"
	steps := []struct {
		policy      corev1.ServiceExternalTrafficPolicy
		fromOutside string
		health      string
	}{
		{corev1.ServiceExternalTrafficPolicyCluster, "dnat " + all + " masq=" + all, "map[]"},
		{corev1.ServiceExternalTrafficPolicyLocal, "drop", "map[32000:0]"},
		{corev1.ServiceExternalTrafficPolicyCluster, "dnat " + all + " masq=" + all, "map[]"},
		{corev1.ServiceExternalTrafficPolicyLocal, "drop", "map[32000:0]"},
	}
	for i, s := range steps {
		m := fromNodeWorld(s.policy, eps, nil).model()
		syncFake(t, p, m)
		tr := newTracer(fake)
		for _, dst := range []packet{
			{Src: ip(nodeIP), Dst: ip(nodeIP), Proto: "tcp", DPort: 30443, Local: true},
			{Src: ip(nodeIP), Dst: ip("198.51.100.30"), Proto: "tcp", DPort: 443, Local: true},
		} {
			if got, want := tr.Trace(dst).String(), "dnat "+all+" masq="+all; got != want {
				t.Errorf("step %d (%s), node to %s: %s, want %s", i, s.policy, dst.Dst, got, want)
			}
		}
		out := packet{Src: ip(remote), Dst: ip(nodeIP), Proto: "tcp", DPort: 30443}
		if got := tr.Trace(out).String(); got != s.fromOutside {
			t.Errorf("step %d (%s), from outside: %s, want %s", i, s.policy, got, s.fromOutside)
		}
		if got := fmt.Sprint(hc.last); got != s.health {
			t.Errorf("step %d (%s): health check ports %s, want %s", i, s.policy, got, s.health)
		}
		assertEqualsFresh(t, fake, m)
	}
}
