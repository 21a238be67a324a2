package probe

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// freePort returns a loopback address whose port is free for both TCP and UDP: the probe server
// listens on both, and a port only checked for TCP may be some other test's UDP socket (Serve
// then fails and closes its TCP listener mid-test).
func freePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		_ = l.Close()
		if err == nil {
			_ = pc.Close()
			return addr
		}
	}
	t.Fatal("no loopback port free for both TCP and UDP in 100 tries")
	return ""
}

func TestServeAndRun(t *testing.T) {
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, addr, "node-a") }()
	closed := freePort(t)
	targets := []Target{
		{Name: "tcp", Kind: TCP, Address: addr},
		{Name: "udp", Kind: UDP, Address: addr},
		{Name: "connect", Kind: Connect, Address: addr},
		{Name: "dns", Kind: DNS, Address: "localhost"},
		{Name: "closed", Kind: TCP, Address: closed, ExpectDenied: true},
		{Name: "closed but expected", Kind: TCP, Address: closed},
	}
	var rs []Result
	deadline := time.Now().Add(5 * time.Second)
	for {
		rs = Run(context.Background(), targets, time.Second)
		// Serve opens its TCP listener before its UDP socket: the server is up when both answer.
		if rs[0].OK && rs[1].OK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the server is still starting
	}
	select {
	case err := <-errc:
		t.Fatalf("the probe server stopped during the probes: %v", err)
	default:
	}
	for i, want := range []bool{true, true, true, true, true, false} {
		if rs[i].Passed() != want {
			t.Errorf("%s: passed=%v, want %v (%+v)", rs[i].Name, rs[i].Passed(), want, rs[i])
		}
	}
	if rs[0].Answer != "node-a" || rs[1].Answer != "node-a" {
		t.Errorf("the server's hostname is the answer: %+v %+v", rs[0], rs[1])
	}
	var buf bytes.Buffer
	if err := Encode(&buf, rs); err != nil {
		t.Fatal(err)
	}
	back, err := Decode("some log line\n" + buf.String())
	if err != nil || len(back) != len(rs) || back[0].Answer != "node-a" {
		t.Fatalf("decode: %v %+v", err, back)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// TestHTTPProbe: an HTTP probe reads the greeting with its Host header sent, and fails on a
// status other than 200 (an ingress' 404 or 503) or a server that is not a probe server.
func TestHTTPProbe(t *testing.T) {
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = ServeHTTP(ctx, addr, "node-b") }()
	var hosts []string
	var mu sync.Mutex
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		if r.Host != "a.check.invalid" {
			http.Error(w, "no route", http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, "not a probe\n")
	}))
	defer gate.Close()
	var r []Result
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Only the last round's requests count: a round is repeated while the server starts.
		mu.Lock()
		hosts = nil
		mu.Unlock()
		r = Run(ctx, []Target{
			{Name: "direct", Kind: HTTP, Address: addr, Host: "x"},
			{Name: "404", Kind: HTTP, Address: gate.Listener.Addr().String(), Host: "b.check.invalid"},
			{Name: "stranger", Kind: HTTP, Address: gate.Listener.Addr().String(), Host: "a.check.invalid"},
		}, time.Second)
		if r[0].OK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !r[0].OK || r[0].Answer != "node-b" {
		t.Errorf("direct: %+v", r[0])
	}
	if r[1].OK || !strings.Contains(r[1].Error, "HTTP 404") || r[2].OK {
		t.Errorf("404 and stranger must fail: %+v %+v", r[1], r[2])
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(hosts, ",") != "b.check.invalid,a.check.invalid" && strings.Join(hosts, ",") != "a.check.invalid,b.check.invalid" {
		t.Errorf("Host headers sent: %v", hosts)
	}
}
