package ipvs_test

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

var ip = netip.MustParseAddr

// vs is a TCP round-robin virtual server at addrPort.
func vs(addrPort string) ipvs.VirtualServer {
	ap := netip.MustParseAddrPort(addrPort)
	return ipvs.VirtualServer{Address: ap.Addr(), Protocol: ipvs.TCP, Port: ap.Port(), Scheduler: ipvs.RoundRobin}
}

// rs is a real server of weight 1 at addrPort.
func rs(addrPort string) ipvs.RealServer {
	ap := netip.MustParseAddrPort(addrPort)
	return ipvs.RealServer{Address: ap.Addr(), Port: ap.Port(), Weight: ipvs.DefaultWeight}
}

// svc is a Service value with real servers.
func svc(v ipvs.VirtualServer, reals ...string) ipvs.Service {
	s := ipvs.Service{VirtualServer: v}
	for _, r := range reals {
		s.RealServers = append(s.RealServers, rs(r))
	}
	return s
}

// lines joins its arguments with newlines, for expected dumps and plans.
func lines(l ...string) string { return strings.Join(l, "\n") }

// webService is "default/web" with dual-stack cluster IPs, port http 80 to
// 8080, and endpoints (both families) named by the last octet / hextet.
type webService struct {
	affinity time.Duration
	nodePort int32
	etpLocal bool
	// remote puts the endpoints on another node.
	remote   bool
	backends []int
}

// model builds the proxy model of the web Service on node "vm" with node
// addresses nodeAddrs.
func (w webService) model(nodeAddrs ...netip.Addr) proxy.Model {
	port := proxytest.Port("http", corev1.ProtocolTCP, 80)
	s := proxytest.Service("default", "web", []string{"10.96.0.10", "fd10:96::10"}, port)
	if w.nodePort != 0 {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = w.nodePort
	}
	if w.etpLocal {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	if w.affinity > 0 {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(w.affinity / time.Second))}}
	}
	var eps4, eps6 []proxytest.EP
	node := "vm"
	if w.remote {
		node = "other"
	}
	for _, b := range w.backends {
		eps4 = append(eps4, proxytest.EP{IP: backendIP(4, b).String(), Node: node})
		eps6 = append(eps6, proxytest.EP{IP: backendIP(6, b).String(), Node: node})
	}
	slices := []*discoveryv1.EndpointSlice{
		proxytest.Slice("default", "web", "web-4", "http", corev1.ProtocolTCP, backendPort, eps4...),
		proxytest.Slice("default", "web", "web-6", "http", corev1.ProtocolTCP, backendPort, eps6...),
	}
	slices[1].AddressType = discoveryv1.AddressTypeIPv6
	return proxy.Build([]*corev1.Service{s}, slices, proxy.NodeInfo{Name: "vm", Addresses: nodeAddrs})
}

// backendPort is where the web Service's endpoints listen.
const backendPort = 8080

// backendIP is backend n's address of a family: 10.244.n.2 or
// fd10:244:n::2, the addresses of the VM test's backend namespaces.
func backendIP(family, n int) netip.Addr {
	if family == 6 {
		return netip.MustParseAddr("fd10:244:" + strconv.Itoa(n) + "::2")
	}
	return netip.MustParseAddr("10.244." + strconv.Itoa(n) + ".2")
}

// syncOK syncs and fails the test on error.
func syncOK(t *testing.T, s *ipvs.Syncer, desired ipvs.State) ipvs.Plan {
	t.Helper()
	plan, err := s.Sync(desired)
	if err != nil {
		t.Fatalf("sync: %v\nplan:\n%s", err, plan)
	}
	return plan
}
