package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexus-net/plexus/ingress/translate"
)

// TestFastProxyHeaders: Host reaches the upstream as the client sent it, the X-Forwarded
// headers are set, hop-by-hop headers are removed both ways (also those named by Connection),
// Accept-Encoding passes unchanged, and the request went through the fast path (Caddy's
// reverse_proxy would add Via).
func TestFastProxyHeaders(t *testing.T) { bothPaths(t, testFastProxyHeaders) }

func testFastProxyHeaders(t *testing.T) {
	var seen atomic.Pointer[http.Request]
	addr, _ := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r)
		w.Header().Set("Connection", "X-Upstream-Hop")
		w.Header().Set("X-Upstream-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		fmt.Fprint(w, "ok")
	}))
	port := loadFast(t, fastSetup{upstreams: []string{addr}})
	req := newReq(t, http.MethodGet, port, "/a/b%2Fc?q=1&r", nil)
	req.Host = "shop.test"
	req.Header.Set("Connection", "X-Client-Hop")
	req.Header.Set("X-Client-Hop", "1")
	req.Header.Set("Proxy-Authorization", "secret")
	req.Header.Set("Te", "gzip")
	req.Header.Set("Accept-Encoding", "br, zstd")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	status, hdr, body := fastDo(t, fastClient(t), req)
	if status != 200 || body != "ok" {
		t.Fatalf("got %d %q, want 200 ok", status, body)
	}
	r := seen.Load()
	if r.Host != "shop.test" || r.RequestURI != "/a/b%2Fc?q=1&r" {
		t.Errorf("upstream saw Host %q URI %q, want shop.test /a/b%%2Fc?q=1&r", r.Host, r.RequestURI)
	}
	want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "shop.test", "Accept-Encoding": "br, zstd"}
	for k, v := range want {
		if got := strings.Join(r.Header[k], ","); got != v {
			t.Errorf("upstream saw %s %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"X-Client-Hop", "Proxy-Authorization", "Te", "Connection", "Via"} {
		if v, ok := r.Header[k]; ok {
			t.Errorf("upstream saw %s %q, want none", k, v)
		}
	}
	for _, k := range []string{"X-Upstream-Hop", "Keep-Alive", "Connection"} {
		if v, ok := hdr[k]; ok {
			t.Errorf("client got %s %q, want none", k, v)
		}
	}
	if hdr.Get("X-Kept") != "yes" {
		t.Errorf("client got X-Kept %q, want yes", hdr.Get("X-Kept"))
	}
}

// TestFastProxyBodies: request bodies with a length and chunked, response bodies with a
// length, chunked and until the upstream closes, HEAD and 204/304 without bodies, all on
// connections that stay usable.
func TestFastProxyBodies(t *testing.T) { bothPaths(t, testFastProxyBodies) }

func testFastProxyBodies(t *testing.T) {
	addr, conns := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			// The request's framing as the upstream saw it, then the body.
			fmt.Fprintf(w, "%d %v %s", r.ContentLength, r.TransferEncoding, b)
		case "/chunked":
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				http.NewResponseController(w).Flush()
			}
		case "/head":
			w.Header().Set("Content-Length", "1234")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		}
	}))
	until := serveRaw(t, func(c net.Conn, br *bufio.Reader) {
		readRequestHead(br)
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
	})
	port := loadFast(t, fastSetup{upstreams: []string{addr}})
	cl := fastClient(t)
	for _, tc := range []struct {
		name, method, path string
		body               io.Reader
		wantStatus         int
		wantBody           string
	}{
		{"length", http.MethodPost, "/echo", strings.NewReader("hello"), 200, "5 [] hello"},
		{"chunked request", http.MethodPost, "/echo", io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo")), 200, "-1 [chunked] hello"},
		{"empty POST", http.MethodPost, "/echo", nil, 200, "0 [] "},
		{"chunked response", http.MethodGet, "/chunked", nil, 200, "part0;part1;part2;"},
		{"HEAD", http.MethodHead, "/head", nil, 200, ""},
		{"204", http.MethodGet, "/204", nil, 204, ""},
		{"304", http.MethodGet, "/304", nil, 304, ""},
	} {
		req := newReq(t, tc.method, port, tc.path, tc.body)
		if tc.name == "chunked request" {
			req.ContentLength = -1
		}
		status, hdr, body := fastDo(t, cl, req)
		if status != tc.wantStatus || body != tc.wantBody {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, status, body, tc.wantStatus, tc.wantBody)
		}
		if tc.name == "HEAD" && hdr.Get("Content-Length") != "1234" {
			t.Errorf("HEAD: Content-Length %q, want the upstream's 1234", hdr.Get("Content-Length"))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the upstream accepted %d connections for requests one after another, want 1 (kept alive)", n)
	}

	port = loadFast(t, fastSetup{upstreams: []string{until}})
	for range 2 {
		if status, _, body := fastDo(t, cl, newReq(t, http.MethodGet, port, "/", nil)); status != 200 || body != "until the end" {
			t.Errorf("body until close: got %d %q", status, body)
		}
	}
}

