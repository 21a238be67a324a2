package proxy_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/plexus-net/plexus/agent/proxy"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

var node = proxy.NodeInfo{
	Name: "node-a", Zone: "zone-1",
	Addresses: []netip.Addr{netip.MustParseAddr("10.99.0.11"), netip.MustParseAddr("fd10:99::11"), netip.MustParseAddr("172.31.0.1")},
}

func eps(list []proxy.Endpoint) string {
	var s []string
	for _, e := range list {
		s = append(s, e.String())
	}
	return strings.Join(s, ",")
}

func vips(list []proxy.VIP) string {
	var s []string
	for _, v := range list {
		s = append(s, v.Kind.String()+"="+netip.AddrPortFrom(v.Addr, v.Port).String())
	}
	return strings.Join(s, ",")
}

func build(t *testing.T, svc *corev1.Service, sl ...*discoveryv1.EndpointSlice) proxy.Model {
	t.Helper()
	return proxy.Build([]*corev1.Service{svc}, sl, node)
}

func port(t *testing.T, m proxy.Model, name string, fam proxy.Family) *proxy.ServicePort {
	t.Helper()
	sp := m.Ports[proxy.Key{ServicePortName: proxy.ServicePortName{Namespace: "ns", Name: name, Port: "p"}, Family: fam}]
	if sp == nil {
		t.Fatalf("no service port ns/%s:p/%s in %v", name, fam, m.Keys())
	}
	return sp
}

// TestVIPs: every frontend kind lands in the model with the right port;
// NodePorts on the node's addresses of the family, restricted by
// NodePortAddresses; LB ingress with ipMode Proxy is left out.
func TestVIPs(t *testing.T) {
	svc := pt.Service("ns", "web", []string{"10.96.0.10", "fd00:10:96::10"}, pt.NodePortPort("p", corev1.ProtocolTCP, 80, 30080))
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	svc.Spec.ExternalIPs = []string{"203.0.113.7", "2001:db8::7"}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
		{IP: "198.51.100.1"}, {IP: "198.51.100.2", IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)}, {IP: "2001:db8::1"},
	}
	m := build(t, svc)
	if got, want := vips(port(t, m, "web", proxy.IPv4).VIPs),
		"ClusterIP=10.96.0.10:80,NodePort=10.99.0.11:30080,NodePort=172.31.0.1:30080,LoadBalancerIP=198.51.100.1:80,ExternalIP=203.0.113.7:80"; got != want {
		t.Errorf("IPv4 VIPs\n got %s\nwant %s", got, want)
	}
	if got, want := vips(port(t, m, "web", proxy.IPv6).VIPs),
		"ClusterIP=[fd00:10:96::10]:80,NodePort=[fd10:99::11]:30080,LoadBalancerIP=[2001:db8::1]:80,ExternalIP=[2001:db8::7]:80"; got != want {
		t.Errorf("IPv6 VIPs\n got %s\nwant %s", got, want)
	}
	n := node
	n.NodePortAddresses = []netip.Prefix{netip.MustParsePrefix("10.99.0.0/24")}
	m = proxy.Build([]*corev1.Service{svc}, nil, n)
	if got, want := vips(port(t, m, "web", proxy.IPv4).VIPs),
		"ClusterIP=10.96.0.10:80,NodePort=10.99.0.11:30080,LoadBalancerIP=198.51.100.1:80,ExternalIP=203.0.113.7:80"; got != want {
		t.Errorf("with NodePortAddresses\n got %s\nwant %s", got, want)
	}
	if _, ok := m.Ports[proxy.Key{ServicePortName: proxy.ServicePortName{Namespace: "ns", Name: "web", Port: "p"}, Family: proxy.IPv6}]; !ok {
		t.Errorf("IPv6 port missing when NodePortAddresses has no IPv6 range")
	}
}

// TestSkipped: headless and ExternalName Services are not proxied.
func TestSkipped(t *testing.T) {
	headless := pt.Service("ns", "h", []string{"None"}, pt.Port("p", corev1.ProtocolTCP, 80))
	ext := pt.Service("ns", "e", nil, pt.Port("p", corev1.ProtocolTCP, 80))
	ext.Spec.Type = corev1.ServiceTypeExternalName
	other := pt.Service("ns", "o", []string{"10.96.0.20"}, pt.Port("p", corev1.ProtocolTCP, 80))
	other.Labels = map[string]string{proxy.LabelServiceProxyName: "someone-else"}
	labelledHeadless := pt.Service("ns", "lh", []string{"10.96.0.21"}, pt.Port("p", corev1.ProtocolTCP, 80))
	labelledHeadless.Labels = map[string]string{proxy.LabelHeadless: ""}
	all := []*corev1.Service{headless, ext, other, labelledHeadless}
	if m := proxy.Build(all, nil, node); len(m.Ports) != 0 {
		t.Errorf("model has %v, want nothing", m.Keys())
	}
	for _, svc := range all {
		if f := proxy.UsedFeatures(svc, nil); f != nil {
			t.Errorf("%s: features %v, want none (not this proxy's)", svc.Name, f)
		}
	}
}

