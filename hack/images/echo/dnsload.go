package main

// The DNS load generator (echo -dnsload ADDR): an HTTP server whose GET /run sends sustained DNS
// lookups from this pod and answers with what they cost, as JSON. The lab's e2e suite and its
// benchmarks start it in pods on several nodes, run it against the kube-dns Service or a CoreDNS
// pod, and read the report.
//
// A lookup is what glibc's getaddrinfo does for a name: a fresh UDP socket (a fresh source port,
// so a fresh conntrack entry), the A and the AAAA question sent back to back from it, and both
// answers awaited for at most 5 s (resolv.conf's timeout:5) before the lookup is tried again
// (attempts:2). Two datagrams of one new flow, back to back, are what triggers the conntrack
// insertion race of the classic "DNS takes 5 s" bug; a source port reused while a stale conntrack
// entry still DNATs it to a removed endpoint is the other classic cause. Either shows up here as a
// lookup that timed out at 5 s.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

const (
	// dnsLoadTimeout is glibc's default per-attempt timeout (resolv.conf timeout:5).
	dnsLoadTimeout = 5 * time.Second
	// dnsLoadAttempts is glibc's default attempts:2.
	dnsLoadAttempts = 2
	// dnsLoadMaxDuration bounds one run, so a mistyped request cannot load a lab for hours.
	dnsLoadMaxDuration = 10 * time.Minute
)

// dnsLoadRequest is one run, from GET /run's query parameters.
type dnsLoadRequest struct {
	// Server is where the questions go, host:port (the kube-dns ClusterIP or a CoreDNS pod IP).
	Server string
	// Name is asked in every lookup; with Unique, each lookup asks "<n>-<random>.<Name>" instead,
	// a name no cache has seen.
	Name   string
	Unique bool
	// Duration is how long lookups are started.
	Duration time.Duration
	// Workers is how many lookups run at once; Rate, when > 0, caps lookups per second over all
	// workers (open loop: a lookup that stalls does not slow the others' schedule).
	Workers int
	Rate    int
	// OnlyA asks the A question alone instead of the A and AAAA pair.
	OnlyA bool
}

// dnsLoadReport is a run's result.
type dnsLoadReport struct {
	Server  string  `json:"server"`
	Seconds float64 `json:"seconds"`
	// Lookups were started and finished; Failed got no answer in any attempt; Retried needed a
	// second attempt; TimedOut is the number of attempts that hit the 5 s timeout; Slow is the
	// number of lookups that took 5 s or more in all (timeouts included).
	Lookups  int64 `json:"lookups"`
	Failed   int64 `json:"failed"`
	Retried  int64 `json:"retried"`
	TimedOut int64 `json:"timedOut"`
	Slow     int64 `json:"slow"`
	// Rcodes counts the answers' response codes (NOERROR, NXDOMAIN, ...), of each question.
	Rcodes map[string]int64 `json:"rcodes"`
	// PerSecond is Lookups / Seconds; the latencies are of whole lookups (retries included), in
	// microseconds.
	PerSecond float64 `json:"perSecond"`
	P50us     int64   `json:"p50us"`
	P99us     int64   `json:"p99us"`
	MaxUs     int64   `json:"maxUs"`
	// Errors samples the first errors of failed attempts.
	Errors []string `json:"errors,omitempty"`
	// SlowBySecond and RefusedBySecond count, by the second of the run a lookup started in, the
	// lookups that took 5 s or more and those that met a refusal (an ICMP port unreachable):
	// when the trouble happened, to line up with what the cluster did then.
	SlowBySecond    map[int]int64 `json:"slowBySecond,omitempty"`
	RefusedBySecond map[int]int64 `json:"refusedBySecond,omitempty"`
	// Attempts is the number of attempts (sockets) of the run; PortReused counts those whose
	// source port an earlier attempt of this run to the same server had used less than
	// portReuseWindow before: they meet that attempt's conntrack entry, not a new one.
	Attempts   int64 `json:"attempts"`
	PortReused int64 `json:"portReused"`
	// Troubles samples the attempts that timed out or were refused, in the order they started.
	Troubles []dnsLoadTrouble `json:"troubles,omitempty"`
}

