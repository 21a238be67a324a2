package agentrun

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/nsthread"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/internal/testnet"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// probe returns the status code and body of path.
func probe(t *testing.T, h http.Handler, path string) (int, proxyHealthResponse) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var body proxyHealthResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: body %q is no JSON: %v", path, rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	return rec.Code, body
}

// TestProxyHealth walks kube-proxy's rule: healthy unless a change has waited longer than the
// timeout for a successful sync (the agent's start counts as one); /healthz also says 503 while
// the Node is being deleted, /livez does not.
func TestProxyHealth(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)}
	h := newProxyHealth(time.Minute, clock.now)
	deleting := false
	h.nodeEligible = func() bool { return !deleting }
	srv := h.handler()
	expect := func(step string, healthz, livez int) {
		t.Helper()
		for path, want := range map[string]int{"/healthz": healthz, "/livez": livez} {
			if code, body := probe(t, srv, path); code != want || !body.CurrentTime.Equal(clock.t) {
				t.Errorf("%s: %s answered %d (currentTime %v), want %d (currentTime %v)", step, path, code, body.CurrentTime, want, clock.t)
			}
		}
	}

	expect("just started", 200, 200)
	clock.t = clock.t.Add(time.Minute)
	expect("never synced for the timeout", 503, 503)

	h.updated()
	synced := clock.t
	expect("synced", 200, 200)
	if _, body := probe(t, srv, "/healthz"); !body.LastUpdated.Equal(synced) || body.NodeEligible == nil || !*body.NodeEligible {
		t.Errorf("body after a sync: %+v, want lastUpdated %v and nodeEligible true", body, synced)
	}
	if _, body := probe(t, srv, "/livez"); body.NodeEligible != nil {
		t.Errorf("/livez reports nodeEligible: %+v", body)
	}

	clock.t = clock.t.Add(time.Hour)
	expect("nothing changed for an hour", 200, 200)
	h.queued()
	clock.t = clock.t.Add(59 * time.Second)
	h.queued() // a later change does not reset the oldest one
	expect("a change waiting 59 s", 200, 200)
	clock.t = clock.t.Add(time.Second)
	expect("a change waiting the timeout", 503, 503)
	h.updated()
	expect("synced again", 200, 200)

	deleting = true
	expect("Node being deleted", 503, 200)
	if _, body := probe(t, srv, "/healthz"); body.NodeEligible == nil || *body.NodeEligible {
		t.Errorf("body while the Node is deleted: %+v, want nodeEligible false", body)
	}
}

// fakeServiceProxy returns err from every Sync.
type fakeServiceProxy struct{ err error }

func (f *fakeServiceProxy) Sync(context.Context, manager.Desired, bool) manager.Result {
	return manager.Result{Err: f.err}
}

// TestTrackedProxy: only a successful sync counts for health; the conntrack sysctls are
// written after a sync until they have been written once (nf_conntrack may load only then).
func TestTrackedProxy(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)}
	h := newProxyHealth(time.Minute, clock.now)
	backend := &fakeServiceProxy{err: errors.New("nft failed")}
	tunes, tuneErr := 0, errConntrackNotLoaded
	p := &trackedProxy{ServiceProxy: backend, health: h, tune: func() error { tunes++; return tuneErr }}
	ctx := context.Background()

	p.Sync(ctx, manager.Desired{}, true)
	if _, body := probe(t, h.handler(), "/livez"); !body.LastUpdated.IsZero() {
		t.Errorf("a failed sync counted as an update: %+v", body)
	}
	backend.err = nil
	clock.t = clock.t.Add(time.Second)
	p.Sync(ctx, manager.Desired{}, false)
	if _, body := probe(t, h.handler(), "/livez"); !body.LastUpdated.Equal(clock.t) {
		t.Errorf("a successful sync did not count: %+v", body)
	}
	tuneErr = nil
	p.Sync(ctx, manager.Desired{}, false)
	p.Sync(ctx, manager.Desired{}, false)
	if tunes != 3 {
		t.Errorf("tune ran %d times, want 3 (twice before conntrack was loaded, once after)", tunes)
	}
}

// TestKernelProxyHealthInNetns: the health server listens in the node's namespace (--netns),
// where kube-proxy's port answers, not in the agent's own.
func TestKernelProxyHealthInNetns(t *testing.T) {
	testnet.RequireRoot(t)
	ns := testnet.NewNetns(t, "proxyhealth")
	ns.SetUp(t, "lo")
	thread, err := nsthread.Start(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer thread.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newProxyHealth(time.Minute, time.Now)
	h.updated()
	if err := serve(ctx, "127.0.0.1:10256", h.handler(), listenIn(thread)); err != nil {
		t.Fatal(err)
	}
	var code int
	var body proxyHealthResponse
	err = ns.Do(func() error {
		// Dialled here, on the namespace's thread: an http.Client would dial on a goroutine of
		// its own, in the test's namespace.
		c, err := net.DialTimeout("tcp", "127.0.0.1:10256", 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("GET /livez HTTP/1.0\r\n\r\n")); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		code = resp.StatusCode
		return json.NewDecoder(resp.Body).Decode(&body)
	})
	if err != nil || code != http.StatusOK || body.LastUpdated.IsZero() {
		t.Errorf("/livez in the namespace: code %d, body %+v, err %v; want 200 with lastUpdated", code, body, err)
	}
}
