// Package cachetrim holds the informer transforms of the agent: every agent caches every Node,
// Service and EndpointSlice of the cluster, so it keeps only the fields it reads.
package cachetrim

import (
	"sync"
	"unique"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The informer transforms of the service proxy's objects. Every agent caches every Service and
// every EndpointSlice of the cluster, so what it keeps of them is most of its memory: at 10,000
// Services the managedFields alone outweigh the fields the proxy reads. The transforms keep
// exactly what proxy.Build, proxy.Tracker, proxy.UsedFeatures, manager.Feed and the agent's
// handlers read (TestTrim* prove that a trimmed object builds the same model and feature list),
// and drop the rest: managedFields, annotations, owner references, labels (but the slice's
// service-name label), selectors, unused spec and status fields, and per endpoint its
// targetRef, hostname, zone and deprecated topology. A proxy feature that starts reading
// another field must add it here, with its test.

// Service is the informer transform of Services: it keeps the parts of a Service the service
// proxy uses; anything else passes through unchanged (the informer also hands tombstones to a
// transform, and objects it has already transformed). Exported for test/proxybench, whose proxy
// process must hold what the agent holds.
func Service(obj any) (any, error) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return obj, nil
	}
	out := &corev1.Service{
		// UID and resourceVersion: the Warning Events name the Service's version.
		ObjectMeta: metav1.ObjectMeta{
			Namespace: internString(s.Namespace), Name: s.Name, UID: s.UID, ResourceVersion: s.ResourceVersion,
		},
		Spec: corev1.ServiceSpec{
			Type:                  s.Spec.Type,
			ClusterIP:             s.Spec.ClusterIP,
			ClusterIPs:            s.Spec.ClusterIPs,
			ExternalIPs:           s.Spec.ExternalIPs,
			SessionAffinity:       s.Spec.SessionAffinity,
			SessionAffinityConfig: s.Spec.SessionAffinityConfig,
			ExternalTrafficPolicy: s.Spec.ExternalTrafficPolicy,
			InternalTrafficPolicy: s.Spec.InternalTrafficPolicy,
			HealthCheckNodePort:   s.Spec.HealthCheckNodePort,
		},
	}
	// spec.clusterIP repeats spec.clusterIPs[0]: keep one string.
	if len(out.Spec.ClusterIPs) > 0 && out.Spec.ClusterIP == out.Spec.ClusterIPs[0] {
		out.Spec.ClusterIP = out.Spec.ClusterIPs[0]
	}
	if len(s.Spec.Ports) > 0 {
		out.Spec.Ports = make([]corev1.ServicePort, len(s.Spec.Ports))
		for i, p := range s.Spec.Ports {
			out.Spec.Ports[i] = corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port, NodePort: p.NodePort}
		}
	}
	if len(s.Status.LoadBalancer.Ingress) > 0 {
		ing := make([]corev1.LoadBalancerIngress, len(s.Status.LoadBalancer.Ingress))
		for i, in := range s.Status.LoadBalancer.Ingress {
			ing[i] = corev1.LoadBalancerIngress{IP: in.IP, IPMode: in.IPMode}
		}
		out.Status.LoadBalancer.Ingress = ing
	}
	return out, nil
}

// EndpointSlice is the informer transform of EndpointSlices: it keeps the parts of an
// EndpointSlice the service proxy uses; anything else passes through unchanged.
func EndpointSlice(obj any) (any, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return obj, nil
	}
	out := &discoveryv1.EndpointSlice{
		// resourceVersion: the handlers skip resyncs by it.
		ObjectMeta:  metav1.ObjectMeta{Namespace: internString(s.Namespace), Name: s.Name, ResourceVersion: s.ResourceVersion},
		AddressType: s.AddressType,
	}
	if svc, ok := s.Labels[discoveryv1.LabelServiceName]; ok {
		out.Labels = map[string]string{discoveryv1.LabelServiceName: svc}
	}
	if len(s.Ports) > 0 {
		out.Ports = make([]discoveryv1.EndpointPort, len(s.Ports))
		for i, p := range s.Ports {
			out.Ports[i] = discoveryv1.EndpointPort{Name: p.Name, Protocol: p.Protocol, Port: p.Port}
		}
	}
	if len(s.Endpoints) > 0 {
		out.Endpoints = make([]discoveryv1.Endpoint, len(s.Endpoints))
		for i, e := range s.Endpoints {
			t := discoveryv1.Endpoint{
				Addresses: e.Addresses,
				Conditions: discoveryv1.EndpointConditions{
					Ready: internBool(e.Conditions.Ready), Serving: internBool(e.Conditions.Serving), Terminating: internBool(e.Conditions.Terminating),
				},
				NodeName: nodeNames.intern(e.NodeName),
			}
			if e.Hints != nil && len(e.Hints.ForZones) > 0 {
				t.Hints = &discoveryv1.EndpointHints{ForZones: e.Hints.ForZones}
			}
			out.Endpoints[i] = t
		}
	}
	return out, nil
}

// Endpoints repeat a few values millions of times in a large cluster: their conditions and node
// names. The transforms let the cached objects share one copy of each (cached objects are
// read-only to everyone, as the informer contract says), which saves three small allocations
// per endpoint for the conditions and two for the node name.
var (
	condTrue, condFalse = new(bool), new(bool)
	nodeNames           = stringPointers{max: maxInternedNodeNames}
)

func init() { *condTrue = true }

// maxInternedNodeNames bounds the node name table: a cluster that has seen more node names
// starts the table afresh (the objects keep their pointers; only sharing is lost).
const maxInternedNodeNames = 20000

// internBool returns the shared pointer to *p; nil stays nil.
func internBool(p *bool) *bool {
	switch {
	case p == nil:
		return nil
	case *p:
		return condTrue
	default:
		return condFalse
	}
}

// internString returns s backed by the process's canonical copy of its bytes.
func internString(s string) string { return unique.Make(s).Value() }

// stringPointers shares one *string per distinct value.
type stringPointers struct {
	mu  sync.Mutex
	max int
	m   map[string]*string
}

// intern returns the shared pointer to *p's value; nil stays nil.
func (t *stringPointers) intern(p *string) *string {
	if p == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if q, ok := t.m[*p]; ok {
		return q
	}
	if t.m == nil || len(t.m) >= t.max {
		t.m = map[string]*string{}
	}
	t.m[*p] = p
	return p
}

// Node is the informer transform of Nodes: it keeps the parts of a Node a sync reads (name,
// annotations, addresses, the zone label); anything else passes through unchanged. Kubelets
// update their Node often with data (images, conditions) the agent never looks at.
func Node(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Generation: n.Generation,
			Annotations: n.Annotations, DeletionTimestamp: n.DeletionTimestamp, Labels: zoneOnly(n.Labels),
		},
		Status: corev1.NodeStatus{Addresses: n.Status.Addresses},
	}, nil
}

// zoneOnly keeps the zone label (topology hints of the service proxy) of a Node's labels.
func zoneOnly(labels map[string]string) map[string]string {
	if z, ok := labels[corev1.LabelTopologyZone]; ok {
		return map[string]string{corev1.LabelTopologyZone: z}
	}
	return nil
}
