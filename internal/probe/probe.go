// Package probe is what `plexusctl check` runs inside its short-lived pods (as `plexus-agent probe`,
// so a cluster needs no image but the agent's): a server answering TCP and UDP on one port, and a
// client that probes a list of targets in parallel and prints one JSON line of results.
package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Kind is how a target is probed.
type Kind string

// Probe kinds.
const (
	// TCP connects and reads the server's greeting line.
	TCP Kind = "tcp"
	// UDP sends a datagram and waits for the echo.
	UDP Kind = "udp"
	// DNS resolves a name with the pod's resolver (its /etc/resolv.conf: the cluster DNS).
	DNS Kind = "dns"
	// Connect only opens a TCP connection (a server that is not ours, e.g. the API server).
	Connect Kind = "connect"
	// HTTP GETs / from Address with the Host header Host and reads the server's greeting (the
	// way through an ingress controller to a probe server's HTTP port).
	HTTP Kind = "http"
)

// Target is one probe.
type Target struct {
	// Check is the matrix column the probe counts in ("pod→pod", "pod→DNS").
	Check string `json:"check"`
	// Name tells the probe apart within its check ("node-b 10.244.1.5").
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Address is host:port, or the name to resolve for DNS.
	Address string `json:"address"`
	// Host is the HTTP Host header of an HTTP probe (the ingress rule's host).
	Host string `json:"host,omitempty"`
	// ExpectDenied marks a probe that must fail (a NetworkPolicy isolates the target).
	ExpectDenied bool `json:"expectDenied,omitempty"`
}

// Result is one probe's outcome.
type Result struct {
	Target
	OK bool `json:"ok"`
	// Latency is the probe's duration (connect + answer) in microseconds.
	LatencyMicros int64  `json:"latencyMicros"`
	Error         string `json:"error,omitempty"`
	// Answer is what the server said (its hostname), or the addresses a name resolved to.
	Answer string `json:"answer,omitempty"`
}

// Passed reports whether the outcome is the expected one.
func (r Result) Passed() bool { return r.OK != r.ExpectDenied }

// Greeting is what the server sends on TCP and echoes on UDP, followed by its hostname.
const Greeting = "plexus-probe"

// Serve answers on addr (":8080"): TCP connections get "plexus-probe <hostname>\n", UDP datagrams
// are answered with the same line. It returns when ctx ends.
func Serve(ctx context.Context, addr, hostname string) error {
	line := []byte(Greeting + " " + hostname + "\n")
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("listen udp %s: %w", addr, err)
	}
	go func() {
		<-ctx.Done()
		_ = ln.Close()
		_ = pc.Close()
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(line, from)
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		go func() {
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Write(line)
		}()
	}
}

// ServeHTTP answers every HTTP request on addr (":8081") with "plexus-probe <hostname>\n", until
// ctx ends: the backend an HTTP probe through an ingress controller reaches.
func ServeHTTP(ctx context.Context, addr, hostname string) error {
	line := Greeting + " " + hostname + "\n"
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 5 * time.Second,
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, line) }),
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http %s: %w", addr, err)
	}
	return nil
}

// Run probes every target in parallel, each within timeout, and returns the results in order.
func Run(ctx context.Context, targets []Target, timeout time.Duration) []Result {
	out := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = one(ctx, t, timeout)
		}()
	}
	wg.Wait()
	return out
}

func one(ctx context.Context, t Target, timeout time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	answer, err := probe(ctx, t)
	r := Result{Target: t, OK: err == nil, LatencyMicros: time.Since(start).Microseconds(), Answer: answer}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func probe(ctx context.Context, t Target) (string, error) {
	var d net.Dialer
	switch t.Kind {
	case DNS:
		addrs, err := net.DefaultResolver.LookupHost(ctx, t.Address)
		return strings.Join(addrs, ","), err
	case Connect:
		c, err := d.DialContext(ctx, "tcp", t.Address)
		if err != nil {
			return "", err
		}
		return "", c.Close()
	case HTTP:
		return probeHTTP(ctx, t)
	case TCP, UDP:
		c, err := d.DialContext(ctx, string(t.Kind), t.Address)
		if err != nil {
			return "", err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		if t.Kind == UDP {
			if _, err := c.Write([]byte("probe\n")); err != nil {
				return "", err
			}
		}
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil && !(errors.Is(err, io.EOF) && n > 0) {
			return "", err
		}
		line := strings.TrimSpace(string(buf[:n]))
		host, ok := strings.CutPrefix(line, Greeting+" ")
		if !ok {
			return "", fmt.Errorf("unexpected answer %q", line)
		}
		return host, nil
	}
	return "", fmt.Errorf("unknown probe kind %q", t.Kind)
}

// probeHTTP GETs / from t.Address with Host t.Host and wants a 200 with the greeting.
func probeHTTP(ctx context.Context, t Target) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.Address+"/", nil)
	if err != nil {
		return "", err
	}
	if t.Host != "" {
		req.Host = t.Host
	}
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %q", resp.StatusCode, line)
	}
	host, ok := strings.CutPrefix(line, Greeting+" ")
	if !ok {
		return "", fmt.Errorf("unexpected answer %q", line)
	}
	return host, nil
}

// Encode writes results as one JSON line, the client pod's only output.
func Encode(w io.Writer, rs []Result) error { return json.NewEncoder(w).Encode(rs) }

// Decode reads what Encode wrote (the last JSON line of a pod's log).
func Decode(log string) ([]Result, error) {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	var rs []Result
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rs); err != nil {
		return nil, fmt.Errorf("probe output: %w", err)
	}
	return rs, nil
}
