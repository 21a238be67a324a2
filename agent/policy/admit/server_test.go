package admit

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/agent/policy/admit/wire"
)

// startServer serves tr on a socket in a temporary directory and returns its path; the server
// stops when the test ends.
func startServer(t *testing.T, tr *Tracker, timeout time.Duration) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "policy.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Tracker: tr, Timeout: timeout}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path
}

// syncOnTrigger plays the agent's sync loop: every trigger runs one round over pods.
func syncOnTrigger(tr *Tracker, triggered chan struct{}, pods []*corev1.Pod, stop chan struct{}) {
	for {
		select {
		case <-triggered:
			tr.Begin(pods).Done(nil)
		case <-stop:
			return
		}
	}
}

func TestSocketRoundTripEnforced(t *testing.T) {
	tr, triggered := newTestTracker()
	stop := make(chan struct{})
	defer close(stop)
	go syncOnTrigger(tr, triggered, []*corev1.Pod{testPod("default", "web", "u1")}, stop)
	path := startServer(t, tr, 10*time.Second)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != socketMode {
		t.Fatalf("socket %s: %v, mode %v; want mode %o", path, err, fi.Mode(), socketMode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := wire.Request{Namespace: "default", Name: "web", UID: "u1", ContainerID: "c1", IPs: addrs("10.244.1.5", "fd10::5")}
	if err := wire.Ask(ctx, path, req); err != nil {
		t.Fatalf("Ask: %v", err)
	}
}

func TestSocketRoundTripTimesOut(t *testing.T) {
	tr, _ := newTestTracker() // nobody syncs
	path := startServer(t, tr, 200*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := wire.Ask(ctx, path, wire.Request{Namespace: "default", Name: "web", IPs: addrs("10.244.1.5")})
	if err == nil || !strings.Contains(err.Error(), "did not enforce") || !strings.Contains(err.Error(), "no policy sync completed") {
		t.Errorf("Ask = %v, want the agent's refusal saying no sync completed", err)
	}
}

func TestSocketClientGivesUp(t *testing.T) {
	tr, _ := newTestTracker()
	path := startServer(t, tr, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// A plugin that claims a longer wait than it keeps (or an agent that answers too late).
	err := wire.Ask(ctx, path, wire.Request{Namespace: "default", Name: "web", IPs: addrs("10.244.1.5"), WaitMillis: 60000})
	if err == nil || !strings.Contains(err.Error(), "no answer from the plexus agent") {
		t.Errorf("Ask = %v, want a timeout", err)
	}
	// The server notices the closed connection and drops the waiter.
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr.mu.Lock()
		n := len(tr.waiters)
		tr.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still waiting after the client left", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSocketBadRequest(t *testing.T) {
	tr, _ := newTestTracker()
	path := startServer(t, tr, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := wire.Ask(ctx, path, wire.Request{Namespace: "default", IPs: addrs("10.244.1.5")})
	if err == nil || !strings.Contains(err.Error(), `bad request: field "name": missing`) {
		t.Errorf("Ask = %v, want the missing name named", err)
	}
}

func TestAskWithoutAgent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "policy.sock")
	err := wire.Ask(ctx, path, wire.Request{Namespace: "default", Name: "web", IPs: addrs("10.244.1.5")})
	if err == nil || !strings.Contains(err.Error(), "connect to the plexus agent") {
		t.Errorf("Ask = %v, want a connect error", err)
	}
}

func TestListenReplacesAStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.sock")
	// A socket file left behind by a listener that is gone, as after an agent crash.
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = old.Close()
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	_ = ln.Close()
}

func TestRequestTimeout(t *testing.T) {
	for _, c := range []struct {
		own  time.Duration
		wait int64
		want time.Duration
	}{
		{0, 0, DefaultTimeout},
		{0, 25000, 24 * time.Second},
		{10 * time.Second, 25000, 10 * time.Second},
		{0, 1000, 500 * time.Millisecond},
	} {
		if got := requestTimeout(c.own, c.wait); got != c.want {
			t.Errorf("requestTimeout(%v, %dms) = %v, want %v", c.own, c.wait, got, c.want)
		}
	}
}

// TestSocketAgentAnswersBeforeThePluginGivesUp: with the plugin's wait shorter than the agent's
// bound, the plugin still gets the agent's reason, not a timeout of its own.
func TestSocketAgentAnswersBeforeThePluginGivesUp(t *testing.T) {
	tr, _ := newTestTracker() // nobody syncs
	path := startServer(t, tr, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := wire.Ask(ctx, path, wire.Request{Namespace: "default", Name: "web", IPs: addrs("10.244.1.5")})
	if err == nil || !strings.Contains(err.Error(), "no policy sync completed") {
		t.Errorf("Ask = %v, want the agent's reason", err)
	}
}
