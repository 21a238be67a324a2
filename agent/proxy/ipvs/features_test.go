package ipvs_test

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
	corev1 "k8s.io/api/core/v1"
)

// TestFeatures pins the backend's column of the feature table: every
// feature, the two that rest on more than IPVS included (the health check
// servers that agent/proxy/manager drives, the kernel's expiry of a removed UDP
// endpoint's flows), each shown in the VM tests.
func TestFeatures(t *testing.T) {
	for _, f := range proxy.AllFeatures {
		if !ipvs.Features.Supports(f) {
			t.Errorf("%s not supported", f)
		}
	}
	if ipvs.Features.Name() != "ipvs" {
		t.Errorf("name %q", ipvs.Features.Name())
	}
}

// TestSysctls pins the kernel settings the mode writes: conntrack for the
// masquerade rules, the expiry of flows of removed real servers (the UDP
// flush), and the ARP settings that keep the node from answering for the
// virtual IPs on its uplink.
func TestSysctls(t *testing.T) {
	want := map[string]string{
		"net/ipv4/vs/conntrack":                 "1",
		"net/ipv4/vs/expire_nodest_conn":        "1",
		"net/ipv4/vs/expire_quiescent_template": "1",
		"net/ipv4/conf/all/arp_ignore":          "1",
		"net/ipv4/conf/all/arp_announce":        "2",
	}
	if !maps.Equal(ipvs.Sysctls, want) {
		t.Errorf("Sysctls %v, want %v", ipvs.Sysctls, want)
	}
}

// TestDesiredStateBindsVIPsNotNodeAddresses: load-balancer and external IPs
// are bound like ClusterIPs; node addresses of NodePorts are not (the node
// has them) but are remembered as Plexus's.
func TestDesiredStateBindsVIPsNotNodeAddresses(t *testing.T) {
	s := proxytest.Service("default", "lb", []string{"10.96.0.20"}, proxytest.NodePortPort("dns", corev1.ProtocolUDP, 53, 30053))
	s.Spec.Type = corev1.ServiceTypeLoadBalancer
	s.Spec.ExternalIPs = []string{"203.0.113.7"}
	s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.9"}}
	m := proxy.Build([]*corev1.Service{s}, nil, proxy.NodeInfo{Name: "vm", Addresses: []netip.Addr{ip("10.99.0.11")}})
	d := ipvs.DesiredState(m, ipvs.Config{})
	if want := []netip.Addr{ip("10.96.0.20"), ip("198.51.100.9"), ip("203.0.113.7")}; !slices.Equal(d.Bound, want) {
		t.Errorf("bound %v, want %v", d.Bound, want)
	}
	if want := []netip.Addr{ip("10.99.0.11")}; !slices.Equal(d.NodeAddresses, want) {
		t.Errorf("node addresses %v, want %v", d.NodeAddresses, want)
	}
	var keys []string
	for _, svc := range d.Services {
		keys = append(keys, svc.VirtualServer.Key().String())
	}
	want := []string{"UDP 10.96.0.20:53", "UDP 10.99.0.11:30053", "UDP 198.51.100.9:53", "UDP 203.0.113.7:53"}
	if !slices.Equal(keys, want) {
		t.Errorf("virtual servers %v, want %v", keys, want)
	}
}
