package nftables

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/proxy"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

var (
	ip = netip.MustParseAddr
	// testNode is node-a with one address per family.
	testNode = proxy.NodeInfo{Name: "node-a", Zone: "zone-1", Addresses: []netip.Addr{ip("10.99.0.11"), ip("fd10:99::11")}}
)

// world is a set of Services and slices under test.
type world struct {
	svcs   []*corev1.Service
	slices []*discoveryv1.EndpointSlice
}

func (w *world) add(svc *corev1.Service, sl ...*discoveryv1.EndpointSlice) {
	w.svcs = append(w.svcs, svc)
	w.slices = append(w.slices, sl...)
}

func (w *world) model() proxy.Model { return proxy.Build(w.svcs, w.slices, testNode) }

// scenario is one Service of each feature, used by the exact-rule and the
// behaviour tests.
func scenario() *world {
	w := &world{}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	// web: dual-stack ClusterIP, two endpoints per family (one local).
	w.add(pt.Service("ns", "web", []string{"10.96.0.10", "fd00:10:96::10"}, pt.Port("p", tcp, 80)),
		pt.Slice("ns", "web", "web-4", "p", tcp, 8080, pt.EP{IP: "10.244.1.5", Node: "node-a"}, pt.EP{IP: "10.244.2.5", Node: "node-b"}),
		pt.Slice("ns", "web", "web-6", "p", tcp, 8080, pt.EP{IP: "fd10:244:0:1::5", Node: "node-a"}, pt.EP{IP: "fd10:244:0:2::5", Node: "node-b"}))
	// np: NodePort, eTP Cluster, affinity 60 s.
	np := pt.Service("ns", "np", []string{"10.96.0.20"}, pt.NodePortPort("p", tcp, 80, 30080))
	np.Spec.Type = corev1.ServiceTypeNodePort
	np.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	np.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	w.add(np, pt.Slice("ns", "np", "np-1", "p", tcp, 8080, pt.EP{IP: "10.244.2.6", Node: "node-b"}, pt.EP{IP: "10.244.2.7", Node: "node-b"}))
	// lb: LoadBalancer with eTP Local, one local and one remote endpoint, an
	// external IP.
	lb := pt.Service("ns", "lb", []string{"10.96.0.30"}, pt.NodePortPort("p", tcp, 443, 30443))
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	lb.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	lb.Spec.HealthCheckNodePort = 32000
	lb.Spec.ExternalIPs = []string{"203.0.113.30"}
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.30"}}
	w.add(lb, pt.Slice("ns", "lb", "lb-1", "p", tcp, 8443, pt.EP{IP: "10.244.1.8", Node: "node-a"}, pt.EP{IP: "10.244.2.8", Node: "node-b"}))
	// dns: UDP, iTP Local with one local endpoint.
	dns := pt.Service("ns", "dns", []string{"10.96.0.53"}, pt.Port("p", udp, 53))
	dns.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	w.add(dns, pt.Slice("ns", "dns", "dns-1", "p", udp, 5353, pt.EP{IP: "10.244.1.9", Node: "node-a"}, pt.EP{IP: "10.244.2.9", Node: "node-b"}))
	// empty: no endpoints at all.
	w.add(pt.Service("ns", "empty", []string{"10.96.0.40"}, pt.Port("p", tcp, 80)))
	// remote-only: iTP Local, endpoints only elsewhere.
	ro := pt.Service("ns", "remote", []string{"10.96.0.41"}, pt.Port("p", corev1.ProtocolSCTP, 80))
	ro.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	w.add(ro, pt.Slice("ns", "remote", "remote-1", "p", corev1.ProtocolSCTP, 8080, pt.EP{IP: "10.244.2.10", Node: "node-b"}))
	return w
}

// syncFake runs a sync against fake and fails the test on error.
func syncFake(t *testing.T, p *Proxier, m proxy.Model) {
	t.Helper()
	if err := p.Sync(context.Background(), m); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// sortedDump returns the fake's dump with lines sorted (element and rule
// order within a chain is kept: rules of one chain keep their order
// because sort is stable on equal prefixes only per line; rules are
// compared line by line, chains list their rules in order).
func sortedDump(fake *knftables.Fake) string {
	lines := strings.Split(strings.TrimSpace(fake.Dump()), "\n")
	// Sort only element lines: everything else the fake already writes in a
	// stable order, and rule order matters.
	var head, elems []string
	for _, l := range lines {
		if strings.HasPrefix(l, "add element ") {
			elems = append(elems, l)
		} else {
			head = append(head, l)
		}
	}
	slices.Sort(elems)
	return strings.Join(append(head, elems...), "\n")
}

// dualStackAffinity is one dual-stack NodePort Service with ClientIP
// affinity (timeout 30 s) and two endpoints per family, both on node-b.
func dualStackAffinity() *world {
	w := &world{}
	tcp := corev1.ProtocolTCP
	s := pt.Service("ns", "sticky", []string{"10.96.0.20", "fd00:10:96::20"}, pt.NodePortPort("p", tcp, 80, 30080))
	s.Spec.Type = corev1.ServiceTypeNodePort
	s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](30)}}
	w.add(s,
		pt.Slice("ns", "sticky", "sticky-4", "p", tcp, 8080, pt.EP{IP: "10.244.2.6", Node: "node-b"}, pt.EP{IP: "10.244.2.7", Node: "node-b"}),
		pt.Slice("ns", "sticky", "sticky-6", "p", tcp, 8080, pt.EP{IP: "fd10:244:0:2::6", Node: "node-b"}, pt.EP{IP: "fd10:244:0:2::7", Node: "node-b"}))
	return w
}
