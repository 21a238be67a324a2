package proxy

import (
	"iter"
	"maps"
	"slices"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// modelGen numbers the Models of all Trackers of the process, so a
// Model's base can only ever name the Model it was derived from.
var modelGen atomic.Uint64

// ServiceName names a Service.
type ServiceName struct {
	// Namespace and Name are the Service's.
	Namespace, Name string
}

// Tracker keeps the current Services and EndpointSlices (as informers
// deliver them) and produces Models, rebuilding only the Services that
// changed since the last Model: at 10,000 Services a full Build costs tens
// of milliseconds, one Service microseconds. It is not safe for concurrent
// use; the agent's sync loop owns it.
type Tracker struct {
	node NodeInfo
	svcs map[ServiceName]*corev1.Service
	// slices are each Service's EndpointSlices (usually one: a slice, not a
	// map, per Service). A stored slice is never modified: Set and Delete
	// replace it, so one returned by Slices stays valid.
	slices map[ServiceName][]*discoveryv1.EndpointSlice
	ports  map[ServiceName][]*ServicePort
	dirty  map[ServiceName]bool
	model  Model
}

// NewTracker returns an empty Tracker for node.
func NewTracker(node NodeInfo) *Tracker {
	return &Tracker{
		node:   node,
		svcs:   map[ServiceName]*corev1.Service{},
		slices: map[ServiceName][]*discoveryv1.EndpointSlice{},
		ports:  map[ServiceName][]*ServicePort{},
		dirty:  map[ServiceName]bool{},
		model:  Model{Ports: map[Key]*ServicePort{}},
	}
}

// SetNode changes the node's identity; every Service is rebuilt.
func (t *Tracker) SetNode(node NodeInfo) {
	t.node = node
	for n := range t.svcs {
		t.dirty[n] = true
	}
}

// SetService adds or replaces a Service.
func (t *Tracker) SetService(svc *corev1.Service) {
	n := ServiceName{svc.Namespace, svc.Name}
	t.svcs[n] = svc
	t.dirty[n] = true
}

// DeleteService removes a Service; unknown names are ignored.
func (t *Tracker) DeleteService(namespace, name string) {
	n := ServiceName{namespace, name}
	delete(t.svcs, n)
	t.dirty[n] = true
}

// SetSlice adds or replaces an EndpointSlice (by namespace and name); a
// slice without the service-name label is ignored.
func (t *Tracker) SetSlice(s *discoveryv1.EndpointSlice) {
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return
	}
	n := ServiceName{s.Namespace, svc}
	cur := t.slices[n]
	i := slices.IndexFunc(cur, func(o *discoveryv1.EndpointSlice) bool { return o.Name == s.Name })
	if i < 0 {
		t.slices[n] = append(cur[:len(cur):len(cur)], s)
	} else {
		next := slices.Clone(cur)
		next[i] = s
		t.slices[n] = next
	}
	t.dirty[n] = true
}

// DeleteSlice removes an EndpointSlice; unknown slices are ignored.
func (t *Tracker) DeleteSlice(s *discoveryv1.EndpointSlice) {
	n := ServiceName{s.Namespace, s.Labels[discoveryv1.LabelServiceName]}
	cur := t.slices[n]
	i := slices.IndexFunc(cur, func(o *discoveryv1.EndpointSlice) bool { return o.Name == s.Name })
	if i < 0 {
		return
	}
	if len(cur) == 1 {
		delete(t.slices, n)
	} else {
		t.slices[n] = slices.Delete(slices.Clone(cur), i, i+1)
	}
	t.dirty[n] = true
}

// Service returns the Service n; nil when unknown.
func (t *Tracker) Service(n ServiceName) *corev1.Service { return t.svcs[n] }

// Len returns the number of Services.
func (t *Tracker) Len() int { return len(t.svcs) }

// Services returns every Service, in no particular order.
func (t *Tracker) Services() iter.Seq2[ServiceName, *corev1.Service] { return maps.All(t.svcs) }

// Slices returns the EndpointSlices of Service n (nil when none), in no
// particular order. The caller must not modify the returned slice; later
// changes of the Tracker leave it as it is.
func (t *Tracker) Slices(n ServiceName) []*discoveryv1.EndpointSlice { return t.slices[n] }

// Model returns the current model. The returned Model is never modified
// afterwards (a later call returns a new map), so a backend may keep it
// as its previous state and Diff against the next.
func (t *Tracker) Model() Model {
	if len(t.dirty) == 0 {
		return t.model
	}
	counts := t.model.Counts()
	next := Model{Ports: maps.Clone(t.model.Ports), gen: modelGen.Add(1), base: t.model.gen, counts: &counts}
	seen := map[Key]bool{}
	touch := func(k Key) {
		if !seen[k] {
			seen[k] = true
			next.touched = append(next.touched, k)
		}
	}
	for n := range t.dirty {
		counts.addService(t.ports[n], -1)
		for _, sp := range t.ports[n] {
			delete(next.Ports, sp.Key)
			touch(sp.Key)
		}
		delete(t.ports, n)
		svc := t.svcs[n]
		if svc == nil {
			continue
		}
		sps := buildService(svc, t.slices[n], t.node)
		t.ports[n] = sps
		counts.addService(sps, 1)
		for _, sp := range sps {
			next.Ports[sp.Key] = sp
			touch(sp.Key)
		}
	}
	clear(t.dirty)
	t.model = next
	return next
}
