package cachetrim

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/plexus-net/plexus/agent/proxy"
)

// fullMeta is object metadata as the API server returns it: everything the transforms drop.
func fullMeta(namespace, name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace: namespace, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "4711", Generation: 3,
		CreationTimestamp: metav1.Now(),
		Labels:            labels,
		Annotations: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": `{"a":"very long document"}`,
			"example.com/owner": "team-a",
		},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: name, UID: "owner"}},
		Finalizers:      []string{"example.com/keep"},
		ManagedFields: []metav1.ManagedFieldsEntry{{
			Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{}}}`)},
		}},
	}
}

// fullServices are Services of every kind the proxy programs or skips, with every field set.
func fullServices() []*corev1.Service {
	labels := map[string]string{"app": "web", "service.kubernetes.io/headless": "", "service.kubernetes.io/service-proxy-name": "other"}
	port := func(name string, proto corev1.Protocol, port, nodePort int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Protocol: proto, Port: port, NodePort: nodePort,
			TargetPort: intstr.FromString("web"), AppProtocol: ptr.To("kubernetes.io/h2c")}
	}
	base := func(name string, typ corev1.ServiceType, ips []string, ports ...corev1.ServicePort) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: fullMeta("ns", name, labels),
			Spec: corev1.ServiceSpec{
				Type: typ, Ports: ports, Selector: map[string]string{"app": name},
				ClusterIPs: ips, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
				IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyPreferDualStack), PublishNotReadyAddresses: true,
				TrafficDistribution: ptr.To(corev1.ServiceTrafficDistributionPreferClose),
			},
			Status: corev1.ServiceStatus{Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue}}},
		}
		if len(ips) > 0 {
			s.Spec.ClusterIP = ips[0]
		}
		return s
	}
	clusterIP := base("cluster", corev1.ServiceTypeClusterIP, []string{"10.96.0.10"},
		port("dns", corev1.ProtocolUDP, 53, 0), port("dns-tcp", corev1.ProtocolTCP, 53, 0))
	clusterIP.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	clusterIP.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(60))}}
	clusterIP.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)

	nodePort := base("nodeport", corev1.ServiceTypeNodePort, []string{"10.96.0.11", "fd00:96::11"}, port("http", "", 80, 30080))
	nodePort.Spec.ExternalIPs = []string{"192.0.2.200", "2001:db8::200"}
	nodePort.Spec.SessionAffinity = corev1.ServiceAffinityClientIP

	lb := base("lb", corev1.ServiceTypeLoadBalancer, []string{"10.96.0.12"}, port("https", corev1.ProtocolTCP, 443, 30443),
		port("sctp", corev1.ProtocolSCTP, 9999, 30999))
	lb.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	lb.Spec.HealthCheckNodePort = 32000
	lb.Spec.LoadBalancerIP = "198.51.100.7"
	lb.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"}
	lb.Spec.LoadBalancerClass = ptr.To("example.com/lb")
	lb.Spec.AllocateLoadBalancerNodePorts = ptr.To(true)
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
		{IP: "198.51.100.7", Hostname: "lb.example.com", Ports: []corev1.PortStatus{{Port: 443, Protocol: corev1.ProtocolTCP}}},
		{IP: "198.51.100.8", IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)},
		{IP: "198.51.100.9", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)},
	}

	headless := base("headless", corev1.ServiceTypeClusterIP, []string{corev1.ClusterIPNone}, port("http", corev1.ProtocolTCP, 80, 0))
	external := base("external", corev1.ServiceTypeExternalName, nil, port("http", corev1.ProtocolTCP, 80, 0))
	external.Spec.ExternalName = "db.example.com"
	legacy := base("legacy", corev1.ServiceTypeClusterIP, nil, port("http", corev1.ProtocolTCP, 80, 0))
	legacy.Spec.ClusterIP = "10.96.0.13" // written before dual-stack: no clusterIPs
	return []*corev1.Service{clusterIP, nodePort, lb, headless, external, legacy}
}

// fullSlices are the EndpointSlices of fullServices with every field set: ready, terminating,
// not serving, local and remote endpoints, zone hints, both families, and overlapping slices.
func fullSlices() []*discoveryv1.EndpointSlice {
	ep := func(ip, node string, ready, serving, terminating bool, zones ...string) discoveryv1.Endpoint {
		e := discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(serving), Terminating: ptr.To(terminating)},
			Hostname:   ptr.To("pod-" + node),
			NodeName:   ptr.To(node),
			Zone:       ptr.To("zone-of-" + node),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "pod-" + ip, UID: "pod-uid"},
			DeprecatedTopology: map[string]string{
				"kubernetes.io/hostname": node, "topology.kubernetes.io/zone": "zone-of-" + node,
			},
		}
		if len(zones) > 0 {
			e.Hints = &discoveryv1.EndpointHints{ForNodes: []discoveryv1.ForNode{{Name: node}}}
			for _, z := range zones {
				e.Hints.ForZones = append(e.Hints.ForZones, discoveryv1.ForZone{Name: z})
			}
		}
		return e
	}
	port := func(name string, proto corev1.Protocol, port int32) discoveryv1.EndpointPort {
		p := discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(port), AppProtocol: ptr.To("http")}
		if proto != "" {
			p.Protocol = ptr.To(proto)
		}
		return p
	}
	slice := func(svc, name string, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta: fullMeta("ns", name, map[string]string{
				discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io",
				"app": svc, "service.kubernetes.io/headless": "",
			}),
			AddressType: at, Ports: ports, Endpoints: eps,
		}
	}
	return []*discoveryv1.EndpointSlice{
		slice("cluster", "cluster-a", discoveryv1.AddressTypeIPv4,
			[]discoveryv1.EndpointPort{port("dns", corev1.ProtocolUDP, 5353), port("dns-tcp", corev1.ProtocolTCP, 5353)},
			ep("10.244.1.1", "node-1", true, true, false), ep("10.244.2.1", "node-2", true, true, false),
			ep("10.244.1.2", "node-1", false, true, true)),
		slice("cluster", "cluster-b", discoveryv1.AddressTypeIPv4,
			[]discoveryv1.EndpointPort{port("dns", corev1.ProtocolUDP, 5353)},
			ep("10.244.2.1", "node-2", false, false, true)), // overlaps cluster-a
		slice("nodeport", "nodeport-v4", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", "", 8080)},
			ep("10.244.1.3", "node-1", true, true, false, "zone-a"), ep("10.244.2.3", "node-2", true, true, false, "zone-b")),
		slice("nodeport", "nodeport-v6", discoveryv1.AddressTypeIPv6, []discoveryv1.EndpointPort{port("http", "", 8080)},
			ep("fd00:244::1:3", "node-1", true, true, false, "zone-a", "zone-b")),
		slice("lb", "lb-a", discoveryv1.AddressTypeIPv4,
			[]discoveryv1.EndpointPort{port("https", corev1.ProtocolTCP, 8443), port("sctp", corev1.ProtocolSCTP, 9999)},
			ep("10.244.1.4", "node-1", false, false, true), ep("10.244.2.4", "node-2", false, true, true)),
		slice("headless", "headless-a", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", corev1.ProtocolTCP, 80)},
			ep("10.244.1.5", "node-1", true, true, false)),
		slice("legacy", "legacy-a", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", corev1.ProtocolTCP, 8080)},
			ep("10.244.2.6", "node-2", true, true, false)),
		// Without the service-name label: ignored by the proxy, kept by the transform.
		{ObjectMeta: fullMeta("ns", "orphan", nil), AddressType: discoveryv1.AddressTypeIPv4},
	}
}

// trimmed returns the transformed copies of svcs and slices.
func trimmed(t *testing.T, svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	t.Helper()
	var ts []*corev1.Service
	for _, s := range svcs {
		out, err := Service(s)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, out.(*corev1.Service))
	}
	var tl []*discoveryv1.EndpointSlice
	for _, s := range slices {
		out, err := EndpointSlice(s)
		if err != nil {
			t.Fatal(err)
		}
		tl = append(tl, out.(*discoveryv1.EndpointSlice))
	}
	return ts, tl
}

// TestTrimKeepsTheModel proves that the proxy builds the same model, on nodes with and without
// a zone, and the same feature list per Service, from trimmed objects as from full ones.
func TestTrimKeepsTheModel(t *testing.T) {
	svcs, slices := fullServices(), fullSlices()
	ts, tl := trimmed(t, svcs, slices)
	nodes := []proxy.NodeInfo{
		{},
		{Name: "node-1", Zone: "zone-a", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("fd00::11")}},
		{Name: "node-2", Zone: "zone-b", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.12")},
			NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
	}
	for _, node := range nodes {
		full, trim := proxy.Build(svcs, slices, node), proxy.Build(ts, tl, node)
		if len(full.Ports) == 0 {
			t.Fatal("the full objects build an empty model")
		}
		if !reflect.DeepEqual(full, trim) {
			t.Errorf("node %q: trimmed objects build a different model:\nfull:    %v\ntrimmed: %v", node.Name, full.Keys(), trim.Keys())
			for k, sp := range full.Ports {
				if !reflect.DeepEqual(sp, trim.Ports[k]) {
					t.Errorf("%v:\nfull:    %+v\ntrimmed: %+v", k, sp, trim.Ports[k])
				}
			}
		}
		// The Tracker (the agent's incremental path) agrees too.
		ft, tt := proxy.NewTracker(node), proxy.NewTracker(node)
		for i := range svcs {
			ft.SetService(svcs[i])
			tt.SetService(ts[i])
		}
		for i := range slices {
			ft.SetSlice(slices[i])
			tt.SetSlice(tl[i])
		}
		if fm, tm := ft.Model(), tt.Model(); !reflect.DeepEqual(fm.Ports, tm.Ports) || !reflect.DeepEqual(fm.Ports, full.Ports) {
			t.Errorf("node %q: the Tracker's models differ (full %d ports, trimmed %d)", node.Name, len(fm.Ports), len(tm.Ports))
		}
	}
	for i, svc := range svcs {
		var fs, tsl []*discoveryv1.EndpointSlice
		for j, s := range slices {
			if s.Labels[discoveryv1.LabelServiceName] == svc.Name {
				fs, tsl = append(fs, s), append(tsl, tl[j])
			}
		}
		if f, tr := proxy.UsedFeatures(svc, fs), proxy.UsedFeatures(ts[i], tsl); !reflect.DeepEqual(f, tr) {
			t.Errorf("%s: features %v from the full objects, %v from the trimmed ones", svc.Name, f, tr)
		}
	}
}

// TestTrimDropsWhatTheProxyDoesNotRead checks that the transforms drop the bulk and keep what
// the agent's handlers and Events read.
func TestTrimDropsWhatTheProxyDoesNotRead(t *testing.T) {
	ts, tl := trimmed(t, fullServices(), fullSlices())
	for _, s := range ts {
		if s.ManagedFields != nil || s.Annotations != nil || s.Labels != nil || s.OwnerReferences != nil ||
			s.Spec.Selector != nil || s.Spec.LoadBalancerSourceRanges != nil || s.Status.Conditions != nil {
			t.Errorf("trimmed Service %s keeps metadata or fields the proxy does not read: %+v", s.Name, s)
		}
		if s.UID == "" || s.ResourceVersion != "4711" || s.Namespace != "ns" {
			t.Errorf("trimmed Service %s lost its UID or resourceVersion (handlers and Events read them)", s.Name)
		}
		for _, p := range s.Spec.Ports {
			if p.AppProtocol != nil || p.TargetPort != (intstr.IntOrString{}) {
				t.Errorf("trimmed Service %s keeps port fields the proxy does not read: %+v", s.Name, p)
			}
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.Hostname != "" || in.Ports != nil {
				t.Errorf("trimmed Service %s keeps ingress fields the proxy does not read: %+v", s.Name, in)
			}
		}
	}
	for _, s := range tl {
		if s.ManagedFields != nil || s.Annotations != nil || s.OwnerReferences != nil || len(s.Labels) > 1 {
			t.Errorf("trimmed EndpointSlice %s keeps metadata the proxy does not read: %+v", s.Name, s.ObjectMeta)
		}
		if s.Name != "orphan" && s.Labels[discoveryv1.LabelServiceName] == "" {
			t.Errorf("trimmed EndpointSlice %s lost its service-name label", s.Name)
		}
		for _, e := range s.Endpoints {
			if e.TargetRef != nil || e.Hostname != nil || e.Zone != nil || e.DeprecatedTopology != nil ||
				(e.Hints != nil && e.Hints.ForNodes != nil) {
				t.Errorf("trimmed EndpointSlice %s keeps endpoint fields the proxy does not read: %+v", s.Name, e)
			}
		}
	}
}

// TestTrimIsIdempotentAndPassesOthers: the informer may hand a transform an object it has
// already transformed, or a tombstone.
func TestTrimIsIdempotentAndPassesOthers(t *testing.T) {
	ts, tl := trimmed(t, fullServices(), fullSlices())
	ts2, tl2 := trimmed(t, ts, tl)
	if !reflect.DeepEqual(ts, ts2) || !reflect.DeepEqual(tl, tl2) {
		t.Error("trimming a trimmed object changes it")
	}
	tomb := toolscache.DeletedFinalStateUnknown{Key: "ns/x", Obj: ts[0]}
	for _, f := range []toolscache.TransformFunc{Service, EndpointSlice} {
		if out, err := f(tomb); err != nil || !reflect.DeepEqual(out, tomb) {
			t.Errorf("a tombstone comes out as %v, %v", out, err)
		}
	}
	if out, _ := Service(tl[0]); out != any(tl[0]) {
		t.Error("Service changed an EndpointSlice")
	}
}

// TestTrimSharesRepeatedValues: endpoints share their conditions and node names, without
// changing them.
func TestTrimSharesRepeatedValues(t *testing.T) {
	_, tl := trimmed(t, nil, fullSlices())
	a, b := tl[0].Endpoints[0], tl[0].Endpoints[2] // both on node-1; ready and not ready
	c := tl[2].Endpoints[0]                        // node-1, ready, in another slice
	if a.NodeName != c.NodeName || *a.NodeName != "node-1" || a.NodeName != b.NodeName {
		t.Errorf("node names not shared: %p %p %p", a.NodeName, b.NodeName, c.NodeName)
	}
	if a.Conditions.Ready != c.Conditions.Ready || !*a.Conditions.Ready || *b.Conditions.Ready || !*b.Conditions.Terminating {
		t.Errorf("conditions not shared or changed: %+v %+v", a.Conditions, b.Conditions)
	}
	var names stringPointers
	names.max = 2
	for _, n := range []string{"x", "y", "z", "x"} {
		if got := names.intern(ptr.To(n)); *got != n {
			t.Errorf("intern(%q) = %q", n, *got)
		}
	}
	if len(names.m) > 2 {
		t.Errorf("the table grew past its bound: %d", len(names.m))
	}
}