// portReuseWindow is how long a UDP conntrack entry outlives its last packet by default
// (net.netfilter.nf_conntrack_udp_timeout): a new socket on a port used this recently meets
// the old flow's entry, with the endpoint it was DNATed to.
const portReuseWindow = 30 * time.Second

// maxTroubles bounds the sample of troubled attempts in a report.
const maxTroubles = 400

// dnsLoadTrouble is one attempt that timed out or was refused: when it started (Unix
// milliseconds), its source port, what happened, and how long before an earlier attempt of the
// run had used that port (-1: not within portReuseWindow).
type dnsLoadTrouble struct {
	StartMs         int64  `json:"startMs"`
	Port            int    `json:"port"`
	Kind            string `json:"kind"`
	PortReusedAgoMs int64  `json:"portReusedAgoMs"`
}

// portLog remembers when each source port was last used by an attempt of one run.
type portLog struct {
	mu   sync.Mutex
	last map[int]time.Time
}

// use records that an attempt starting at now uses port, and returns how long before an earlier
// attempt had used it (-1 when not within portReuseWindow).
func (l *portLog) use(port int, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, ok := l.last[port]
	l.last[port] = now
	if !ok || now.Sub(prev) >= portReuseWindow {
		return -1
	}
	return now.Sub(prev)
}

// serveDNSLoad serves /run and /healthz on addr until the process ends.
func serveDNSLoad(addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/run", func(w http.ResponseWriter, r *http.Request) {
		req, err := parseDNSLoadRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rep := runDNSLoad(r.Context(), req)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
	return http.ListenAndServe(addr, mux)
}

func parseDNSLoadRequest(r *http.Request) (dnsLoadRequest, error) {
	q := r.URL.Query()
	req := dnsLoadRequest{Server: q.Get("server"), Name: dns.Fqdn(q.Get("name")), Unique: q.Get("unique") == "true",
		OnlyA: q.Get("onlyA") == "true", Workers: 8}
	if _, _, err := net.SplitHostPort(req.Server); err != nil {
		return req, fmt.Errorf("server %q: %w", req.Server, err)
	}
	if q.Get("name") == "" {
		return req, errors.New("name is empty")
	}
	d, err := time.ParseDuration(q.Get("duration"))
	if err != nil || d <= 0 || d > dnsLoadMaxDuration {
		return req, fmt.Errorf("duration %q: want a duration up to %s", q.Get("duration"), dnsLoadMaxDuration)
	}
	req.Duration = d
	for key, dst := range map[string]*int{"workers": &req.Workers, "rate": &req.Rate} {
		if s := q.Get(key); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 100000 {
				return req, fmt.Errorf("%s %q: want 0..100000", key, s)
			}
			*dst = n
		}
	}
	if req.Workers < 1 {
		return req, errors.New("workers must be at least 1")
	}
	return req, nil
}

// dnsLoadTally gathers the workers' results.
type dnsLoadTally struct {
	lookups, failed, retried, timedOut, slow atomic.Int64
	mu                                       sync.Mutex
	latencies                                []time.Duration
	rcodes                                   map[string]int64
	errors                                   []string
	slowBySecond, refusedBySecond            map[int]int64
	attempts, portReused                     atomic.Int64
	ports                                    portLog
	troubles                                 []dnsLoadTrouble
}

// attempt records that an attempt starting at start uses port, and returns how long before an
// earlier attempt had used that port (-1: not within portReuseWindow).
func (t *dnsLoadTally) attempt(port int, start time.Time) time.Duration {
	t.attempts.Add(1)
	ago := t.ports.use(port, start)
	if ago >= 0 {
		t.portReused.Add(1)
	}
	return ago
}