// TestFastProxyStreams: an event stream reaches the client event by event, each before the
// upstream writes the next.
func TestFastProxyStreams(t *testing.T) { bothPaths(t, testFastProxyStreams) }

func testFastProxyStreams(t *testing.T) {
	next := make(chan struct{})
	addr, _ := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-time.After(5 * time.Second):
				return
			}
		}
	}))
	port := loadFast(t, fastSetup{upstreams: []string{addr}})
	resp, err := fastClient(t).Do(newReq(t, http.MethodGet, port, "/events", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: got %q, %v", i, line, err)
		}
		_, _ = br.ReadString('\n')
		next <- struct{}{} // the upstream writes the next event only now
	}
}

// TestFastProxyStaleConnection: the upstream closes a kept-alive connection after its
// response; the next request, sent on that connection, is sent again on a new one, with no
// load-balancing retry configured. After a second of idleness the closed connection is noticed
// before use, so even a POST goes through.
func TestFastProxyStaleConnection(t *testing.T) { bothPaths(t, testFastProxyStaleConnection) }

func testFastProxyStaleConnection(t *testing.T) {
	var conns atomic.Int64
	closed := make(chan struct{}, 8)
	addr := serveRaw(t, func(c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		if readRequestHead(br) == "" {
			return
		}
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.Close() // no Connection: close: the proxy keeps it
		closed <- struct{}{}
	})
	port := loadFast(t, fastSetup{upstreams: []string{addr}})
	cl := fastClient(t)
	for i := range 3 {
		if status, _, body := fastDo(t, cl, newReq(t, http.MethodGet, port, "/", nil)); status != 200 || body != "ok" {
			t.Fatalf("GET %d: got %d %q, want 200 ok", i, status, body)
		}
		<-closed
	}
	if n := conns.Load(); n < 3 {
		t.Errorf("upstream accepted %d connections, want one per request", n)
	}
	time.Sleep(fastProbeAfter + 100*time.Millisecond) // idle long enough to be probed
	if status, _, body := fastDo(t, cl, newReq(t, http.MethodPost, port, "/", nil)); status != 200 || body != "ok" {
		t.Fatalf("POST after idleness: got %d %q, want 200 ok", status, body)
	}
}

// TestFastProxyDeadEndpoint: a connection refused is retried on another endpoint, and the
// refusing endpoint is skipped for the fail duration; without retries only the request that
// found it dead fails; with no endpoint left, 502 then 503.
func TestFastProxyDeadEndpoint(t *testing.T) { bothPaths(t, testFastProxyDeadEndpoint) }

func testFastProxyDeadEndpoint(t *testing.T) {
	live, _ := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "live") }))
	cl := fastClient(t)
	statuses := func(port, n int) []int {
		var out []int
		for range n {
			s, _, _ := fastDo(t, cl, newReq(t, http.MethodGet, port, "/", nil))
			out = append(out, s)
		}
		return out
	}
	port := loadFast(t, fastSetup{upstreams: []string{deadAddr(t), live}, retries: 2, failFor: "30s"})
	for i, s := range statuses(port, 10) {
		if s != 200 {
			t.Errorf("with retries: request %d got %d, want 200", i, s)
		}
	}
	port = loadFast(t, fastSetup{upstreams: []string{deadAddr(t), live}, failFor: "30s"})
	failed := 0
	for _, s := range statuses(port, 10) {
		if s != 200 {
			failed++
		}
	}
	if failed > 1 {
		t.Errorf("without retries: %d of 10 requests failed, want at most the first to reach the dead endpoint", failed)
	}
	port = loadFast(t, fastSetup{upstreams: []string{deadAddr(t)}, failFor: "30s"})
	if got := statuses(port, 2); got[0] != 502 || got[1] != 503 {
		t.Errorf("single dead endpoint: got %v, want [502 503]", got)
	}
}

