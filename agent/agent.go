package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Defaults of the loop's timing.
const (
	// DefaultResyncPeriod is how often a full resync repairs drift (kernel state read again).
	DefaultResyncPeriod = 60 * time.Second
	// DefaultMinBackoff is the retry delay after the first failed sync; it doubles with every
	// further failure, up to DefaultMaxBackoff.
	DefaultMinBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff caps the retry delay.
	DefaultMaxBackoff = 30 * time.Second
)

// Agent is one node's sync loop. Fill the fields, then call Run; event handlers call MarkDirty.
type Agent struct {
	// NodeName is this node.
	NodeName string
	// NodeIPOverride is the --node-ip flag (empty: none).
	NodeIPOverride []netip.Addr
	// NodeStatePath is the CNI node state file.
	NodeStatePath string

	// Source, Routes, Masquerade, Uplinks, Status, Pods and Services are the collaborators (see deps.go).
	Source     Source
	Routes     RouteSyncer
	Masquerade Masquerader
	Uplinks    UplinkFinder
	Status     StatusWriter
	Pods       PodCounter
	// Services is the service proxy; nil: the agent programs no Services and reports no
	// ServicesProgrammed condition.
	Services ServiceProxy
	// Install runs once when Run starts (the CNI plugin and conflist); nil: nothing to install.
	Install func() error
	// Metrics may be nil.
	Metrics *Metrics

	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// ResyncPeriod, MinBackoff and MaxBackoff default to the Default* consts when zero.
	ResyncPeriod, MinBackoff, MaxBackoff time.Duration

	dirtyOnce sync.Once
	dirty     chan struct{}
	ready     atomic.Bool
	// written is the status the agent last patched into the NodeNetwork with UID writtenUID:
	// what the API holds even when the informer cache has not caught up yet.
	written    *v1.NodeNetworkStatus
	writtenUID types.UID
	// lastPatch is when the status was last patched; countsPending says a change of counts alone
	// was held back (see CountsInterval).
	lastPatch     time.Time
	countsPending bool
	// startupMemoryReleased says the first sync that programmed Services has returned its
	// transient memory (releaseTransientMemory).
	startupMemoryReleased bool
}

// CountsInterval is the least time between two status patches that change nothing but counts
// (routes, pods, services, endpoints). Conditions, generations and errors are written at once.
// Why: every Service change changes the counts on every node; writing them each time costs one
// API call per node per change, and with client-go's rate limit it held up the next sync (the
// Service programming latency in the lab doubled).
const CountsInterval = 5 * time.Second

// MarkDirty asks for a sync. It never blocks: requests made while one is pending coalesce.
func (a *Agent) MarkDirty() {
	a.init()
	select {
	case a.dirty <- struct{}{}:
	default:
	}
}

// Ready reports whether a sync has succeeded since the agent started (for /readyz).
func (a *Agent) Ready() bool { return a.ready.Load() }

// init makes the dirty channel; informer handlers may call MarkDirty before Run starts.
func (a *Agent) init() {
	a.dirtyOnce.Do(func() { a.dirty = make(chan struct{}, 1) })
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run installs the CNI plugin, then syncs whenever marked dirty, after a failure (with backoff)
// and every ResyncPeriod (a full resync), until ctx ends. The first sync is a full one: it adopts
// what an earlier agent programmed, diffing against the kernel instead of flushing. Run returns
// nil when ctx ends, leaving the data plane in place; only a failed install is an error.
func (a *Agent) Run(ctx context.Context) error {
	a.init()
	logger := log.FromContext(ctx)
	if a.Install != nil {
		if err := a.Install(); err != nil {
			return fmt.Errorf("install the CNI plugin: %w", err)
		}
	}
	resync := time.NewTicker(orDefault(a.ResyncPeriod, DefaultResyncPeriod))
	defer resync.Stop()
	minBackoff, maxBackoff := orDefault(a.MinBackoff, DefaultMinBackoff), orDefault(a.MaxBackoff, DefaultMaxBackoff)
	backoff := minBackoff
	var retry <-chan time.Time
	full := true
	var countsDue <-chan time.Time
	a.MarkDirty()
	for {
		// While a retry is pending, changes wait for it (the retry reads the latest objects
		// anyway), so a burst of API events cannot bypass the backoff.
		dirty := a.dirty
		if retry != nil {
			dirty = nil
		}
		select {
		case <-ctx.Done():
			logger.Info("Stopping; the data plane stays programmed")
			return nil
		case <-dirty:
		case <-retry:
		case <-countsDue:
			countsDue = nil
		case <-resync.C:
			full = true
		}
		_, err := a.Sync(ctx, full)
		if a.countsPending && countsDue == nil {
			countsDue = time.After(CountsInterval)
		}
		var waiting *WaitingError
		switch {
		case err == nil:
			full, retry, backoff = false, nil, minBackoff
		case errors.As(err, &waiting):
			// Nothing to retry until the API objects change; their events mark the agent dirty.
			logger.V(1).Info("Waiting for the control plane", "reason", waiting.Reason, "message", waiting.Message)
			retry = nil
		default:
			logger.Error(err, "Sync failed; full resync after backoff", "backoff", backoff)
			full, retry = true, time.After(backoff)
			backoff = min(2*backoff, maxBackoff)
		}
	}
}
