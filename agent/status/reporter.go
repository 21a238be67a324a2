package status

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// CountsInterval is the least time between two status patches that change nothing but counts
// (routes, pods, services, endpoints). Conditions, generations and errors are written at once.
// Why: every Service change changes the counts on every node; writing them each time costs one
// API call per node per change, and with client-go's rate limit it held up the next sync (the
// Service programming latency in the lab doubled).
const CountsInterval = 5 * time.Second

// PatchTimeout bounds a status patch, so an unresponsive API server delays the next sync (and
// the data plane's repair) by at most this much.
const PatchTimeout = 15 * time.Second

// Writer writes a node's NodeNetwork status.
type Writer interface {
	// PatchStatus patches nn's status subresource from nn.Status to next.
	PatchStatus(ctx context.Context, nn *v1.NodeNetwork, next v1.NodeNetworkStatus) error
}

// Reporter patches the node's NodeNetwork status after each sync, only when it changed, and
// remembers what it wrote. The agent is the only writer of the status; one goroutine uses a
// Reporter.
type Reporter struct {
	// Writer writes the status; nil: nothing is reported.
	Writer Writer
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Amend, if set, adds to every status built what another part of the agent observes
	// outside the sync (the connectivity prober's condition), before it is compared and patched.
	// It is called on the Reporter's goroutine and must not block.
	Amend func(*v1.NodeNetworkStatus)

	// written is the status last patched into the NodeNetwork with UID writtenUID: what the API
	// holds even when the informer cache has not caught up yet.
	written    *v1.NodeNetworkStatus
	writtenUID types.UID
	// lastPatch is when the status was last patched; countsPending says a change of counts
	// alone was held back (see CountsInterval).
	lastPatch     time.Time
	countsPending bool
}

// CountsPending reports whether a change of counts alone is being held back: the caller should
// report again after CountsInterval.
func (r *Reporter) CountsPending() bool { return r.countsPending }

func (r *Reporter) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Report patches nn's status to what o makes of it, when that changed anything a reader cares
// about, and reports whether it patched. Without a NodeNetwork (nil nn) there is nothing to
// report to (the operator creates it with the pod CIDRs).
func (r *Reporter) Report(ctx context.Context, nn *v1.NodeNetwork, o Observation) (bool, error) {
	if nn == nil || r.Writer == nil {
		return false, nil
	}
	prev := nn.Status
	// The cache may lag behind the agent's own last patch; that patch is what the API holds. A
	// stale base would make the merge patch miss fields that the last patch changed.
	if r.written != nil && r.writtenUID == nn.UID {
		prev = *r.written
	}
	next := Build(prev, o)
	if r.Amend != nil {
		r.Amend(&next)
	}
	if !Changed(prev, next) {
		r.countsPending = false
		return false, nil
	}
	if OnlyCountsChanged(prev, next) && r.now().Sub(r.lastPatch) < CountsInterval {
		r.countsPending = true
		return false, nil
	}
	base := nn.DeepCopy()
	base.Status = prev
	pctx, cancel := context.WithTimeout(ctx, PatchTimeout)
	defer cancel()
	if err := r.Writer.PatchStatus(pctx, base, next); err != nil {
		r.written = nil
		return false, fmt.Errorf("patch status of NodeNetwork %s: %w", nn.Name, err)
	}
	r.written, r.writtenUID = &next, nn.UID
	r.lastPatch, r.countsPending = r.now(), false
	return true, nil
}
