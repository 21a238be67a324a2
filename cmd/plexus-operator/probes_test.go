package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/internal/testnet"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// TestProbesFollowTheManager: alive throughout; ready only while a manager runs its caches.
func TestProbesFollowTheManager(t *testing.T) {
	p := newProbes()
	h := p.handler()
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz before any manager = %d, want 200: the process is alive while it waits", code)
	}
	p.setReady(false, "attempt 1 failed, next in 1s: TLS handshake timeout")
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "TLS handshake timeout") {
		t.Fatalf("/readyz while waiting = %d %q, want 503 with the reason", code, body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- readyMarker{p: p}.Start(ctx) }()
	if !testnet.Poll(5*time.Second, time.Millisecond, func() bool { code, _ := get(t, h, "/readyz"); return code == http.StatusOK }) {
		t.Fatal("/readyz never turned 200 once the manager started the marker")
	}
	cancel()
	<-done
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "stopping") {
		t.Fatalf("/readyz after the manager stopped = %d %q, want 503", code, body)
	}
	if (readyMarker{}).NeedLeaderElection() {
		t.Fatal("a standby replica must be ready too: the marker must not wait for the lease")
	}
}
