package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/plexus-net/plexus/ingress/translate"
)

// Why a front: Caddy replaces a config by starting new http.Servers and shutting the old ones
// down, and Go's http.Server.Shutdown loses requests that race it: it closes keep-alive
// connections it sees idle while the client is already sending on them, and it drops a request
// it reads from a connection accepted just before the shutdown began (the shuttingDown check
// after readRequest in net/http). Handing sockets over (SO_REUSEPORT, fd passing) cannot help
// with either. So the sockets, the TLS handshakes, the http.Server and every client connection
// belong to a front that lives as long as the process; a config change only swaps the
// http.Handler and the tls.Config the front uses. A request is served by the config that was
// current when it arrived; Caddy's servers listen on the idle "plexus" network and never accept.

// frontState is what a front serves with: one Caddy server of one config.
type frontState struct {
	handler http.Handler
	tls     *tls.Config // nil: plain HTTP
	raw     *rawTable   // nil: every connection goes to the http.Server (rawfront.go)
	alive   *atomic.Bool
}

// front is one listening socket and the persistent server behind it.
type front struct {
	addr  string
	ln    net.Listener
	srv   *http.Server
	state atomic.Pointer[frontState]
	done  chan struct{} // the http.Server stopped

	// handoff carries connections from the accept loop and the raw path to the http.Server.
	handoff  chan net.Conn
	accepted chan struct{} // the accept loop ended
	stopping chan struct{} // closed when the front begins to shut down
	stopOnce sync.Once

	rawMu      sync.Mutex
	rawConns   map[*rawConn]struct{}
	rawDone    chan struct{} // closed when stopping and no raw connection is left
	rawDrained sync.Once
}

// fronts are the process's fronts by listen address (as passed to Proxy.Listen).
var (
	frontsMu sync.Mutex
	fronts   = map[string]*front{}
)

// newFront listens on addr and serves it until close. With h2c, plain-text connections may also
// speak HTTP/2 with prior knowledge (the Gateways' fronts; the Ingress fronts stay HTTP/1.1 in
// clear text, as they always were).
func newFront(addr string, h2c bool) (*front, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	f := &front{addr: addr, ln: ln, done: make(chan struct{}), handoff: make(chan net.Conn),
		accepted: make(chan struct{}), stopping: make(chan struct{}), rawConns: map[*rawConn]struct{}{},
		rawDone: make(chan struct{})}
	f.srv = &http.Server{
		Handler:           f,
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          log.New(handshakeFilter{}, "", 0),
	}
	f.srv.Protocols = new(http.Protocols)
	f.srv.Protocols.SetHTTP1(true)
	f.srv.Protocols.SetHTTP2(true)
	f.srv.Protocols.SetUnencryptedHTTP2(h2c)
	go func() {
		defer close(f.done)
		_ = f.srv.Serve(&frontListener{f: f})
	}()
	go f.acceptLoop()
	return f, nil
}

// ServeHTTP hands the request to the current config's server.
func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := f.state.Load()
	if st == nil || st.handler == nil {
		http.Error(w, "503 no configuration loaded", http.StatusServiceUnavailable)
		return
	}
	if l := accessLog.Load(); l != nil {
		l.serveLogged(st.handler, w, r)
		return
	}
	st.handler.ServeHTTP(w, r)
}

// getConfigForClient picks the TLS config of the config current at the handshake.
func (f *front) getConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	st := f.state.Load()
	if st == nil || st.tls == nil {
		return nil, fmt.Errorf("%s serves no TLS in the running config", f.addr)
	}
	if st.tls.GetConfigForClient != nil {
		return st.tls.GetConfigForClient(hello)
	}
	return st.tls, nil
}

// shutdown stops accepting and waits up to ctx for requests in flight, on the raw path and in
// the http.Server.
func (f *front) shutdown(ctx context.Context) error {
	_ = f.ln.Close()
	<-f.accepted
	rawErr := f.shutdownRaw(ctx)
	err := f.srv.Shutdown(ctx)
	<-f.done
	if err == nil {
		err = rawErr
	}
	return err
}

// tlsServer wraps nc in TLS with the config current at the handshake.
func tlsServer(f *front, nc net.Conn) net.Conn {
	return tls.Server(nc, &tls.Config{GetConfigForClient: f.getConfigForClient})
}

