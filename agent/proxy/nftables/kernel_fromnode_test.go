package nftables

import (
	"net"
	"net/http"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

// TestKernelFromNodeShortCircuit: with externalTrafficPolicy Local and the only endpoint on
// node2, node1 itself (as a host-network pod would) reaches the Service through its own
// NodePort (both families) and the LB IP, while a client outside is dropped and the health
// check port says 503. Flipped to Cluster, everyone reaches it and the health check port
// closes; flipped back to Local with a local endpoint too, outside clients get only the local
// one (health 200) and node1 still gets both. Last, the local endpoint only terminating: outside
// clients still reach it, the health check says 503.
func TestKernelFromNodeShortCircuit(t *testing.T) {
	l := newLab(t)
	// The LB IP is not node1's: its connections to it need a route before nat-output DNATs them.
	l.node1.AddRoute(t, "eth0", netip.MustParsePrefix("198.51.100.0/24"), outsideIPs[0])
	const lbIP, nodePort, hcPort = "198.51.100.30", 30081, 32001
	service := func(policy corev1.ServiceExternalTrafficPolicy, withB1 bool) *world {
		lb := pt.Service("ns", "lb", []string{"10.96.0.30", "fd00:10:96::30"}, pt.NodePortPort("p", corev1.ProtocolTCP, 80, nodePort))
		lb.Spec.Type = corev1.ServiceTypeLoadBalancer
		lb.Spec.ExternalTrafficPolicy = policy
		if policy == corev1.ServiceExternalTrafficPolicyLocal {
			lb.Spec.HealthCheckNodePort = hcPort
		}
		lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP}}
		w := &world{}
		w.add(lb, append(l.backends("lb", 0, withB1, true), l.backends("lb", 1, withB1, true)...)...)
		return w
	}
	nodePort4, nodePort6 := netip.AddrPortFrom(node1IPs[0], nodePort), netip.AddrPortFrom(node1IPs[1], nodePort)
	fromNode := func(step string, want map[string]bool) {
		t.Helper()
		for _, target := range []netip.AddrPort{nodePort4, nodePort6, vip(lbIP, 80)} {
			names, _ := calls(t, l.node1, target, balanceConns)
			for name := range want {
				if names[name] == 0 {
					t.Errorf("%s: node1 to %s reached %v, want %v", step, target, names, want)
				}
			}
			if len(names) != len(want) {
				t.Errorf("%s: node1 to %s reached %v, want only %v", step, target, names, want)
			}
		}
	}

	// Local, no local endpoint.
	l.sync(t, service(corev1.ServiceExternalTrafficPolicyLocal, false))
	fromNode("Local without a local endpoint", map[string]bool{"b2": true})
	if name, _, err := call(l.outside, nodePort4); err == nil {
		t.Errorf("Local without a local endpoint: outside client reached %s, want it dropped", name)
	}
	if code := httpStatus(t, l.outside, netip.AddrPortFrom(node1IPs[0], hcPort)); code != http.StatusServiceUnavailable {
		t.Errorf("Local without a local endpoint: health check %d, want 503", code)
	}

	// Cluster: everyone, no health check server.
	l.sync(t, service(corev1.ServiceExternalTrafficPolicyCluster, false))
	fromNode("Cluster", map[string]bool{"b2": true})
	if names, _ := calls(t, l.outside, nodePort4, 3); names["b2"] != 3 {
		t.Errorf("Cluster: outside client reached %v, want b2", names)
	}
	err := l.outside.Do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(node1IPs[0], hcPort).String(), dialTimeout)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
	if err == nil {
		t.Errorf("Cluster: the health check port still answers")
	}

	// Local again, now with a local endpoint.
	l.sync(t, service(corev1.ServiceExternalTrafficPolicyLocal, true))
	fromNode("Local with a local endpoint", map[string]bool{"b1": true, "b2": true})
	names, peers := calls(t, l.outside, nodePort4, balanceConns)
	if names["b1"] != balanceConns || peers[outsideIPs[0].String()] != balanceConns {
		t.Errorf("Local with a local endpoint: outside client reached %v as %v, want only b1 seeing %s", names, peers, outsideIPs[0])
	}
	if code := httpStatus(t, l.outside, netip.AddrPortFrom(node1IPs[0], hcPort)); code != http.StatusOK {
		t.Errorf("Local with a local endpoint: health check %d, want 200", code)
	}

	// The local endpoint terminates (still serving) and no other is ready: outside clients still
	// reach it (the fallback), but the health check says 503 so load balancers drain the node.
	w := service(corev1.ServiceExternalTrafficPolicyLocal, false)
	w.slices = []*discoveryv1.EndpointSlice{pt.Slice("ns", "lb", "lb-b1-0", "p", corev1.ProtocolTCP, int32(l.port1),
		pt.EP{IP: b1IPs[0].String(), Node: "node1", NotReady: true, Terminating: true})}
	l.sync(t, w)
	if code := httpStatus(t, l.outside, netip.AddrPortFrom(node1IPs[0], hcPort)); code != http.StatusServiceUnavailable {
		t.Errorf("only a terminating local endpoint: health check %d, want 503", code)
	}
	if names, _ := calls(t, l.outside, nodePort4, 3); names["b1"] != 3 {
		t.Errorf("only a terminating local endpoint: outside client reached %v, want b1 (the fallback)", names)
	}
}
