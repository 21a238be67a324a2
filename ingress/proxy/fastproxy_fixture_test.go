package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexus-net/plexus/ingress/translate"
)

// fastSetup is one plexus_proxy route in front of some upstreams, served on a loopback port.
type fastSetup struct {
	upstreams []string
	weights   []int
	retries   int
	// failFor is the passive health check's fail duration, "" for none.
	failFor string
	// before are handlers that run before the proxy.
	before []any
	// server are settings of the Caddy server added to its JSON (e.g. "write_idle_timeout").
	server map[string]any
}

// loadFast runs s as the proxy's only route and returns the port it listens on.
func loadFast(t *testing.T, s fastSetup) int {
	t.Helper()
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	port := freePort(t)
	addr := listen(t, p, port)
	ups := make([]translate.Upstream, len(s.upstreams))
	for i, u := range s.upstreams {
		ups[i] = translate.Upstream{Dial: u}
	}
	policy := translate.SelectionPolicy{Policy: "round_robin"}
	if s.weights != nil {
		policy = translate.SelectionPolicy{Policy: "weighted_round_robin", Weights: s.weights}
	}
	rp := &translate.ReverseProxy{
		Handler:       translate.FastProxyHandler,
		Upstreams:     ups,
		LoadBalancing: &translate.LoadBalancing{SelectionPolicy: policy, Retries: s.retries},
		Transport:     &translate.Transport{Protocol: "http", DialTimeout: "2s", KeepAlive: &translate.KeepAlive{MaxIdleConnsPerHost: 64}, Compression: new(false)},
	}
	if s.failFor != "" {
		rp.HealthChecks = &translate.HealthChecks{Passive: translate.PassiveHealthCheck{FailDuration: s.failFor, MaxFails: 1}}
	}
	srv := &translate.Server{
		Listen:         []string{addr},
		Routes:         []translate.Route{{Handle: append(append([]any{}, s.before...), rp), Terminal: true}},
		AutomaticHTTPS: translate.AutomaticHTTPS{Disable: true},
		Protocols:      []string{"h1"},
	}
	if len(s.before) == 0 {
		// The shape of an Ingress host: its path table invokes the proxy's named route, which
		// the raw path serves (unless it is off).
		srv.Routes = []translate.Route{{
			Match:  []translate.MatcherSet{{Host: []string{"127.0.0.1", "shop.test", "ws.test"}}},
			Handle: []any{translate.PathTableHandler{Handler: translate.PathTableModule, Prefix: []translate.PrefixEntry{{Path: "", Route: "fast"}}}},
		}}
		srv.NamedRoutes = map[string]*translate.Route{"fast": {Handle: []any{rp}, Terminal: true}}
	}
	cfg := translate.Config{
		Admin:   translate.Admin{Disabled: true},
		Logging: &translate.Logging{Logs: map[string]translate.Log{"default": {Level: "ERROR"}}},
		Apps: translate.Apps{
			HTTP:  translate.HTTPApp{Servers: map[string]*translate.Server{"fast": srv}},
			Front: &translate.FrontAppConfig{},
		},
	}
	cfgJSON, err := cfg.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.server) > 0 {
		cfgJSON = withServerSettings(t, cfgJSON, "fast", s.server)
	}
	if _, err := p.LoadJSON(cfgJSON); err != nil {
		t.Fatalf("load: %v", err)
	}
	return port
}

// withServerSettings adds settings to server name of a Caddy JSON config.
func withServerSettings(t *testing.T, cfgJSON []byte, name string, settings map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(cfgJSON, &m); err != nil {
		t.Fatal(err)
	}
	srv := m["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)[name].(map[string]any)
	maps.Copy(srv, settings)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bothPaths runs test on the raw path and, with it off, on Go's and Caddy's servers: the
// proxy's behaviour must be the same on both.
func bothPaths(t *testing.T, test func(t *testing.T)) {
	t.Run("raw", test)
	t.Run("server", func(t *testing.T) {
		SetRawPath(false)
		defer SetRawPath(true)
		test(t)
	})
}

// serveHTTP runs h on a loopback listener and returns its host:port; conns counts the
// connections it accepted.
func serveHTTP(t *testing.T, h http.Handler) (addr string, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	srv := &http.Server{Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String(), conns
}

// serveRaw answers each connection with handle, which reads requests from br and writes raw
// responses to c; it returns the listener's host:port.
func serveRaw(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return l.Addr().String()
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// fastClient sends requests to the proxy's port over keep-alive connections.
func fastClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// fastDo sends req and returns the status, the headers and the body.
func fastDo(t *testing.T, c *http.Client, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func newReq(t *testing.T, method string, port int, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// readRequestHead reads one request head from br, returning its first line ("" at EOF).
func readRequestHead(br *bufio.Reader) string {
	first := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return ""
		}
		if first == "" {
			first = strings.TrimSpace(line)
		}
		if line == "\r\n" {
			return first
		}
	}
}