// frontListener is what the front's http.Server accepts from: the connections the accept loop
// and the raw path hand over (rawfront.go).
type frontListener struct {
	f *front
}

func (l *frontListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.f.handoff:
		return c, nil
	case <-l.f.stopping:
		return nil, net.ErrClosed
	}
}

func (l *frontListener) Close() error {
	l.f.stopOnce.Do(func() { close(l.f.stopping) })
	if err := l.f.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

func (l *frontListener) Addr() net.Addr { return l.f.ln.Addr() }

// handshakeFilter drops the http.Server's per-connection TLS handshake noise (scanners, clients
// that hang up) and passes everything else to the standard logger.
type handshakeFilter struct{}

func (handshakeFilter) Write(p []byte) (int, error) {
	if !strings.Contains(string(p), "TLS handshake error") {
		log.Print(string(p))
	}
	return len(p), nil
}

// idleListener is what Caddy's own servers listen on: it accepts nothing until closed.
type idleListener struct {
	addr   net.Addr
	closed chan struct{}
	once   sync.Once
}

func (l *idleListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return l.addr }

// listenIdle is the Caddy listener function of the front network.
func listenIdle(_ context.Context, _, host, port string, _ uint, _ net.ListenConfig) (any, error) {
	addr, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, port))
	if err != nil {
		addr = &net.TCPAddr{}
	}
	return &idleListener{addr: addr, closed: make(chan struct{})}, nil
}

// FrontApp is the Caddy app (plexus_front) that points the fronts at its config's servers when
// the config starts, and back at the previous config if this one fails to start.
type FrontApp struct {
	http  *caddyhttp.App
	ctx   caddy.Context
	alive atomic.Bool
	swaps []frontSwap
}

// frontSwap remembers what a front served before this config took it.
type frontSwap struct {
	f          *front
	mine, prev *frontState
}

// CaddyModule registers the app.
func (*FrontApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: translate.FrontApp, New: func() caddy.Module { return new(FrontApp) }}
}

// Provision finds the config's http app.
func (a *FrontApp) Provision(ctx caddy.Context) error {
	app, err := ctx.App("http")
	if err != nil {
		return fmt.Errorf("plexus_front: http app: %w", err)
	}
	a.http = app.(*caddyhttp.App)
	a.ctx = ctx
	return nil
}

// Start serves every front from this config's server that listens on its address; a front no
// server listens on closes new connections.
func (a *FrontApp) Start() error {
	byAddr := map[string]*frontState{}
	for _, srv := range a.http.Servers {
		for _, l := range srv.Listen {
			addr, ok := strings.CutPrefix(l, translate.FrontNetwork+"/")
			if !ok {
				continue
			}
			st := &frontState{handler: srv, alive: &a.alive}
			if len(srv.TLSConnPolicies) > 0 {
				st.tls = srv.TLSConnPolicies.TLSConfig(a.ctx)
			} else if !rawPathOff.Load() {
				st.raw = newRawTable(srv)
			}
			byAddr[addr] = st
		}
	}
	a.alive.Store(true)
	frontsMu.Lock()
	defer frontsMu.Unlock()
	// An address without a front (its socket could not be opened: Proxy.Load reports it) is not
	// served; the other servers are.
	for addr, f := range fronts {
		mine := byAddr[addr]
		if mine == nil {
			mine = &frontState{alive: &a.alive}
		}
		a.swaps = append(a.swaps, frontSwap{f: f, mine: mine, prev: f.state.Swap(mine)})
	}
	return nil
}

// Stop gives each front back to the previous config when this one still serves it and the
// previous one still runs (this config failed to start); otherwise the next config has taken
// over already, or the proxy stops.
func (a *FrontApp) Stop() error {
	a.alive.Store(false)
	for _, s := range a.swaps {
		if s.prev != nil && s.prev.alive != nil && s.prev.alive.Load() {
			s.f.state.CompareAndSwap(s.mine, s.prev)
		} else {
			s.f.state.CompareAndSwap(s.mine, nil)
		}
	}
	return nil
}

func init() {
	caddy.RegisterModule(new(FrontApp))
	caddy.RegisterNetwork(translate.FrontNetwork, listenIdle)
}

var (
	_ caddy.App         = (*FrontApp)(nil)
	_ caddy.Provisioner = (*FrontApp)(nil)
)
