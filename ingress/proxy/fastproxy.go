package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
)

// FastProxy is the Caddy handler "plexus_proxy" (translate.ReverseProxy with Handler
// translate.FastProxyHandler): a reverse proxy for plain HTTP/1.1 backends that forwards each
// request on the handler's own goroutine over its own keep-alive connections, and Caddy's
// reverse_proxy, provisioned from the same settings, for everything else.
//
// Caddy's reverse_proxy on net/http's Transport costs three goroutines and their hand-offs per
// request (the server's, the Transport's write and read loops), placeholders for every
// response header and several per-request copies; against nginx that was half the requests
// per second (issue #12). Here a request is written with a buffered writer and its response
// read with a buffered reader on the same goroutine, copied to the client, and the connection
// goes back to its endpoint's pool when the body was read to its end and neither side asked
// to close.
//
// Semantics kept from reverse_proxy as the translation configures it: round_robin and
// weighted_round_robin (smooth, exact per cycle of the weights) over the upstreams; a failed
// connection is retried on another endpoint (retries, try_duration, try_interval; other
// failures only for GET, as Caddy); an endpoint that failed is skipped for the passive health
// check's fail_duration; a request on a reused connection that gets no response byte is sent
// once more on a new connection when that is safe (as net/http does); Host is passed through,
// X-Forwarded-For/-Proto/-Host set as Caddy sets them, hop-by-hop headers removed both ways;
// 502 when no endpoint answers, 503 when none is usable, 504 on a timeout. Not done here, and
// left to reverse_proxy: upgrades (WebSocket), Expect: 100-continue, CONNECT, requests that
// declare trailers, 0-RTT requests, and any setting beyond what the translation emits for a
// plain backend (TLS, h2c, header operations, read/write timeouts, ...).
type FastProxy struct {
	// Handler is the fallback, and where the settings are read from.
	reverseproxy.Handler

	fast     bool
	ups      []*upstream
	weights  []int // nil: round robin
	robin    atomic.Uint64
	mu       sync.Mutex
	current  []int // smooth weighted round-robin state
	pool     pool
	failFor  time.Duration // 0: failed endpoints are not skipped
	retries  int
	tryFor   time.Duration
	tryPause time.Duration
	ctx      context.Context
	logger   *zap.Logger
}

func init() { caddy.RegisterModule(&FastProxy{}) }

// CaddyModule implements caddy.Module.
func (*FastProxy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.plexus_proxy", New: func() caddy.Module { return new(FastProxy) }}
}

// Provision implements caddy.Provisioner: it provisions the fallback, then the fast path when
// every setting is one it serves.
func (f *FastProxy) Provision(ctx caddy.Context) error {
	if err := f.Handler.Provision(ctx); err != nil {
		return err
	}
	f.ctx = ctx
	f.logger = ctx.Logger()
	why := f.provisionFast()
	f.fast = why == ""
	if !f.fast {
		ctx.Logger().Debug("plexus_proxy serves through reverse_proxy only", zap.String("reason", why))
	}
	return nil
}

