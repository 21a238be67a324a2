package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// probes serves /healthz and /readyz for the whole life of the process, not of one manager: while
// start-up waits for the API server there is no manager yet, and a probe endpoint that is not there
// would let the kubelet's liveness probe restart a process that is only waiting.
type probes struct {
	mu     sync.Mutex
	ready  bool
	reason string
}

func newProbes() *probes { return &probes{reason: "starting"} }

// setReady marks the manager started (ready) or not, saying why not.
func (p *probes) setReady(ready bool, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ready, p.reason = ready, reason
}

func (p *probes) state() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready, p.reason
}

// handler answers /healthz with 200 while the process runs, and /readyz with 200 only while a
// manager has started its caches, else 503 and the reason.
func (p *probes) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, reason := p.state()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %s\n", reason)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	return mux
}

// serve listens on addr ("0" disables the probes) until ctx ends.
func (p *probes) serve(ctx context.Context, addr string) error {
	if addr == "0" || addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for health probes on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: p.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.setReady(false, "probe server failed: "+err.Error())
		}
	}()
	return nil
}

// readyMarker is a manager runnable that needs no leadership: the manager starts it once its
// caches have started, on every replica, and stops it when the manager stops.
type readyMarker struct{ p *probes }

// Start marks the process ready until ctx ends.
func (m readyMarker) Start(ctx context.Context) error {
	m.p.setReady(true, "")
	<-ctx.Done()
	m.p.setReady(false, "the manager is stopping")
	return nil
}

// NeedLeaderElection is false: a standby replica is ready too, to take the lease over.
func (readyMarker) NeedLeaderElection() bool { return false }