// trouble records an attempt that timed out or was refused.
func (t *dnsLoadTally) trouble(start time.Time, port int, kind string, reusedAgo time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.troubles) >= maxTroubles {
		return
	}
	ago := int64(-1)
	if reusedAgo >= 0 {
		ago = reusedAgo.Milliseconds()
	}
	t.troubles = append(t.troubles, dnsLoadTrouble{StartMs: start.UnixMilli(), Port: port, Kind: kind, PortReusedAgoMs: ago})
}

func (t *dnsLoadTally) add(second int, d time.Duration, attempts int, timeouts int, refused bool, rcodes []int, err error) {
	t.lookups.Add(1)
	if attempts > 1 {
		t.retried.Add(1)
	}
	t.timedOut.Add(int64(timeouts))
	if d >= dnsLoadTimeout {
		t.slow.Add(1)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.failed.Add(1)
	}
	t.latencies = append(t.latencies, d)
	if d >= dnsLoadTimeout {
		t.slowBySecond[second]++
	}
	if refused {
		t.refusedBySecond[second]++
	}
	for _, rc := range rcodes {
		t.rcodes[dns.RcodeToString[rc]]++
	}
	if err != nil && len(t.errors) < 10 {
		t.errors = append(t.errors, err.Error())
	}
}

// runDNSLoad starts lookups for req.Duration and reports once every started lookup finished.
func runDNSLoad(ctx context.Context, req dnsLoadRequest) dnsLoadReport {
	tally := &dnsLoadTally{rcodes: map[string]int64{}, slowBySecond: map[int]int64{}, refusedBySecond: map[int]int64{},
		ports: portLog{last: map[int]time.Time{}}}
	tokens := make(chan struct{}, req.Workers)
	ctx, cancel := context.WithTimeout(ctx, req.Duration)
	defer cancel()
	go pace(ctx, req.Rate, tokens)
	var seq atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range req.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tokens {
				name := req.Name
				if req.Unique {
					name = fmt.Sprintf("%d-%08x.%s", seq.Add(1), rand.Uint32(), req.Name)
				}
				second := int(time.Since(start).Seconds())
				d, attempts, timeouts, refused, rcodes, err := lookup(tally, req.Server, name, req.OnlyA)
				tally.add(second, d, attempts, timeouts, refused, rcodes, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	rep := dnsLoadReport{Server: req.Server, Seconds: elapsed.Seconds(), Lookups: tally.lookups.Load(), Failed: tally.failed.Load(),
		Retried: tally.retried.Load(), TimedOut: tally.timedOut.Load(), Slow: tally.slow.Load(), Rcodes: tally.rcodes, Errors: tally.errors,
		SlowBySecond: tally.slowBySecond, RefusedBySecond: tally.refusedBySecond,
		Attempts: tally.attempts.Load(), PortReused: tally.portReused.Load()}
	rep.Troubles = tally.troubles
	slices.SortFunc(rep.Troubles, func(a, b dnsLoadTrouble) int { return int(a.StartMs - b.StartMs) })
	rep.PerSecond = float64(rep.Lookups) / elapsed.Seconds()
	slices.Sort(tally.latencies)
	rep.P50us = nearestRank(tally.latencies, 50).Microseconds()
	rep.P99us = nearestRank(tally.latencies, 99).Microseconds()
	if n := len(tally.latencies); n > 0 {
		rep.MaxUs = tally.latencies[n-1].Microseconds()
	}
	return rep
}

// pace hands out one token per lookup: at rate per second when rate > 0 (a token nobody takes
// in time is dropped, as a client whose lookups stall does not queue more), as fast as workers
// take them otherwise. It closes tokens when ctx ends.
func pace(ctx context.Context, rate int, tokens chan<- struct{}) {
	defer close(tokens)
	if rate <= 0 {
		for {
			select {
			case <-ctx.Done():
				return
			case tokens <- struct{}{}:
			}
		}
	}
	// Tokens go out in batches every millisecond or so: a ticker per lookup at thousands per
	// second would cost more than the lookups.
	const tick = 2 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int(now.Sub(start).Seconds() * float64(rate))
			// A pacer that was not scheduled for a while does not catch up in one burst: many
			// clients do not send in step, and a burst of hundreds of questions at once would
			// overflow CoreDNS' socket buffer, a loss the load made, not the path under test.
			if burst := max(rate/20, 1); due-sent > burst {
				sent = due - burst
			}
			for ; sent < due; sent++ {
				select {
				case tokens <- struct{}{}:
				default: // every worker is busy: this lookup is not made
				}
			}
		}
	}
}

