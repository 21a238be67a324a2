package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/agent/proxy"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Desired is what one sync asks of the service proxy.
type Desired struct {
	// Mode is the effective serviceProxy.mode ("" means nftables).
	Mode v1.ServiceProxyMode
	// Node is the node the model is built for.
	Node proxy.NodeInfo
	// Config is passed to the backend.
	Config Config
}

// Result is what one sync of the service proxy did and found.
type Result struct {
	// Mode is the mode programmed.
	Mode string
	// Wrote says the sync changed the data plane (the active backend, or removing another's).
	Wrote bool
	// Counts are the model's figures (zero in mode none or after a failure).
	Counts proxy.Counts
	// Supported and Unsupported are the active backend's feature table (empty in mode none).
	Supported, Unsupported []proxy.Feature
	// Err is the failure, if any; Unavailable says it is missing kernel support (an
	// *UnavailableError).
	Err         error
	Unavailable bool
}

// EventRecorder records a Warning Event with proxy.EventReasonUnsupportedFeature on svc.
type EventRecorder func(svc *corev1.Service, message string)

// Manager programs the node's service proxy through the backend of the effective mode. Not safe
// for concurrent use: the agent's sync loop owns it.
type Manager struct {
	feed     *Feed
	backends map[v1.ServiceProxyMode]Backend
	events   EventRecorder

	active  v1.ServiceProxyMode
	cleaned bool // the other backends' state is known to be gone since active was chosen
	// emitted is the last Event message per Service; a Service gets a new Event only when its
	// message (the mode and the set of unsupported features) changes.
	emitted   map[proxy.ServiceName]string
	eventsAll bool // recompute every Service's Event (after a mode change or a failed sync)
}

// NewManager returns a Manager reading feed and driving backends (keyed by mode; a missing mode
// fails its syncs). events may be nil.
func NewManager(feed *Feed, backends map[v1.ServiceProxyMode]Backend, events EventRecorder) *Manager {
	return &Manager{feed: feed, backends: backends, events: events, emitted: map[proxy.ServiceName]string{}}
}

// Sync programs d. full makes every backend compare with the kernel and makes the Manager check
// again that the inactive backends left nothing behind. A sync that changes nothing writes
// nothing.
func (m *Manager) Sync(ctx context.Context, d Desired, full bool) Result {
	mode := d.Mode
	if mode == "" {
		mode = v1.ServiceProxyNFTables
	}
	snap := m.feed.snapshot(d.Node)
	res := Result{Mode: string(mode)}
	if full {
		for _, b := range m.backends {
			b.RequestFullSync()
		}
	}
	if mode != m.active {
		m.active, m.cleaned, m.eventsAll = mode, false, true
	}
	if !m.cleaned || full {
		var errs []error
		for bm, b := range m.backends {
			if bm == mode {
				continue
			}
			wrote, err := b.Remove(ctx, d.Node)
			res.Wrote = res.Wrote || wrote
			if err != nil {
				errs = append(errs, fmt.Errorf("remove the %s service proxy: %w", bm, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			res.Err = err
			return res
		}
		m.cleaned = true
	}
	if mode == v1.ServiceProxyNone {
		clear(m.emitted)
		return res
	}
	b := m.backends[mode]
	if b == nil {
		res.Err = fmt.Errorf("serviceProxy mode %q is not implemented by this agent", mode)
		return res
	}
	res.Supported, res.Unsupported = proxy.Table(b.Features())
	wrote, err := b.Sync(ctx, snap.model, d.Config)
	res.Wrote = res.Wrote || wrote
	if err != nil {
		_, res.Unavailable = errors.AsType[*UnavailableError](err)
		res.Err = fmt.Errorf("program Services with %s: %w", mode, err)
		m.eventsAll = true
		return res
	}
	res.Counts = snap.model.Counts()
	m.recordEvents(b.Features(), snap)
	return res
}

// recordEvents emits the Warning Events of the Services that changed (all after a mode change).
func (m *Manager) recordEvents(b proxy.FeatureTable, snap snapshot) {
	objs := snap.changed
	if m.eventsAll {
		objs = m.feed.all()
		for n := range m.emitted {
			if _, ok := objs[n]; !ok {
				objs[n] = serviceObjects{} // gone: forget its Event
			}
		}
		m.eventsAll = false
	}
	names := slices.Collect(maps.Keys(objs))
	slices.SortFunc(names, func(a, b proxy.ServiceName) int {
		if a.Namespace != b.Namespace {
			return cmp.Compare(a.Namespace, b.Namespace)
		}
		return cmp.Compare(a.Name, b.Name)
	})
	for _, n := range names {
		o := objs[n]
		if o.svc == nil {
			delete(m.emitted, n)
			continue
		}
		msg := proxy.EventMessage(b, proxy.Unsupported(b, o.svc, o.slices))
		if msg == "" {
			delete(m.emitted, n)
			continue
		}
		if m.emitted[n] == msg {
			continue
		}
		m.emitted[n] = msg
		if m.events != nil {
			m.events(o.svc, msg)
		}
	}
}