// TestHeadlessSlicesIgnored: an EndpointSlice labelled headless adds no
// endpoint, so a Service whose only slice carries it rejects.
func TestHeadlessSlicesIgnored(t *testing.T) {
	svc := pt.Service("ns", "web", []string{"10.96.0.10"}, pt.Port("p", corev1.ProtocolTCP, 80))
	plain := pt.Slice("ns", "web", "web-1", "p", corev1.ProtocolTCP, 8080, pt.EP{IP: "10.244.1.1", Node: "node-a"})
	labelled := pt.Slice("ns", "web", "web-2", "p", corev1.ProtocolTCP, 8080, pt.EP{IP: "10.244.2.1", Node: "node-b"})
	labelled.Labels[proxy.LabelHeadless] = ""
	sp := port(t, build(t, svc, plain, labelled), "web", proxy.IPv4)
	if got, want := eps(sp.ClusterEndpoints), "10.244.1.1:8080"; got != want {
		t.Errorf("endpoints %q, want %q (the headless slice ignored)", got, want)
	}
	sp = port(t, build(t, svc, labelled), "web", proxy.IPv4)
	if got := sp.ActionFor(proxy.ClusterIP); got != proxy.Reject || len(sp.ClusterEndpoints) != 0 {
		t.Errorf("only a headless slice: action %s endpoints %v, want Reject and none", got, sp.ClusterEndpoints)
	}
}

