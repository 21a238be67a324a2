package podnetwork

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// backendPort is the port the Service's backends listen on.
	backendPort = 8080
	// serviceConns is the number of connections per family that must spread over the backends.
	serviceConns = 60
	// nodePortConns is the number per NodePort address (2^-15 chance that 16 random picks all
	// hit one backend).
	nodePortConns = 16
	// rejectBound is how fast a connection to a Service without endpoints must be refused.
	rejectBound = time.Second
)

// nameServer answers every connection with its pod's name, so a client sees which backend
// a Service sent it to.
func nameServer(t *testing.T, p *pod) {
	t.Helper()
	ln, _, err := listenIn(p.ns, "tcp", netip.AddrPortFrom(netip.IPv6Unspecified(), backendPort))
	if err != nil {
		t.Fatalf("listen in pod %s: %v", p.name, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(p.name + "\n"))
			_ = c.Close()
		}
	}()
}

// dialBound bounds one connection attempt to a Service. A lost SYN is retransmitted after 1 s, so
// a connection that needs a retransmission fails the test as well.
const dialBound = 3 * time.Second

// slowConnection is a connection that needed a SYN retransmission. The known cause was NodePort
// traffic forwarded over VXLAN: the masquerade mark stayed on the packet, the VXLAN device's outer
// packet inherited it (the kernel keeps skb->mark through the tunnel) and was masqueraded and
// dropped. The proxy now clears the mark before masquerading; this guards against a regression.
const slowConnection = 500 * time.Millisecond

// whoAnswers connects from ns to target and returns the name the backend sent.
func whoAnswers(ns *testnet.Netns, target netip.AddrPort) (string, error) {
	return whoAnswersWithin(ns, target, dialBound)
}

// whoAnswersWithin is whoAnswers with a connect timeout.
func whoAnswersWithin(ns *testnet.Netns, target netip.AddrPort, timeout time.Duration) (string, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", target.String(), timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}

// spread makes n connections and counts the answers per backend; slowest is the longest
// connection (connect, answer, close).
func spread(ns *testnet.Netns, target netip.AddrPort, n int) (seen map[string]int, slowest time.Duration, err error) {
	seen = map[string]int{}
	for i := range n {
		start := time.Now()
		who, err := whoAnswers(ns, target)
		if err != nil {
			return seen, slowest, fmt.Errorf("connection %d to %s: %w", i, target, err)
		}
		slowest = max(slowest, time.Since(start))
		seen[who]++
	}
	return seen, slowest, nil
}

// endpointSlices are the Service's hand-made EndpointSlices (envtest runs no EndpointSlice
// controller), one per family, with the given backend pods.
func endpointSlices(svc string, backends ...*pod) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, fam := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
		s := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: metav1.NamespaceDefault, Name: svc + "-" + strings.ToLower(string(fam)),
				Labels: map[string]string{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "e2e.plexus.dev"},
			},
			AddressType: fam,
			Endpoints:   []discoveryv1.Endpoint{},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](backendPort)}},
		}
		for _, p := range backends {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{p.addr(fam == discoveryv1.AddressTypeIPv6).String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				NodeName:   ptr.To(p.node.name),
			})
		}
		out = append(out, s)
	}
	return out
}