// provisionFast sets up the fast path, or says which setting keeps it off.
func (f *FastProxy) provisionFast() string {
	h := &f.Handler
	t, ok := h.Transport.(*reverseproxy.HTTPTransport)
	switch {
	case !ok:
		return "transport is not http"
	case t.TLS != nil:
		return "TLS to the upstream"
	case slices.Contains(t.Versions, "h2c") || slices.Contains(t.Versions, "3"):
		return "HTTP version " + strings.Join(t.Versions, ",")
	case t.ProxyProtocol != "" || t.ForwardProxyURL != "" || len(t.NetworkProxyRaw) > 0 || t.LocalAddress != "" || t.Resolver != nil:
		return "transport dials through a proxy, address or resolver"
	case t.ReadTimeout != 0 || t.WriteTimeout != 0 || t.ResponseHeaderTimeout != 0 || t.MaxConnsPerHost != 0:
		return "transport timeouts or connection limit"
	case t.Compression == nil || *t.Compression:
		return "transport compression"
	case t.KeepAlive != nil && t.KeepAlive.Enabled != nil && !*t.KeepAlive.Enabled:
		return "keep-alive disabled"
	case h.CB != nil || h.DynamicUpstreams != nil || h.Headers != nil || h.Rewrite != nil || len(h.HandleResponse) > 0:
		return "circuit breaker, dynamic upstreams, header operations, rewrite or response handlers"
	case len(h.TrustedProxies) > 0 || h.RequestBuffers != 0 || h.ResponseBuffers != 0 || h.FlushInterval != 0:
		return "trusted proxies, buffering or flush interval"
	case h.LoadBalancing == nil || len(h.LoadBalancing.RetryMatch) > 0:
		return "retry match"
	case len(h.Upstreams) == 0:
		return "no upstreams"
	}
	if hc := h.HealthChecks; hc != nil {
		if hc.Active != nil {
			return "active health checks"
		}
		if p := hc.Passive; p != nil {
			if p.MaxFails > 1 || p.UnhealthyRequestCount != 0 || len(p.UnhealthyStatus) > 0 || p.UnhealthyLatency != 0 {
				return "passive health check beyond one failure"
			}
			f.failFor = time.Duration(p.FailDuration)
		}
	}
	switch sel := h.LoadBalancing.SelectionPolicy.(type) {
	case *reverseproxy.RoundRobinSelection:
	case *reverseproxy.WeightedRoundRobinSelection:
		if len(sel.Weights) != len(h.Upstreams) || slices.ContainsFunc(sel.Weights, func(w int) bool { return w <= 0 }) {
			return "weights that do not give every upstream a positive weight"
		}
		f.weights = sel.Weights
		f.current = make([]int, len(sel.Weights))
	default:
		return fmt.Sprintf("selection policy %T", sel)
	}
	for _, u := range h.Upstreams {
		if strings.Contains(u.Dial, "{") || u.MaxRequests != 0 {
			return "upstream with placeholders or a request limit"
		}
		addr, err := caddy.ParseNetworkAddress(u.Dial)
		if err != nil || (addr.Network != "" && addr.Network != "tcp") || addr.PortRangeSize() != 1 {
			return "upstream " + u.Dial + " is not one TCP address"
		}
		f.ups = append(f.ups, &upstream{addr: addr.JoinHostPort(0)})
	}
	f.retries = h.LoadBalancing.Retries
	f.tryFor = time.Duration(h.LoadBalancing.TryDuration)
	f.tryPause = time.Duration(h.LoadBalancing.TryInterval)
	f.pool = pool{maxIdle: fastDefaultIdle, idleTimeout: fastDefaultIdleTimeout}
	f.pool.dialer.Timeout = time.Duration(t.DialTimeout)
	if ka := t.KeepAlive; ka != nil {
		if ka.MaxIdleConnsPerHost > 0 {
			f.pool.maxIdle = ka.MaxIdleConnsPerHost
		}
		if ka.IdleConnTimeout > 0 {
			f.pool.idleTimeout = time.Duration(ka.IdleConnTimeout)
		}
		if ka.ProbeInterval > 0 {
			f.pool.dialer.KeepAlive = time.Duration(ka.ProbeInterval)
		}
	}
	return ""
}

// Cleanup implements caddy.CleanerUpper: the idle connections close with the config.
func (f *FastProxy) Cleanup() error {
	for _, u := range f.ups {
		u.closeIdle()
	}
	return f.Handler.Cleanup()
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (f *FastProxy) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !f.fast || !plainRequest(r) {
		return f.Handler.ServeHTTP(w, r, next)
	}
	return f.serve(w, r)
}

// plainRequest says whether the fast path can forward r: no upgrade, no 100-continue, no
// CONNECT, no declared trailers, not sent in TLS early data.
func plainRequest(r *http.Request) bool {
	return r.Method != http.MethodConnect && r.Header["Upgrade"] == nil && r.Header["Expect"] == nil &&
		r.Trailer == nil && (r.TLS == nil || r.TLS.HandshakeComplete)
}

