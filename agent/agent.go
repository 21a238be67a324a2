package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/agent/status"
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

// Agent is one node's sync loop: its collaborators and the loop's state. Fill the exported
// fields, then call Run; event handlers call MarkDirty.
type Agent struct {
	// NodeName is this node.
	NodeName string
	// NodeIPOverride is the --node-ip flag (empty: none).
	NodeIPOverride []netip.Addr

	// Source gives a sync the API objects; Uplinks finds the uplink; Pods counts pods (may be
	// nil). See deps.go.
	Source  Source
	Uplinks UplinkFinder
	Pods    PodCounter
	// Planes are the node's data planes, run in this order by every sync; each fails alone.
	Planes []Plane
	// Reporter patches the NodeNetwork status after every sync.
	Reporter status.Reporter
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
}

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
		if a.Reporter.CountsPending() && countsDue == nil {
			countsDue = time.After(status.CountsInterval)
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
