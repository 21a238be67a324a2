package agentrun

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/agent"
	"github.com/plexus-net/plexus/agent/proxy/manager"
)

// The service proxy's health server answers like kube-proxy's on :10256, which load balancers,
// tools and the upstream e2e specs probe on every node:
//
//   - /livez: 200 while the service proxy keeps up, 503 when a change has waited longer than
//     the timeout for a successful sync (or the agent has never synced for that long);
//   - /healthz: the same, and also 503 while the Node is being deleted (so load balancers stop
//     sending to it first). The taint kube-proxy also honours there is not cached by the agent.
//
// The body is JSON: lastUpdated (the last successful service proxy sync), currentTime and, for
// /healthz, nodeEligible.
const (
	// DefaultProxyHealthAddress is kube-proxy's healthz port.
	DefaultProxyHealthAddress = ":10256"
	// proxyHealthTimeoutFactor times --resync-period is the default --proxy-healthz-timeout
	// (kube-proxy uses twice its sync period).
	proxyHealthTimeoutFactor = 2
)

// proxyHealth tracks when the service proxy last synced and how long a change has waited.
type proxyHealth struct {
	timeout time.Duration
	now     func() time.Time
	// nodeEligible says the Node is not being deleted (nil: always).
	nodeEligible func() bool

	mu sync.Mutex
	// lastUpdated is the end of the last successful sync; oldestPending the time of the
	// oldest change not yet synced (zero: none).
	lastUpdated, oldestPending time.Time
}

// newProxyHealth returns a tracker that counts its own start as a pending change: an agent
// that never syncs turns unhealthy after timeout.
func newProxyHealth(timeout time.Duration, now func() time.Time) *proxyHealth {
	return &proxyHealth{timeout: timeout, now: now, oldestPending: now()}
}

// queued records a change that the next sync must program (the informers' dirty hook).
func (h *proxyHealth) queued() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.oldestPending.IsZero() {
		h.oldestPending = h.now()
	}
}

// updated records a successful sync: nothing is pending any more.
func (h *proxyHealth) updated() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastUpdated, h.oldestPending = h.now(), time.Time{}
}

// proxyHealthResponse is the JSON body of /healthz and /livez.
type proxyHealthResponse struct {
	LastUpdated  time.Time `json:"lastUpdated"`
	CurrentTime  time.Time `json:"currentTime"`
	NodeEligible *bool     `json:"nodeEligible,omitempty"`
}

// state returns whether the proxy keeps up, and the body's times.
func (h *proxyHealth) state() (healthy bool, resp proxyHealthResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	healthy = h.oldestPending.IsZero() || now.Sub(h.oldestPending) < h.timeout
	return healthy, proxyHealthResponse{LastUpdated: h.lastUpdated, CurrentTime: now}
}

// handler serves /healthz and /livez.
func (h *proxyHealth) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		healthy, resp := h.state()
		eligible := h.nodeEligible == nil || h.nodeEligible()
		resp.NodeEligible = &eligible
		writeProxyHealth(w, healthy && eligible, resp)
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		healthy, resp := h.state()
		writeProxyHealth(w, healthy, resp)
	})
	return mux
}

func writeProxyHealth(w http.ResponseWriter, ok bool, resp proxyHealthResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// trackedProxy is the agent's ServiceProxy as the sync loop gets it: it tells proxyHealth about
// each successful sync and writes the conntrack sysctls (tune) after a sync until they are
// written, or fail for another reason than a missing nf_conntrack.
type trackedProxy struct {
	agent.ServiceProxy
	health *proxyHealth
	// tune writes the conntrack sysctls in the node's namespace (nil: nothing to write).
	tune  func() error
	tuned bool
}

// Sync implements agent.ServiceProxy.
func (p *trackedProxy) Sync(ctx context.Context, d manager.Desired, full bool) manager.Result {
	res := p.ServiceProxy.Sync(ctx, d, full)
	if res.Err == nil {
		p.health.updated()
	}
	// After the proxy's sync: its table is what loads nf_conntrack, without which the
	// sysctls do not exist.
	if p.tune != nil && !p.tuned {
		switch err := p.tune(); {
		case err == nil:
			p.tuned = true
		case errors.Is(err, errConntrackNotLoaded):
			log.FromContext(ctx).V(2).Info("Conntrack timeouts not set yet", "reason", err)
		default:
			// Once: a read-only /proc/sys stays read-only, and the agent works without.
			p.tuned = true
			log.FromContext(ctx).Error(err, "Could not set the conntrack timeouts; keeping the kernel's (see --proc-sys-dir)")
		}
	}
	return res
}
