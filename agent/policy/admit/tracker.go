package admit

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DefaultExpiry is how long a pending entry whose pod the agent never sees is kept.
const DefaultExpiry = 5 * time.Minute

// Tracker is the agent's side of pod admission: the Pending overlay plus a barrier between
// plexus-cni's requests and the policy sync. Admit (called by the Server for each request)
// records the pod's addresses, asks for a sync and blocks until a sync that began after the
// request included the pod and was programmed without error. The sync loop brackets every policy
// compile with Begin and Round.Done. Safe for concurrent use.
type Tracker struct {
	pending *Pending
	trigger func()
	now     func() time.Time
	expiry  time.Duration

	mu       sync.Mutex
	enabled  bool
	begun    uint64 // rounds begun so far; a round's sequence number is its ordinal
	changes  uint64 // bumped by every Add, see Changes
	waiters  map[*waiter]struct{}
	lastErr  error // of the last round that completed, nil if it succeeded
	lastSeen uint64
}

// waiter is one Admit call in progress.
type waiter struct {
	pod   PodRef
	after uint64 // rounds begun before the request; only later rounds count
	done  chan struct{}
	// seen tells that a completed later round held the pod (for the timeout message).
	seen bool
}

// NewTracker returns an enabled Tracker that calls trigger (which must not block) whenever a
// request needs a policy sync.
func NewTracker(trigger func()) *Tracker {
	return &Tracker{
		pending: NewPending(), trigger: trigger, now: time.Now, expiry: DefaultExpiry,
		enabled: true, waiters: map[*waiter]struct{}{},
	}
}

// Pending returns the overlay (for status and tests).
func (t *Tracker) Pending() *Pending { return t.pending }

// Changes returns a counter that grows with every admitted request: a policy plane that skips
// syncs whose inputs did not change must count it as an input, since the overlay changes the
// compiled pods without any informer event.
func (t *Tracker) Changes() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changes
}

// SetEnabled turns enforcement on or off. While it is off (networkPolicy.enabled false) Admit
// answers at once, since no policy is enforced on the node, and waiting requests are released.
func (t *Tracker) SetEnabled(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.enabled = on
	if !on {
		for w := range t.waiters {
			close(w.done)
			delete(t.waiters, w)
		}
	}
}

// Round is one policy compile bracketed by Begin and Done.
type Round struct {
	t   *Tracker
	seq uint64
	// Pods is the pod list to compile: the informer's, with the pending addresses merged in.
	Pods    []*corev1.Pod
	applied []PodRef
}

// Begin starts a round for a compile of pods (the informer's list, not modified): it forgets the
// pending entries the list no longer needs and returns the round, whose Pods the compile must
// read instead of pods. Call Done on the round once the compiled model is programmed or failed.
func (t *Tracker) Begin(pods []*corev1.Pod) *Round {
	t.pending.Prune(pods, t.now().Add(-t.expiry))
	t.mu.Lock()
	t.begun++
	seq := t.begun
	t.mu.Unlock()
	// Snapshot after the sequence number is taken: an Add that the snapshot misses has
	// after >= seq, so this round cannot release it.
	merged, applied := Merge(pods, t.pending.Snapshot())
	return &Round{t: t, seq: seq, Pods: merged, applied: applied}
}

// Done ends the round. With err nil, every request made before the round began whose pod the
// round held is answered "enforced"; with an error the requests keep waiting for a later round
// (the agent retries) and a timeout reports err.
func (r *Round) Done(err error) {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastErr, t.lastSeen = err, r.seq
	for w := range t.waiters {
		if w.after >= r.seq || !slices.Contains(r.applied, w.pod) {
			continue
		}
		w.seen = true
		if err == nil {
			close(w.done)
			delete(t.waiters, w)
		}
	}
}

// Admit records that pod now has ips, asks for a sync and waits until a sync that began after
// this call has programmed policy for the pod at those addresses. It returns nil then, at once
// when enforcement is disabled, and otherwise an error when ctx ends first that says what was
// missing: the Pod object (the agent's cache has not seen it) or a successful sync. A request that
// fails leaves no pending entry: plexus-cni fails ADD then and frees the addresses.
func (t *Tracker) Admit(ctx context.Context, pod PodRef, ips []netip.Addr) error {
	t.mu.Lock()
	if !t.enabled {
		t.mu.Unlock()
		return nil
	}
	added := t.now()
	t.pending.Add(pod, ips, added)
	w := &waiter{pod: pod, after: t.begun, done: make(chan struct{})}
	t.waiters[w] = struct{}{}
	t.changes++
	t.mu.Unlock()
	t.trigger()

	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, waiting := t.waiters[w]; !waiting {
		return nil // released just as ctx ended
	}
	delete(t.waiters, w)
	// The plugin fails ADD and frees the addresses: the entry must not outlive them.
	t.pending.forgetIf(Entry{Pod: pod, Added: added})
	switch {
	case w.seen && t.lastErr != nil:
		return fmt.Errorf("policy for pod %s at %v not programmed: the last sync failed: %w", pod, ips, t.lastErr)
	case w.seen:
		return fmt.Errorf("policy for pod %s at %v not programmed: %w", pod, ips, ctx.Err())
	case t.lastSeen > w.after:
		return fmt.Errorf("policy for pod %s at %v not programmed: the agent has not seen the Pod object yet (%w)", pod, ips, ctx.Err())
	}
	return fmt.Errorf("policy for pod %s at %v not programmed: no policy sync completed (%w)", pod, ips, ctx.Err())
}