// TestEndpointSelection is the table of Kubernetes' endpoint rules. The
// local count (the health check's answer) counts ready local endpoints
// only: a node left with terminating ones forwards to them but reports
// unhealthy, so load balancers drain it.
func TestEndpointSelection(t *testing.T) {
	local, remote := "node-a", "node-b"
	cases := []struct {
		name          string
		itp, etp      bool
		eps           []pt.EP
		cluster, ext  string
		fromNode      string
		clusterAction proxy.Action
		extAction     proxy.Action
		localCount    int
		topology      bool
	}{
		{name: "ready only", eps: []pt.EP{{IP: "10.244.1.1", Node: local}, {IP: "10.244.2.1", Node: remote}, {IP: "10.244.2.2", Node: remote, NotReady: true}},
			cluster: "10.244.1.1:8080,10.244.2.1:8080", ext: "10.244.1.1:8080,10.244.2.1:8080", clusterAction: proxy.Forward, extAction: proxy.Forward, localCount: 1},
		{name: "terminating only when no ready", eps: []pt.EP{{IP: "10.244.1.1", Node: local, NotReady: true, Terminating: true}, {IP: "10.244.2.1", Node: remote}},
			cluster: "10.244.2.1:8080", ext: "10.244.2.1:8080", clusterAction: proxy.Forward, extAction: proxy.Forward, localCount: 0},
		{name: "serving terminating fallback", eps: []pt.EP{{IP: "10.244.1.1", Node: local, NotReady: true, Terminating: true}, {IP: "10.244.2.1", Node: remote, NotReady: true, Terminating: true, NotServing: true}},
			cluster: "10.244.1.1:8080", ext: "10.244.1.1:8080", clusterAction: proxy.Forward, extAction: proxy.Forward, localCount: 0},
		{name: "no endpoints rejects", eps: nil, clusterAction: proxy.Reject, extAction: proxy.Reject},
		{name: "only not-ready rejects", eps: []pt.EP{{IP: "10.244.1.1", Node: local, NotReady: true}}, clusterAction: proxy.Reject, extAction: proxy.Reject},
		{name: "iTP Local", itp: true, eps: []pt.EP{{IP: "10.244.1.1", Node: local}, {IP: "10.244.2.1", Node: remote}},
			cluster: "10.244.1.1:8080", ext: "10.244.1.1:8080,10.244.2.1:8080", clusterAction: proxy.Forward, extAction: proxy.Forward, localCount: 1},
		{name: "iTP Local none local drops", itp: true, eps: []pt.EP{{IP: "10.244.2.1", Node: remote}},
			ext: "10.244.2.1:8080", clusterAction: proxy.Drop, extAction: proxy.Forward},
		{name: "eTP Local", etp: true, eps: []pt.EP{{IP: "10.244.1.1", Node: local}, {IP: "10.244.2.1", Node: remote}},
			cluster: "10.244.1.1:8080,10.244.2.1:8080", ext: "10.244.1.1:8080", fromNode: "10.244.1.1:8080,10.244.2.1:8080", clusterAction: proxy.Forward, extAction: proxy.Forward, localCount: 1},
		{name: "eTP Local none local drops", etp: true, eps: []pt.EP{{IP: "10.244.2.1", Node: remote}},
			cluster: "10.244.2.1:8080", fromNode: "10.244.2.1:8080", clusterAction: proxy.Forward, extAction: proxy.Drop},
		{name: "eTP and iTP Local: the node's own traffic still goes cluster-wide", etp: true, itp: true, eps: []pt.EP{{IP: "10.244.2.1", Node: remote}},
			fromNode: "10.244.2.1:8080", clusterAction: proxy.Drop, extAction: proxy.Drop},
		{name: "eTP Local terminating local fallback", etp: true, eps: []pt.EP{{IP: "10.244.1.1", Node: local, NotReady: true, Terminating: true}, {IP: "10.244.2.1", Node: remote}},
			cluster: "10.244.2.1:8080", ext: "10.244.1.1:8080", fromNode: "10.244.2.1:8080", clusterAction: proxy.Forward, extAction: proxy.Forward, localCount: 0},
		{name: "topology hints for my zone", eps: []pt.EP{{IP: "10.244.1.1", Node: local, Zones: []string{"zone-1"}}, {IP: "10.244.2.1", Node: remote, Zones: []string{"zone-2"}}},
			cluster: "10.244.1.1:8080", ext: "10.244.1.1:8080", clusterAction: proxy.Forward, extAction: proxy.Forward, localCount: 1, topology: true},
		{name: "topology ignored when an endpoint lacks hints", eps: []pt.EP{{IP: "10.244.1.1", Node: local, Zones: []string{"zone-1"}}, {IP: "10.244.2.1", Node: remote}},
			cluster: "10.244.1.1:8080,10.244.2.1:8080", ext: "10.244.1.1:8080,10.244.2.1:8080", clusterAction: proxy.Forward, extAction: proxy.Forward, localCount: 1},
		{name: "topology ignored when my zone has none", eps: []pt.EP{{IP: "10.244.2.1", Node: remote, Zones: []string{"zone-2"}}},
			cluster: "10.244.2.1:8080", ext: "10.244.2.1:8080", clusterAction: proxy.Forward, extAction: proxy.Forward},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc := pt.Service("ns", "web", []string{"10.96.0.10"}, pt.NodePortPort("p", corev1.ProtocolTCP, 80, 30080))
			svc.Spec.Type = corev1.ServiceTypeNodePort
			if c.itp {
				svc.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
			}
			if c.etp {
				svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}
			sp := port(t, build(t, svc, pt.Slice("ns", "web", "web-1", "p", corev1.ProtocolTCP, 8080, c.eps...)), "web", proxy.IPv4)
			if got := eps(sp.ClusterEndpoints); got != c.cluster {
				t.Errorf("cluster endpoints %q, want %q", got, c.cluster)
			}
			if got := eps(sp.ExternalEndpoints); got != c.ext {
				t.Errorf("external endpoints %q, want %q", got, c.ext)
			}
			if got := eps(sp.FromNodeEndpoints); got != c.fromNode {
				t.Errorf("endpoints of the node's own traffic to external VIPs %q, want %q", got, c.fromNode)
			}
			if got := sp.ActionFor(proxy.ClusterIP); got != c.clusterAction {
				t.Errorf("ClusterIP action %s, want %s", got, c.clusterAction)
			}
			if got := sp.ActionFor(proxy.NodePort); got != c.extAction {
				t.Errorf("NodePort action %s, want %s", got, c.extAction)
			}
			if sp.LocalEndpoints != c.localCount || sp.UsesTopology != c.topology {
				t.Errorf("local count %d topology %t, want %d %t", sp.LocalEndpoints, sp.UsesTopology, c.localCount, c.topology)
			}
			if got, want := sp.MasqueradeFor(proxy.NodePort), !c.etp; got != want {
				t.Errorf("NodePort masquerade %t, want %t", got, want)
			}
			if sp.MasqueradeFor(proxy.ClusterIP) {
				t.Errorf("ClusterIP traffic masqueraded")
			}
		})
	}
}