// TestFastProxyWeights: weighted round-robin sends each endpoint exactly its weight's share
// of every cycle.
func TestFastProxyWeights(t *testing.T) { bothPaths(t, testFastProxyWeights) }

func testFastProxyWeights(t *testing.T) {
	var ups []string
	for _, name := range []string{"a", "b", "c"} {
		addr, _ := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }))
		ups = append(ups, addr)
	}
	port := loadFast(t, fastSetup{upstreams: ups, weights: []int{3, 1, 2}})
	cl := fastClient(t)
	counts := map[string]int{}
	for range 2 * 6 {
		_, _, body := fastDo(t, cl, newReq(t, http.MethodGet, port, "/", nil))
		counts[body]++
	}
	var got []string
	for k, v := range counts {
		got = append(got, k+"="+strconv.Itoa(v))
	}
	sort.Strings(got)
	if strings.Join(got, " ") != "a=6 b=2 c=4" {
		t.Errorf("two cycles of weights 3,1,2 served %v, want a=6 b=2 c=4", got)
	}
}

// TestFastProxyUpgradeFallsBack: a WebSocket upgrade goes to Caddy's reverse_proxy (which adds
// Via), and the tunnel carries bytes both ways.
func TestFastProxyUpgradeFallsBack(t *testing.T) { bothPaths(t, testFastProxyUpgradeFallsBack) }

func testFastProxyUpgradeFallsBack(t *testing.T) {
	var via atomic.Value
	addr, _ := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		via.Store(r.Header.Get("Via"))
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		line, _ := rw.ReadString('\n')
		fmt.Fprint(rw, "echo "+line)
		_ = rw.Flush()
	}))
	port := loadFast(t, fastSetup{upstreams: []string{addr}})
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	fmt.Fprint(c, "hi\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo hi\n" {
		t.Fatalf("through the tunnel: got %q, %v", line, err)
	}
	if v, _ := via.Load().(string); !strings.Contains(v, "Caddy") {
		t.Errorf("upstream saw Via %q: the upgrade did not go through reverse_proxy", v)
	}
}

// TestFastProxyEarlyAnswer: an upstream that answers before reading a large request body and
// closes gets its answer through, not a 502.
func TestFastProxyEarlyAnswer(t *testing.T) { bothPaths(t, testFastProxyEarlyAnswer) }

func testFastProxyEarlyAnswer(t *testing.T) {
	addr := serveRaw(t, func(c net.Conn, br *bufio.Reader) {
		readRequestHead(br)
		fmt.Fprint(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large")
	})
	port := loadFast(t, fastSetup{upstreams: []string{addr}})
	body := strings.NewReader(strings.Repeat("x", 16<<20))
	status, _, got := fastDo(t, fastClient(t), newReq(t, http.MethodPost, port, "/upload", body))
	if status != http.StatusRequestEntityTooLarge || got != "too large" {
		t.Errorf("got %d %q, want the upstream's 413 too large", status, got)
	}
}

// TestFastProxyRefusesHeaderInjection: a header value with a line break, set by a handler
// before the proxy, is refused (502) instead of starting a header of its own upstream.
func TestFastProxyRefusesHeaderInjection(t *testing.T) {
	bothPaths(t, testFastProxyRefusesHeaderInjection)
}

func testFastProxyRefusesHeaderInjection(t *testing.T) {
	var injected atomic.Bool
	addr, _ := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Injected") != "" {
			injected.Store(true)
		}
	}))
	set := &translate.Headers{Handler: "headers", Request: &translate.HeaderOps{Set: map[string][]string{"X-Note": {"a\r\nX-Injected: 1"}}}}
	port := loadFast(t, fastSetup{upstreams: []string{addr}, before: []any{set}})
	status, _, _ := fastDo(t, fastClient(t), newReq(t, http.MethodGet, port, "/", nil))
	if status != http.StatusBadGateway || injected.Load() {
		t.Errorf("got %d, upstream saw an injected header: %v; want 502 and no injection", status, injected.Load())
	}
}
