package connectivity

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeNet is a Transport, Addresses and DNS prober in one: down lists the addresses that do not
// answer; it records what the prober set up.
type fakeNet struct {
	mu        sync.Mutex
	down      map[netip.Addr]bool
	dnsDown   bool
	listening []netip.Addr
	ensured   []netip.Addr
	ensureErr error
}

func (f *fakeNet) Ensure(want []netip.Addr, _ []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ensured = want
	return f.ensureErr
}

func (f *fakeNet) Listen(addrs []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listening = addrs
	return nil
}

func (f *fakeNet) Probe(ctx context.Context, src, dst netip.Addr) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !contains(f.listening, src) {
		return 0, errors.New("not listening on " + src.String())
	}
	if f.down[dst] {
		return 0, errLost
	}
	return time.Millisecond, nil
}

func (f *fakeNet) set(addr netip.Addr, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[addr] = down
}

type fakeDNS struct{ f *fakeNet }

func (d fakeDNS) Probe(context.Context, DNSTarget) (time.Duration, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if d.f.dnsDown {
		return 0, errors.New("no answer")
	}
	return 2 * time.Millisecond, nil
}

func TestProberRounds(t *testing.T) {
	f := &fakeNet{down: map[netip.Addr]bool{}}
	targets := Targets{
		Local: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/24")},
		Peers: []Peer{peerB, peerC},
		DNS:   &DNSTarget{Server: netip.MustParseAddrPort("10.96.0.10:53"), Name: "kubernetes.default.svc.cluster.local."},
	}
	var targetsErr error
	changes := 0
	reg := prometheus.NewRegistry()
	p := &Prober{
		Targets:   func(context.Context) (Targets, error) { return targets, targetsErr },
		Addresses: f, Transport: f, DNS: fakeDNS{f},
		FailureThreshold: 2, Interval: time.Second,
		Changed: func() { changes++ },
		Metrics: NewMetrics(reg),
	}
	ctx := context.Background()

	if !p.Round(ctx) || !p.Report().Healthy() || changes != 1 {
		t.Fatalf("first round: changed once to healthy, got %+v after %d changes", p.Report(), changes)
	}
	if f.ensured[0] != netip.MustParseAddr("10.244.0.0") || f.listening[0] != f.ensured[0] {
		t.Fatalf("probe address not set up: ensured %v, listening %v", f.ensured, f.listening)
	}
	// Only IPv4 here: the peer's IPv6 address is not probed (no IPv6 source).
	if n := testutil.CollectAndCount(p.Metrics.ProbeSeconds); n != 2 {
		t.Errorf("%d latency series, want b and c over IPv4", n)
	}
	if p.Round(ctx) {
		t.Fatal("an unchanged round announced a change")
	}

	f.set(peerC4, true)
	if p.Round(ctx) {
		t.Fatal("one failure is below the threshold of 2")
	}
	if !p.Round(ctx) || len(p.Report().Unreachable) != 1 || p.Report().Unreachable[0].Peer != "c" {
		t.Fatalf("second failure: want c unreachable, got %+v", p.Report())
	}
	if got := testutil.ToFloat64(p.Metrics.ProbeFailures.WithLabelValues("c", "IPv4")); got != 2 {
		t.Errorf("failures of c = %v, want 2", got)
	}
	f.set(peerC4, false)
	if !p.Round(ctx) || !p.Report().Healthy() {
		t.Fatalf("recovery: %+v", p.Report())
	}

	f.dnsDown = true
	p.Round(ctx)
	p.Round(ctx)
	if r := p.Report(); r.DNSError == "" || len(r.Unreachable) != 0 {
		t.Fatalf("DNS down: %+v", r)
	}
	f.dnsDown = false

	targets.Peers = []Peer{peerB}
	p.Round(ctx)
	if n := testutil.CollectAndCount(p.Metrics.ProbeSeconds); n != 1 {
		t.Errorf("%d latency series after c left, want only b's", n)
	}

	f.ensureErr = errors.New("operation not permitted")
	if !p.Round(ctx) || p.Report().Probed {
		t.Fatalf("a failed setup must report not probed: %+v", p.Report())
	}
	f.ensureErr = nil
	targets.Local = nil
	p.Round(ctx)
	if r := p.Report(); r.Probed || r.NotProbedReason != "this node has no pod CIDR yet, so no probe address" {
		t.Fatalf("no pod CIDR: %+v", r)
	}
	targetsErr = errors.New("cache not synced")
	p.Round(ctx)
	if r := p.Report(); r.Probed || r.NotProbedReason == "" {
		t.Fatalf("targets error: %+v", r)
	}
}

func TestProberTimeout(t *testing.T) {
	for _, c := range []struct{ interval, want time.Duration }{
		{0, 2 * time.Second}, {time.Second, 500 * time.Millisecond}, {time.Minute, 2 * time.Second},
	} {
		if got := (&Prober{Interval: c.interval}).timeout(); got != c.want {
			t.Errorf("interval %v: timeout %v, want %v", c.interval, got, c.want)
		}
	}
}