// lookup makes one glibc-style lookup of name through server and returns its whole duration,
// the attempts it took, how many attempts timed out, whether one was refused (ICMP port
// unreachable), the answers' rcodes, and the last attempt's error when no attempt got every
// answer. Each attempt's source port, and each attempt that timed out or was refused, goes to
// tally.
func lookup(tally *dnsLoadTally, server, name string, onlyA bool) (time.Duration, int, int, bool, []int, error) {
	start := time.Now()
	timeouts, refused := 0, false
	var err error
	for attempt := 1; attempt <= dnsLoadAttempts; attempt++ {
		var rcodes []int
		at := time.Now()
		var port int
		port, rcodes, err = lookupAttempt(server, name, onlyA)
		reusedAgo := time.Duration(-1)
		if port != 0 {
			reusedAgo = tally.attempt(port, at)
		}
		if err == nil {
			return time.Since(start), attempt, timeouts, refused, rcodes, nil
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			timeouts++
			tally.trouble(at, port, "timeout", reusedAgo)
		case errors.Is(err, syscall.ECONNREFUSED):
			refused = true
			tally.trouble(at, port, "refused", reusedAgo)
			fallthrough
		default:
			if attempt < dnsLoadAttempts {
				// A refused or unreachable server answers at once; glibc moves on too, but
				// pausing keeps a broken path from spinning the worker.
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	return time.Since(start), dnsLoadAttempts, timeouts, refused, nil, err
}

// lookupAttempt sends the questions from one new socket and waits for all their answers; it
// returns the socket's source port (0 when it got none) and the answers' rcodes.
func lookupAttempt(server, name string, onlyA bool) (int, []int, error) {
	conn, err := net.Dial("udp", server)
	if err != nil {
		return 0, nil, fmt.Errorf("socket to %s: %w", server, err)
	}
	defer conn.Close()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	_ = conn.SetDeadline(time.Now().Add(dnsLoadTimeout))
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA}
	if onlyA {
		qtypes = qtypes[:1]
	}
	pending := map[uint16]bool{}
	for _, qt := range qtypes {
		m := new(dns.Msg)
		m.SetQuestion(name, qt)
		for pending[m.Id] { // the pair must be told apart by ID
			m.Id = dns.Id()
		}
		pending[m.Id] = true
		buf, err := m.Pack()
		if err != nil {
			return port, nil, fmt.Errorf("pack %s: %w", name, err)
		}
		if _, err := conn.Write(buf); err != nil {
			return port, nil, fmt.Errorf("send %s to %s: %w", name, server, err)
		}
	}
	var rcodes []int
	buf := make([]byte, 4096)
	for len(pending) > 0 {
		n, err := conn.Read(buf)
		if err != nil {
			return port, nil, fmt.Errorf("answer for %s from %s: %w", name, server, err)
		}
		var r dns.Msg
		if r.Unpack(buf[:n]) != nil || !pending[r.Id] {
			continue // not ours, or garbled: keep waiting, as glibc does
		}
		delete(pending, r.Id)
		rcodes = append(rcodes, r.Rcode)
	}
	return port, rcodes, nil
}

// nearestRank is the p-th percentile of sorted ds (nearest-rank method); 0 when ds is empty.
func nearestRank(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := (p*len(ds)+99)/100 - 1
	return ds[max(0, min(i, len(ds)-1))]
}
