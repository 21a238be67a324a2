package admit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// admitAsync runs Admit in a goroutine and returns its result channel, after the request is
// registered (the trigger fired).
func admitAsync(t *testing.T, tr *Tracker, triggered chan struct{}, ctx context.Context, ref PodRef, ips ...string) chan error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- tr.Admit(ctx, ref, addrs(ips...)) }()
	select {
	case <-triggered:
	case <-time.After(10 * time.Second):
		t.Fatal("Admit did not trigger a sync")
	}
	return res
}

func newTestTracker() (*Tracker, chan struct{}) {
	triggered := make(chan struct{}, 16)
	return NewTracker(func() { triggered <- struct{}{} }), triggered
}

func requireWaiting(t *testing.T, res chan error, what string) {
	t.Helper()
	select {
	case err := <-res:
		t.Fatalf("%s: Admit returned %v, want it still waiting", what, err)
	case <-time.After(50 * time.Millisecond):
	}
}

func requireResult(t *testing.T, res chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Admit did not return")
	}
	return nil
}

func TestAdmitWaitsForARoundThatBeganAfterTheRequest(t *testing.T) {
	tr, triggered := newTestTracker()
	ref := PodRef{"default", "web", "u1"}
	pods := []*corev1.Pod{testPod("default", "web", "u1")}

	early := tr.Begin(pods) // a sync already running when the request arrives
	res := admitAsync(t, tr, triggered, context.Background(), ref, "10.244.1.5")
	early.Done(nil)
	requireWaiting(t, res, "a round that began before the request completed")

	round := tr.Begin(pods)
	if got := podIPStrings(round.Pods[0]); len(got) != 1 || got[0] != "10.244.1.5" {
		t.Fatalf("round compiles the pod at %v, want the CNI address", got)
	}
	requireWaiting(t, res, "the round has not completed")
	round.Done(nil)
	if err := requireResult(t, res); err != nil {
		t.Fatalf("Admit after a successful round: %v", err)
	}
	if tr.Changes() != 1 {
		t.Errorf("Changes = %d, want 1 after one request", tr.Changes())
	}
}

func TestAdmitFailedRoundKeepsWaitingAndTimesOutWithTheError(t *testing.T) {
	tr, triggered := newTestTracker()
	ctx, cancel := context.WithCancel(context.Background())
	res := admitAsync(t, tr, triggered, ctx, PodRef{"default", "web", ""}, "10.244.1.5")
	tr.Begin([]*corev1.Pod{testPod("default", "web", "")}).Done(errors.New("nft: transaction refused"))
	requireWaiting(t, res, "the round failed")
	cancel()
	err := requireResult(t, res)
	if err == nil || !strings.Contains(err.Error(), "the last sync failed: nft: transaction refused") {
		t.Errorf("Admit = %v, want the sync's error", err)
	}
}

func TestAdmitRetriedRoundSucceeds(t *testing.T) {
	tr, triggered := newTestTracker()
	res := admitAsync(t, tr, triggered, context.Background(), PodRef{"default", "web", ""}, "10.244.1.5")
	pods := []*corev1.Pod{testPod("default", "web", "")}
	tr.Begin(pods).Done(errors.New("transient"))
	tr.Begin(pods).Done(nil)
	if err := requireResult(t, res); err != nil {
		t.Errorf("Admit after a failed then a good round: %v", err)
	}
}

func TestAdmitWithoutThePodObjectFailsClosed(t *testing.T) {
	tr, triggered := newTestTracker()
	ctx, cancel := context.WithCancel(context.Background())
	res := admitAsync(t, tr, triggered, ctx, PodRef{"default", "web", "new"}, "10.244.1.5")
	// The cache holds only a deleted pod of the same name.
	tr.Begin([]*corev1.Pod{testPod("default", "web", "old", "10.244.1.4")}).Done(nil)
	requireWaiting(t, res, "the round did not hold the pod")
	cancel()
	err := requireResult(t, res)
	if err == nil || !strings.Contains(err.Error(), "has not seen the Pod object yet") {
		t.Errorf("Admit = %v, want it to say the Pod is not in the cache", err)
	}
}

func TestAdmitWithoutAnySyncSaysSo(t *testing.T) {
	tr, triggered := newTestTracker()
	ctx, cancel := context.WithCancel(context.Background())
	res := admitAsync(t, tr, triggered, ctx, PodRef{"default", "web", ""}, "10.244.1.5")
	cancel()
	if err := requireResult(t, res); err == nil || !strings.Contains(err.Error(), "no policy sync completed") {
		t.Errorf("Admit = %v, want it to say no sync completed", err)
	}
	if tr.Pending().Len() != 0 {
		t.Errorf("a request that failed left its entry: the plugin freed those addresses")
	}
}

func TestAdmitDisabled(t *testing.T) {
	tr, triggered := newTestTracker()
	res := admitAsync(t, tr, triggered, context.Background(), PodRef{"default", "web", ""}, "10.244.1.5")
	tr.SetEnabled(false)
	if err := requireResult(t, res); err != nil {
		t.Errorf("a waiting request when enforcement is turned off: %v", err)
	}
	if err := tr.Admit(context.Background(), PodRef{"default", "other", ""}, addrs("10.244.1.6")); err != nil {
		t.Errorf("Admit while disabled: %v", err)
	}
	select {
	case <-triggered:
		t.Errorf("Admit while disabled triggered a sync")
	default:
	}
}