// errNoUpstream is the 503 when no endpoint is usable.
var errNoUpstream = errors.New("no upstreams available")

// serve forwards r, retrying other endpoints as configured.
func (f *FastProxy) serve(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	var st reqState
	var proxyErr error
	for tries := 0; ; tries++ {
		up := f.pick()
		if up == nil {
			if proxyErr == nil {
				proxyErr = caddyhttp.Error(http.StatusServiceUnavailable, errNoUpstream)
			}
		} else {
			err := f.try(w, r, up, &st)
			if err == nil {
				return nil
			}
			if ctxErr := r.Context().Err(); ctxErr != nil {
				return canceled(w, ctxErr, err)
			}
			var cbe clientBodyError
			var ire invalidRequestError
			if errors.As(err, &cbe) || errors.As(err, &ire) {
				return caddyhttp.Error(http.StatusBadGateway, err)
			}
			f.fail(up)
			proxyErr = err
		}
		if !f.tryAgain(r.Method == http.MethodGet, r.Context().Done(), start, tries, proxyErr, &st) {
			return statusError(proxyErr)
		}
	}
}

// canceled answers a request whose context ended: 499 (client closed request, as Caddy) when
// the client went away, 504 when a deadline (plexus_timeout) passed.
func canceled(w http.ResponseWriter, ctxErr, err error) error {
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		return caddyhttp.Error(http.StatusGatewayTimeout, fmt.Errorf("%w: %w", ctxErr, err))
	}
	w.WriteHeader(499)
	return nil
}

// statusError gives a proxy error its status: 504 for a timeout, else 502 (errors that carry a
// status keep it).
func statusError(err error) error {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return caddyhttp.Error(http.StatusGatewayTimeout, err)
	}
	return caddyhttp.Error(http.StatusBadGateway, err)
}

// tryAgain decides whether to try another endpoint after proxyErr, as Caddy's load balancing
// does: within retries and try_duration, after try_interval; an error after the connection was
// made only for GET requests, and never once the body was taken from the client. A pause ends
// early with done (the request's end) or the config's end.
func (f *FastProxy) tryAgain(isGet bool, done <-chan struct{}, start time.Time, tries int, proxyErr error, st *reqState) bool {
	if f.tryFor == 0 && f.retries == 0 {
		return false
	}
	if f.tryFor > 0 && time.Since(start) >= f.tryFor {
		return false
	}
	if f.retries > 0 && tries >= f.retries {
		return false
	}
	if st.bodyTaken() {
		return false
	}
	var de dialError
	if !errors.As(proxyErr, &de) && !errors.Is(proxyErr, errNoUpstream) && !isGet {
		return false
	}
	if f.tryPause == 0 {
		return true
	}
	t := time.NewTimer(f.tryPause)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	case <-f.ctx.Done():
		return false
	}
}

