// Package manager is the agent's service proxy as the sync loop sees it: it keeps the Services and EndpointSlices the
// informers deliver (Feed), builds the proxy.Model for the node, and programs it through the
// backend that the ClusterNetwork's effective serviceProxy.mode selects (Manager), removing the
// state of the other backends. It also decides which Services get a Warning Event because the
// active backend cannot honour a feature they use, once per Service and feature set.
//
// Backend is the one interface a service proxy implementation meets to be driven here; the
// adapters NFTables and IPVS wrap the kernel backends of agent/proxy/nftables and
// agent/proxy/ipvs. The model (agent/proxy) knows nothing of them: its FeatureTable is only a
// backend's row of the feature table.
package manager

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/plexus-net/plexus/agent/proxy"
)

// Feed holds the current Services and EndpointSlices. Informer handlers call its Set and Delete
// methods from their goroutines; the sync loop reads it with snapshot. It wraps a proxy.Tracker
// (which is not safe for concurrent use) so a sync rebuilds only what changed; the Tracker is
// also the one place that holds the objects.
type Feed struct {
	mu      sync.Mutex
	tracker *proxy.Tracker
	node    proxy.NodeInfo
	// changed are the Services whose objects changed since the last snapshot (for Events).
	changed map[proxy.ServiceName]bool
}

// NewFeed returns an empty Feed.
func NewFeed() *Feed {
	return &Feed{
		tracker: proxy.NewTracker(proxy.NodeInfo{}),
		changed: map[proxy.ServiceName]bool{},
	}
}

// SetService adds or replaces a Service.
func (f *Feed) SetService(svc *corev1.Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed[proxy.ServiceName{Namespace: svc.Namespace, Name: svc.Name}] = true
	f.tracker.SetService(svc)
}

// DeleteService removes a Service; an unknown one is ignored.
func (f *Feed) DeleteService(namespace, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed[proxy.ServiceName{Namespace: namespace, Name: name}] = true
	f.tracker.DeleteService(namespace, name)
}

// SetSlice adds or replaces an EndpointSlice; one without the service-name label is ignored.
func (f *Feed) SetSlice(s *discoveryv1.EndpointSlice) {
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed[proxy.ServiceName{Namespace: s.Namespace, Name: svc}] = true
	f.tracker.SetSlice(s)
}

// DeleteSlice removes an EndpointSlice; an unknown one is ignored.
func (f *Feed) DeleteSlice(s *discoveryv1.EndpointSlice) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := proxy.ServiceName{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}
	if len(f.tracker.Slices(n)) > 0 {
		f.changed[n] = true
	}
	f.tracker.DeleteSlice(s)
}

// snapshot is what one sync reads from the Feed.
type snapshot struct {
	model proxy.Model
	// changed are the Services changed since the last snapshot, with their objects (a deleted
	// Service has none).
	changed map[proxy.ServiceName]serviceObjects
}

// serviceObjects are one Service and its EndpointSlices.
type serviceObjects struct {
	svc    *corev1.Service
	slices []*discoveryv1.EndpointSlice
}

// snapshot returns the model for node (rebuilding every Service when node changed) and the
// Services that changed. It touches only what changed: it runs in every sync.
func (f *Feed) snapshot(node proxy.NodeInfo) snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !equalNode(f.node, node) {
		f.node = node
		f.tracker.SetNode(node)
	}
	s := snapshot{model: f.tracker.Model(), changed: make(map[proxy.ServiceName]serviceObjects, len(f.changed))}
	for n := range f.changed {
		s.changed[n] = f.objectsLocked(n)
	}
	clear(f.changed)
	return s
}

// all returns every Service with its EndpointSlices (for a full round of Events).
func (f *Feed) all() map[proxy.ServiceName]serviceObjects {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[proxy.ServiceName]serviceObjects, f.tracker.Len())
	for n := range f.tracker.Services() {
		out[n] = f.objectsLocked(n)
	}
	return out
}

// objectsLocked returns Service n and its slices (none when n is unknown). The Tracker never
// modifies a slice list it has handed out, so callers may keep it.
func (f *Feed) objectsLocked(n proxy.ServiceName) serviceObjects {
	return serviceObjects{svc: f.tracker.Service(n), slices: f.tracker.Slices(n)}
}

func equalNode(a, b proxy.NodeInfo) bool {
	if a.Name != b.Name || a.Zone != b.Zone || len(a.Addresses) != len(b.Addresses) ||
		len(a.NodePortAddresses) != len(b.NodePortAddresses) {
		return false
	}
	for i := range a.Addresses {
		if a.Addresses[i] != b.Addresses[i] {
			return false
		}
	}
	for i := range a.NodePortAddresses {
		if a.NodePortAddresses[i] != b.NodePortAddresses[i] {
			return false
		}
	}
	return true
}
