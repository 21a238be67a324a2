package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/ingress/translate"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rawIngress serves an Ingress for shop.test (Prefix / to the service "echo", served by h) on
// a loopback port and returns the port.
func rawIngress(t *testing.T, h http.Handler) int {
	t.Helper()
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	return loadRawIngress(t, p, h)
}

// loadRawIngress loads rawIngress's config into p.
func loadRawIngress(t *testing.T, p *Proxy, h http.Handler) int {
	t.Helper()
	addr, _ := serveHTTP(t, h)
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	httpPort := freePort(t)
	opts := translate.Options{ControllerName: controllerName, HTTPListen: listen(t, p, httpPort), StorageDir: t.TempDir(), LogLevel: "ERROR"}
	svc, es := serviceFor("echo", &backend{name: "echo", port: int32(port)})
	in := translate.Input{
		IngressClasses: []networkingv1.IngressClass{{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: networkingv1.IngressClassSpec{Controller: controllerName}}},
		Ingresses:      []networkingv1.Ingress{ingressOf("echo", 0, hostRule("shop.test", toService(networkingv1.PathTypePrefix, "/", "echo")))},
		Services:       []corev1.Service{svc},
		EndpointSlices: []discoveryv1.EndpointSlice{es},
	}
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatal(err)
	}
	return httpPort
}

// echoHandler answers with the request as the upstream saw it: method, URI, Host and the
// header names and values, sorted, then the body.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	var lines []string
	for k, vv := range r.Header {
		lines = append(lines, k+": "+strings.Join(vv, ","))
	}
	slices.Sort(lines)
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Echo", "1")
	fmt.Fprintf(w, "%s %s %s\n%s\n%s", r.Method, r.RequestURI, r.Host, strings.Join(lines, "\n"), body)
}

// TestRawPathMatchesServerPath: the same requests through the raw path and through Go's and
// Caddy's servers reach the upstream the same way and come back the same way (but for Date).
func TestRawPathMatchesServerPath(t *testing.T) {
	requests := []string{
		"GET /a/b?x=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: t\r\nAccept: */*\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: X-Hop\r\nX-Hop: 1\r\nTe: trailers\r\n\r\n",
		"POST /post HTTP/1.1\r\nHost: SHOP.test:80\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
		"PUT /chunked HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
		"DELETE /x HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 0\r\n\r\n",
	}
	answers := map[bool][]string{}
	for _, raw := range []bool{true, false} {
		SetRawPath(raw)
		port := rawIngress(t, http.HandlerFunc(echoHandler))
		before := rawRequests.Load()
		c := dialProxy(t, port)
		br := bufio.NewReader(c)
		for _, req := range requests {
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			answers[raw] = append(answers[raw], readAnswer(t, br))
		}
		served := rawRequests.Load() - before
		if raw && served != int64(len(requests)) {
			t.Errorf("raw path served %d of %d requests", served, len(requests))
		}
		if !raw && served != 0 {
			t.Errorf("raw path off but served %d requests", served)
		}
	}
	SetRawPath(true)
	for i := range requests {
		if answers[true][i] != answers[false][i] {
			t.Errorf("request %d:\nraw path:\n%s\nserver path:\n%s", i, answers[true][i], answers[false][i])
		}
	}
	if !strings.Contains(answers[true][0], "X-Forwarded-For: 127.0.0.1\n") || strings.Contains(answers[true][0], "X-Hop") {
		t.Errorf("forwarded fields not as Caddy sets them:\n%s", answers[true][0])
	}
}

// TestRawPathPipelinesAndHandsOver: requests sent back to back on one connection are answered in
// order; the first one the raw path leaves to net/http (here: an unknown host, then a head too
// large) moves the connection to the http.Server, which answers it and the ones after it.
func TestRawPathPipelinesAndHandsOver(t *testing.T) {
	port := rawIngress(t, http.HandlerFunc(echoHandler))
	c := dialProxy(t, port)
	br := bufio.NewReader(c)
	before := rawRequests.Load()
	pipelined := "GET /1 HTTP/1.1\r\nHost: shop.test\r\n\r\n" +
		"GET /2 HTTP/1.1\r\nHost: shop.test\r\n\r\n" +
		"GET /3 HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n" +
		"GET /4 HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	if _, err := io.WriteString(c, pipelined); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"200 GET /1", "200 GET /2", "404", "200 GET /4"} {
		if got := readAnswer(t, br); !strings.HasPrefix(got, want) {
			t.Errorf("got %q, want %q first", firstLine(got), want)
		}
	}
	if n := rawRequests.Load() - before; n != 2 {
		t.Errorf("raw path served %d requests, want the 2 before the hand-over", n)
	}

	big := dialProxy(t, port)
	fmt.Fprintf(big, "GET /big HTTP/1.1\r\nHost: shop.test\r\nCookie: %s\r\n\r\n", strings.Repeat("c", 2*rawReadBuffer))
	if got := readAnswer(t, bufio.NewReader(big)); !strings.HasPrefix(got, "200 GET /big") {
		t.Errorf("large head: got %q", firstLine(got))
	}
	bad := dialProxy(t, port)
	io.WriteString(bad, "GET / HTTP/1.1\r\nHost: shop.test\r\nBad Name: x\r\n\r\n")
	if got := readAnswer(t, bufio.NewReader(bad)); !strings.HasPrefix(got, "400") {
		t.Errorf("malformed head: got %q, want net/http's 400", firstLine(got))
	}
}

// TestRawPathConnectionClose: a request with Connection: close gets its answer with
// Connection: close, then the end of the connection.
func TestRawPathConnectionClose(t *testing.T) {
	port := rawIngress(t, http.HandlerFunc(echoHandler))
	c := dialProxy(t, port)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /bye HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if !resp.Close {
		t.Errorf("answer without Connection: close: %v", resp.Header)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after the answer: %v", err)
	}
}

// TestRawPathShutdown: stopping the proxy closes raw connections that wait for a request at
// once and lets a request in flight finish.
func TestRawPathShutdown(t *testing.T) {
	slow := make(chan struct{})
	p := &Proxy{}
	httpPort := loadRawIngress(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(slow)
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprint(w, "done "+r.URL.Path)
	}))
	idle := dialProxy(t, httpPort)
	idleBR := bufio.NewReader(idle)
	io.WriteString(idle, "GET /first HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	if got := readAnswer(t, idleBR); !strings.HasPrefix(got, "200") {
		t.Fatalf("first request: %q", firstLine(got))
	}
	busy := dialProxy(t, httpPort)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	<-slow
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop() }()
	if got := readAnswer(t, bufio.NewReader(busy)); !strings.HasPrefix(got, "200") || !strings.Contains(got, "done /slow") {
		t.Errorf("request in flight during the stop: %q", got)
	}
	_ = idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection not closed by the stop: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("stop: %v", err)
	}
}

// dialProxy connects to the proxy's port; the connection closes with the test.
func dialProxy(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// readAnswer reads one response and renders it as "status body" plus its sorted headers but
// Date.
func readAnswer(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	var hdr []string
	for k, vv := range resp.Header {
		if k != "Date" {
			hdr = append(hdr, k+": "+strings.Join(vv, ","))
		}
	}
	slices.Sort(hdr)
	return fmt.Sprintf("%d %s\n-- response %s", resp.StatusCode, body, strings.Join(hdr, "; "))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