// TestAffinityAndHealthCheck: ClientIP affinity with default and explicit
// timeout; the health check node port only with eTP Local on a
// LoadBalancer.
func TestAffinityAndHealthCheck(t *testing.T) {
	svc := pt.Service("ns", "web", []string{"10.96.0.10"}, pt.NodePortPort("p", corev1.ProtocolTCP, 80, 30080))
	svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	if sp := port(t, build(t, svc), "web", proxy.IPv4); !sp.SessionAffinity || sp.AffinityTimeoutSeconds != 10800 {
		t.Errorf("affinity %t timeout %d, want true 10800", sp.SessionAffinity, sp.AffinityTimeoutSeconds)
	}
	svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	svc.Spec.HealthCheckNodePort = 32000
	if sp := port(t, build(t, svc), "web", proxy.IPv4); sp.AffinityTimeoutSeconds != 60 || sp.HealthCheckNodePort != 32000 {
		t.Errorf("timeout %d health check %d, want 60 32000", sp.AffinityTimeoutSeconds, sp.HealthCheckNodePort)
	}
}

// TestPortsMatchSlicesByNameAndProtocol: a two-port Service takes each
// target port from the slice port of the same name and protocol, and each
// family only from slices of its address type.
func TestPortsMatchSlicesByNameAndProtocol(t *testing.T) {
	svc := pt.Service("ns", "dns", []string{"10.96.0.10", "fd00:10:96::a"}, pt.Port("p", corev1.ProtocolUDP, 53), pt.Port("tcp", corev1.ProtocolTCP, 53))
	s4 := pt.Slice("ns", "dns", "dns-4", "p", corev1.ProtocolUDP, 5353, pt.EP{IP: "10.244.1.1", Node: "node-a"})
	s4.Ports = append(s4.Ports, discoveryv1.EndpointPort{Name: ptr.To("tcp"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](5354)})
	s6 := pt.Slice("ns", "dns", "dns-6", "p", corev1.ProtocolUDP, 5353, pt.EP{IP: "fd10:244::1", Node: "node-a"})
	m := build(t, svc, s4, s6)
	if got := eps(port(t, m, "dns", proxy.IPv4).ClusterEndpoints); got != "10.244.1.1:5353" {
		t.Errorf("udp v4 endpoints %s", got)
	}
	if got := eps(port(t, m, "dns", proxy.IPv6).ClusterEndpoints); got != "[fd10:244::1]:5353" {
		t.Errorf("udp v6 endpoints %s", got)
	}
	tcp := m.Ports[proxy.Key{ServicePortName: proxy.ServicePortName{Namespace: "ns", Name: "dns", Port: "tcp"}, Family: proxy.IPv4}]
	if tcp == nil || eps(tcp.ClusterEndpoints) != "10.244.1.1:5354" {
		t.Errorf("tcp v4 port %+v", tcp)
	}
	if c := m.Counts(); c.Services != 1 || c.ServicePorts != 4 || c.Endpoints != 3 {
		t.Errorf("counts %+v", c)
	}
}

// TestDiff: hashes are stable for equal input and change with any
// programmed field.
func TestDiff(t *testing.T) {
	svcs, sl := pt.Scale(3, 2)
	a := proxy.Build(svcs, sl, node)
	if c := proxy.Diff(a, proxy.Build(svcs, sl, node)); !c.Empty() {
		t.Fatalf("rebuild of the same input differs: %+v", c)
	}
	sl[1].Endpoints[0].Conditions.Ready = ptr.To(false)
	b := proxy.Build(svcs[:2], sl, node)
	c := proxy.Diff(a, b)
	if len(c.Added) != 0 || len(c.Removed) != 1 || c.Removed[0].Name != "svc-2" || len(c.Changed) != 1 || c.Changed[0].Name != "svc-1" {
		t.Errorf("diff %+v", c)
	}
}

// TestUnsupported lists what a backend lacks for a Service.
func TestUnsupported(t *testing.T) {
	b := proxy.FeatureSet{Mode: "partial", Supported: map[proxy.Feature]bool{proxy.FeatureClusterIP: true, proxy.FeatureTCP: true, proxy.FeatureRejectNoEndpoints: true, proxy.FeatureHairpin: true}}
	svc := pt.Service("ns", "web", []string{"10.96.0.10"}, pt.Port("p", corev1.ProtocolSCTP, 80))
	svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	got := proxy.Unsupported(b, svc, nil)
	if want := []proxy.Feature{proxy.FeatureSessionAffinity, proxy.FeatureSCTP}; !slices.Equal(got, want) {
		t.Errorf("unsupported %v, want %v", got, want)
	}
	if msg := proxy.EventMessage(b, got); msg != `serviceProxy mode "partial" cannot honour SessionAffinityClientIP, SCTP; the Service is proxied without them` {
		t.Errorf("event message %q", msg)
	}
	sup, unsup := proxy.Table(b)
	if len(sup)+len(unsup) != len(proxy.AllFeatures) || len(sup) != 4 {
		t.Errorf("table %v / %v", sup, unsup)
	}
}