// setEndpoints creates or replaces the Service's EndpointSlices.
func (e *env) setEndpoints(t *testing.T, svc string, backends ...*pod) {
	t.Helper()
	ctx := context.Background()
	for _, s := range endpointSlices(svc, backends...) {
		cur := &discoveryv1.EndpointSlice{}
		switch err := e.cluster.client.Get(ctx, client.ObjectKeyFromObject(s), cur); {
		case err == nil:
			cur.Endpoints = s.Endpoints
			if err := e.cluster.client.Update(ctx, cur); err != nil {
				t.Fatal(err)
			}
		default:
			if err := e.cluster.client.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkServices runs the Service checks: a dual-stack NodePort Service (so also a ClusterIP)
// backed by the pods on node-1 and node-2, reached from the pod on node-3 and from "outside".
func (e *env) checkServices(t *testing.T) {
	ctx := context.Background()
	client3, back1, back2 := e.pods[2], e.pods[0], e.pods[1]
	nameServer(t, back1)
	nameServer(t, back2)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "echo"},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeNodePort,
			IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyRequireDualStack),
			IPFamilies:     []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
				TargetPort: intstr.FromInt32(backendPort)}},
		},
	}
	if err := e.cluster.client.Create(ctx, svc); err != nil {
		t.Fatalf("create Service: %v", err)
	}
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Fatalf("Service got cluster IPs %v, want one per family", svc.Spec.ClusterIPs)
	}
	start := time.Now()
	e.setEndpoints(t, svc.Name, back1, back2)
	nodePort := uint16(svc.Spec.Ports[0].NodePort)

	targets := map[string]netip.AddrPort{}
	for _, ip := range svc.Spec.ClusterIPs {
		targets["ClusterIP "+ip] = netip.AddrPortFrom(netip.MustParseAddr(ip), 80)
	}
	// The first connection waits for the agents to program the Service (an attempt before that
	// is not refused, it hangs: the address is routed nowhere).
	for name, target := range targets {
		if !poll(pathBound, func() bool { _, err := whoAnswersWithin(client3.ns, target, 200*time.Millisecond); return err == nil }) {
			t.Fatalf("%s never answered from pod %s on %s\n%s", name, client3.name, client3.node.name, e.nodes[2].log())
		}
	}
	t.Logf("Service reachable %s after its EndpointSlices were created", time.Since(start).Round(time.Millisecond))

	t.Run("ClusterIP spreads over backends on two nodes", func(t *testing.T) {
		for name, target := range targets {
			seen, slowest, err := spread(client3.ns, target, serviceConns)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			t.Logf("%s from pod %s (%s): %d connections: %v, slowest %s", name, client3.name, client3.node.name, serviceConns, seen, slowest)
			if seen[back1.name] == 0 || seen[back2.name] == 0 || seen[back1.name]+seen[back2.name] != serviceConns {
				t.Errorf("%s: answers %v; want both %s and %s", name, seen, back1.name, back2.name)
			}
		}
	})

	t.Run("NodePort from outside the cluster", func(t *testing.T) {
		for _, n := range []*node{e.nodes[0], e.nodes[2]} {
			for _, ip := range []netip.Addr{n.ip4.Addr(), n.ip6.Addr()} {
				target := netip.AddrPortFrom(ip, nodePort)
				seen, slowest, err := spread(e.outside, target, nodePortConns)
				if err != nil {
					t.Errorf("outside -> %s (node %s): %v", target, n.name, err)
					continue
				}
				t.Logf("outside -> NodePort %s: %d connections: %v, slowest %s", target, nodePortConns, seen, slowest)
				if slowest > slowConnection {
					t.Errorf("NodePort %s on %s: a connection took %s, so a SYN was lost (does the masquerade mark leak into VXLAN's outer packet?)",
						target, n.name, slowest.Round(time.Millisecond))
				}
				if len(seen) != 2 {
					t.Errorf("outside -> %s: answers %v; want both backends", target, seen)
				}
			}
		}
	})

	t.Run("a removed endpoint gets no new connection", func(t *testing.T) {
		e.setEndpoints(t, svc.Name, back2)
		for name, target := range targets {
			// Converged once serviceConns connections in a row avoid back1.
			var last map[string]int
			start := time.Now()
			if !poll(pathBound, func() bool {
				seen, _, err := spread(client3.ns, target, serviceConns)
				last = seen
				return err == nil && seen[back1.name] == 0
			}) {
				t.Errorf("%s: after removing %s the answers are still %v", name, back1.name, last)
				continue
			}
			t.Logf("%s: %d connections after removing %s went to %v (converged within %s)", name, serviceConns, back1.name, last,
				time.Since(start).Round(time.Millisecond))
		}
	})

	t.Run("no endpoints: connections are refused at once", func(t *testing.T) {
		e.setEndpoints(t, svc.Name)
		for name, target := range targets {
			var took time.Duration
			var lastErr error
			if !poll(pathBound, func() bool {
				start := time.Now()
				_, err := whoAnswers(client3.ns, target)
				took, lastErr = time.Since(start), err
				return errors.Is(err, syscall.ECONNREFUSED)
			}) {
				t.Errorf("%s without endpoints: last attempt %v after %s; want connection refused", name, lastErr, took)
				continue
			}
			t.Logf("%s without endpoints: refused in %s", name, took.Round(time.Microsecond))
			if took > rejectBound {
				t.Errorf("%s: refusal took %s", name, took)
			}
		}
	})

	t.Run("NodeNetwork status reports the Services", func(t *testing.T) {
		for _, n := range e.nodes {
			nn := &v1.NodeNetwork{}
			if err := e.cluster.client.Get(ctx, client.ObjectKey{Name: n.name}, nn); err != nil {
				t.Fatal(err)
			}
			s := nn.Status
			if s.ServiceProxy == nil || s.ServiceProxy.Mode != string(v1.ServiceProxyNFTables) || s.Services < 1 ||
				len(s.ServiceProxy.SupportedFeatures) == 0 {
				t.Errorf("NodeNetwork %s: services %d, endpoints %d, serviceProxy %+v", n.name, s.Services, s.Endpoints, s.ServiceProxy)
			}
			t.Logf("NodeNetwork %s: services=%d endpoints=%d mode=%s unsupported=%v", n.name, s.Services, s.Endpoints,
				s.ServiceProxy.Mode, s.ServiceProxy.UnsupportedFeatures)
		}
	})
}
