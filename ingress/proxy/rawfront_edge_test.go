package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The edge cases of the raw path against Go's and Caddy's servers: each test runs on both
// paths and asserts what a client or backend must see on either.

// TestRawEdgeResponseFraming: the client gets one Content-Length, none beside a chunked body
// (an upstream that sent both is framed by its chunks), no field with an invalid name, and no
// line break inside a value.
func TestRawEdgeResponseFraming(t *testing.T) { bothPaths(t, testRawEdgeResponseFraming) }

func testRawEdgeResponseFraming(t *testing.T) {
	plain, _ := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	head := wireAnswer(t, loadFast(t, fastSetup{upstreams: []string{plain}}))
	if n := strings.Count(strings.ToLower(head), "\r\ncontent-length:"); n != 1 {
		t.Errorf("plain answer carries %d Content-Length fields:\n%q", n, head)
	}
	both := serveRaw(t, func(c net.Conn, br *bufio.Reader) {
		for readRequestHead(br) != "" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nX-A: a\rInjected: 1\r\nBad Name: v\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		}
	})
	got := wireAnswer(t, loadFast(t, fastSetup{upstreams: []string{both}}))
	lower := strings.ToLower(got)
	if strings.Contains(lower, "content-length") || !strings.Contains(got, "hello") {
		t.Errorf("a chunked upstream body with a length: got\n%q", got)
	}
	if strings.Contains(got, "\rInjected") || strings.Contains(got, "Bad Name") {
		t.Errorf("unsafe upstream fields passed on:\n%q", got)
	}
}

// wireAnswer sends one GET with Connection: close and returns the answer's bytes as they came.
func wireAnswer(t *testing.T, port int) string {
	t.Helper()
	c := dialProxy(t, port)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return string(b)
}

// TestRawEdgeAliasingFields: request fields with '_' or '.' in their names never reach the
// backend (Caddy drops them; CGI-style backends would read X_Forwarded_For as X-Forwarded-For).
func TestRawEdgeAliasingFields(t *testing.T) { bothPaths(t, testRawEdgeAliasingFields) }

func testRawEdgeAliasingFields(t *testing.T) {
	port := rawIngress(t, http.HandlerFunc(echoHandler))
	c := dialProxy(t, port)
	io.WriteString(c, "GET /u HTTP/1.1\r\nHost: shop.test\r\nX_Forwarded_For: 6.6.6.6\r\nX.Remote.User: admin\r\n\r\n")
	got := readAnswer(t, bufio.NewReader(c))
	if !strings.HasPrefix(got, "200") || strings.Contains(got, "6.6.6.6") || strings.Contains(got, "admin") {
		t.Errorf("the backend saw an aliasing field:\n%s", got)
	}
}

// TestRawEdgeEmptyChunkedResend: a request whose chunked body is empty, sent on a kept-alive
// upstream connection the backend closed, is not sent again (its end was taken from the
// client), and the request pipelined after it is still answered.
func TestRawEdgeEmptyChunkedResend(t *testing.T) { bothPaths(t, testRawEdgeEmptyChunkedResend) }

func testRawEdgeEmptyChunkedResend(t *testing.T) {
	var conns atomic.Int64
	up := serveRaw(t, func(c net.Conn, br *bufio.Reader) {
		n := conns.Add(1)
		for i := 0; ; i++ {
			first := readRequestHead(br)
			if first == "" {
				return
			}
			if strings.HasPrefix(first, "GET /chunked") {
				readRequestHead(br) // the last chunk and the empty trailer section
			}
			if n == 1 && i == 1 {
				return // the first connection dies with its second request
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(first), first)
		}
	})
	port := loadFast(t, fastSetup{upstreams: []string{up}})
	c := dialProxy(t, port)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /chunked/a HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if got := readAnswer(t, br); !strings.HasPrefix(got, "200") {
		t.Fatalf("first request: %q", firstLine(got))
	}
	io.WriteString(c, "GET /chunked/b HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+
		"GET /c HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	readAnswer(t, br) // whatever the failed resend gives (502 on both paths)
	if got := readAnswer(t, br); !strings.HasPrefix(got, "200 GET /c") {
		t.Errorf("the request pipelined after it: %q", firstLine(got))
	}
}

// TestRawEdgeLongDownload: with write_idle_timeout 1s, a 8 MiB download read slowly but
// steadily for longer than that completes (the deadline moves with each write).
func TestRawEdgeLongDownload(t *testing.T) { bothPaths(t, testRawEdgeLongDownload) }

func testRawEdgeLongDownload(t *testing.T) {
	const size = 8 << 20
	body := strings.Repeat("x", size)
	up, _ := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.WriteString(w, body)
	}))
	port := loadFast(t, fastSetup{upstreams: []string{up}, server: map[string]any{"write_idle_timeout": "1s"}})
	// A small receive buffer keeps the proxy's writes waiting on the client.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10) })
	}}
	c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 32<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var got int64
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %d of %d bytes in %v: %v", got, size, time.Since(start), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got != size || time.Since(start) < time.Second {
		t.Errorf("read %d of %d bytes in %v; want all, over more than the 1 s idle timeout", got, size, time.Since(start))
	}
}

// TestRawEdgeBareLineFeeds: a head with bare line feeds is answered (net/http accepts it), not
// left waiting for a CRLF that never comes.
func TestRawEdgeBareLineFeeds(t *testing.T) { bothPaths(t, testRawEdgeBareLineFeeds) }

func testRawEdgeBareLineFeeds(t *testing.T) {
	port := rawIngress(t, http.HandlerFunc(echoHandler))
	c := dialProxy(t, port)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /lf HTTP/1.1\nHost: shop.test\n\n")
	if got := readAnswer(t, bufio.NewReader(c)); !strings.HasPrefix(got, "200 GET /lf") {
		t.Errorf("bare line feeds: %q", firstLine(got))
	}
}

// TestRawEdgeDisabledIdleTimeouts: negative idle timeouts mean none (Caddy's docs), not
// deadlines in the past.
func TestRawEdgeDisabledIdleTimeouts(t *testing.T) { bothPaths(t, testRawEdgeDisabledIdleTimeouts) }

func testRawEdgeDisabledIdleTimeouts(t *testing.T) {
	up, _ := serveHTTP(t, http.HandlerFunc(echoHandler))
	port := loadFast(t, fastSetup{upstreams: []string{up}, server: map[string]any{"read_idle_timeout": "-1s", "write_idle_timeout": "-1s"}})
	c := dialProxy(t, port)
	io.WriteString(c, "POST /p HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello")
	if got := readAnswer(t, bufio.NewReader(c)); !strings.HasPrefix(got, "200 POST /p") || !strings.Contains(got, "hello") {
		t.Errorf("with idle timeouts disabled: %q", got)
	}
}
