package healthcheck

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/plexus-net/plexus/agent/proxy"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

// lb is a dual-stack LoadBalancer Service with health check node port hc,
// eTP Local when etpLocal.
func lb(name string, hc int32, etpLocal bool) *corev1.Service {
	s := pt.Service("default", name, []string{"10.96.0.40", "fd10:96::40"}, pt.NodePortPort("http", corev1.ProtocolTCP, 80, 30040))
	s.Spec.Type = corev1.ServiceTypeLoadBalancer
	s.Spec.HealthCheckNodePort = hc
	if etpLocal {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	return s
}

// TestPorts: one entry per health check node port of an eTP Local
// LoadBalancer Service, with the largest local endpoint count of its
// families; other Services have none.
func TestPorts(t *testing.T) {
	svcs := []*corev1.Service{lb("web", 32001, true), lb("idle", 32002, true), lb("cluster", 32003, false)}
	slices := []*discoveryv1.EndpointSlice{
		// web: two local IPv4 endpoints, one local IPv6 one, one remote.
		pt.Slice("default", "web", "web-4", "http", corev1.ProtocolTCP, 8080,
			pt.EP{IP: "10.244.0.5", Node: "n1"}, pt.EP{IP: "10.244.0.6", Node: "n1"}, pt.EP{IP: "10.244.1.5", Node: "n2"}),
		pt.Slice("default", "web", "web-6", "http", corev1.ProtocolTCP, 8080, pt.EP{IP: "fd10:244::5", Node: "n1"}),
		// idle: endpoints elsewhere only.
		pt.Slice("default", "idle", "idle-4", "http", corev1.ProtocolTCP, 8080, pt.EP{IP: "10.244.1.6", Node: "n2"}),
	}
	m := proxy.Build(svcs, slices, proxy.NodeInfo{Name: "n1"})
	want := map[uint16]int{32001: 2, 32002: 0}
	if got := Ports(m); !maps.Equal(got, want) {
		t.Errorf("Ports = %v, want %v", got, want)
	}
	if got := Ports(proxy.Model{}); got == nil || len(got) != 0 {
		t.Errorf("Ports of an empty model = %#v, want an empty map", got)
	}
}