// pick chooses the next usable endpoint, nil when none is.
func (f *FastProxy) pick() *upstream {
	var now int64
	usable := func(u *upstream) bool {
		d := u.downUntil.Load()
		if d == 0 {
			return true
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		return d <= now
	}
	if f.weights == nil {
		n := uint64(len(f.ups))
		for range n {
			if u := f.ups[f.robin.Add(1)%n]; usable(u) {
				return u
			}
		}
		return nil
	}
	// Smooth weighted round-robin over the usable endpoints: each gains its weight, the
	// largest is chosen and loses the sum.
	f.mu.Lock()
	defer f.mu.Unlock()
	best, total := -1, 0
	for i, u := range f.ups {
		if !usable(u) {
			continue
		}
		f.current[i] += f.weights[i]
		total += f.weights[i]
		if best < 0 || f.current[i] > f.current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	f.current[best] -= total
	return f.ups[best]
}

// fail skips u for the fail duration.
func (f *FastProxy) fail(u *upstream) {
	if f.failFor > 0 {
		u.downUntil.Store(time.Now().Add(f.failFor).UnixNano())
	}
}

// try sends r to u and copies the response to w. A request that got no response byte on a
// reused connection goes once more on a new one when that is safe: the upstream may have
// closed the idle connection as the request went out.
func (f *FastProxy) try(w http.ResponseWriter, r *http.Request, u *upstream, st *reqState) error {
	c, reused, err := f.pool.get(r.Context(), u)
	if err != nil {
		return err
	}
	err = f.exchange(w, r, c, st)
	if err == nil || !reused {
		return err
	}
	idempotent := idempotentMethod(r.Method) || r.Header["Idempotency-Key"] != nil || r.Header["X-Idempotency-Key"] != nil
	if !resendable(idempotent, err, st) {
		return err
	}
	if c, err = f.pool.dial(r.Context(), u); err != nil {
		return err
	}
	return f.exchange(w, r, c, st)
}

// resendable says whether a request that failed with err on a reused connection may be sent
// again: no response byte came, no body byte was taken from the client, and either the
// request is idempotent (its method, or an idempotency key) or it failed on the way out (as
// net/http decides).
func resendable(idempotent bool, err error, st *reqState) bool {
	if st.bodyTaken() {
		return false
	}
	var se sendError
	if errors.As(err, &se) {
		return true
	}
	var re recvError
	return errors.As(err, &re) && re.first && idempotent
}

// idempotentMethod says whether method may be repeated without asking (RFC 9110's safe
// methods, as net/http's transport).
func idempotentMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// fieldsPool holds response header fields between requests.
var fieldsPool = sync.Pool{New: func() any { s := make([]headerField, 0, 16); return &s }}

// exchange sends r on c and copies the response to w. It returns an error only before the
// response head was written to w; after that a failure aborts the response (a truncated body
// must not look complete). c goes back to the pool or is closed.
func (f *FastProxy) exchange(w http.ResponseWriter, r *http.Request, c *upConn, st *reqState) error {
	// A client that goes away or a deadline that passes (plexus_timeout) unblocks the
	// connection's reads and writes.
	stop := context.AfterFunc(r.Context(), c.interrupt)
	reusable := false
	defer func() {
		if !stop() || !reusable {
			c.nc.Close()
			return
		}
		f.pool.put(c)
	}()

	sendErr := writeRequest(c, r, st)
	var se sendError
	if sendErr != nil && (st.bodyRead == 0 || !errors.As(sendErr, &se)) {
		return sendErr
	}
	// A send that failed part way through the body may be an upstream that answered early
	// (413, 401) and closed: its answer, when it came, is the one to pass on.
	fp := fieldsPool.Get().(*[]headerField)
	fields, h, err := readResponseHead(c.br, *fp)
	if err != nil {
		*fp = fields[:0]
		fieldsPool.Put(fp)
		if sendErr != nil {
			return sendErr
		}
		return err
	}
	if sendErr != nil {
		h.keepAlive = false
	}
	hdr := w.Header()
	copyHead(hdr, fields, &h)
	clear(fields)
	*fp = fields[:0]
	fieldsPool.Put(fp)
	if h.chunked || h.length < 0 {
		delete(hdr, "Content-Length")
	}
	w.WriteHeader(h.status)

	bc := bodyCopy{w: w, flush: h.streaming}
	switch {
	case r.Method == http.MethodHead || h.status == http.StatusNoContent || h.status == http.StatusNotModified:
	case h.chunked:
		err = bc.copyBodyChunked(c.br)
	case h.length >= 0:
		err = bc.copyBodyLength(c.br, h.length)
	default:
		h.keepAlive = false
		err = bc.copyBodyToEOF(c.br)
	}
	if err != nil {
		// The head is out: the client learns of the failure by the connection's abort, as
		// with Caddy's reverse_proxy and net/http's.
		if !bc.clientErr {
			_ = http.NewResponseController(w).Flush()
		}
		c.nc.Close()
		panic(http.ErrAbortHandler)
	}
	reusable = h.keepAlive && !c.interrupted.Load()
	return nil
}

var (
	_ caddy.Provisioner           = (*FastProxy)(nil)
	_ caddy.CleanerUpper          = (*FastProxy)(nil)
	_ caddyhttp.MiddlewareHandler = (*FastProxy)(nil)
)
