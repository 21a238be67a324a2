package connectivity

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// DefaultInterval is the time between two probe rounds.
const DefaultInterval = 5 * time.Second

// maxProbeTimeout bounds how long a probe waits for its answer (less when the interval is short).
const maxProbeTimeout = 2 * time.Second

// Prober is the continuous connectivity check of one node: every Interval one round reads the
// targets, puts the probe addresses on the node, probes every peer address and DNS in parallel,
// and feeds the Tracker; when the Report changes it calls Changed. Apply (for the status
// reporter, from another goroutine) writes the latest Report into a status.
type Prober struct {
	// Targets returns what to probe (from the API objects the agent watches).
	Targets func(ctx context.Context) (Targets, error)
	// Addresses puts the probe addresses on the node; Transport probes and answers; DNS asks
	// the cluster DNS (nil: DNS is not probed).
	Addresses Addresses
	Transport Transport
	DNS       interface {
		Probe(ctx context.Context, t DNSTarget) (time.Duration, error)
	}
	// Interval is the time between rounds (DefaultInterval if 0); FailureThreshold the failed
	// probes in a row that make a peer unreachable (DefaultFailureThreshold if 0).
	Interval         time.Duration
	FailureThreshold int
	// Changed is called (from the prober's goroutine) after a round that changed the Report.
	Changed func()
	// Metrics may be nil.
	Metrics *Metrics

	mu      sync.Mutex
	tracker Tracker
	report  Report
	known   []Peer
}

func (p *Prober) interval() time.Duration {
	if p.Interval <= 0 {
		return DefaultInterval
	}
	return p.Interval
}

// timeout is the probes' deadline: half the interval, at most maxProbeTimeout.
func (p *Prober) timeout() time.Duration { return min(p.interval()/2, maxProbeTimeout) }

// Report returns the latest Report.
func (p *Prober) Report() Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.report
}

// Apply writes the latest Report into s (see the package function Apply); it is the agent
// status reporter's hook. A nil Prober (probes off) changes nothing.
func (p *Prober) Apply(s *v1.NodeNetworkStatus) {
	if p == nil {
		return
	}
	Apply(s, p.Report())
}

// Run runs a round at once and then every Interval until ctx ends.
func (p *Prober) Run(ctx context.Context) {
	t := time.NewTicker(p.interval())
	defer t.Stop()
	for {
		p.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round runs one round and reports whether the Report changed (Changed is called then too).
func (p *Prober) Round(ctx context.Context) bool {
	p.tracker.Threshold = p.FailureThreshold
	t, err := p.Targets(ctx)
	switch {
	case err != nil:
		p.tracker.NotProbed(fmt.Sprintf("cannot read what to probe: %v", err))
	case len(t.Local) == 0:
		p.tracker.NotProbed("this node has no pod CIDR yet, so no probe address")
	default:
		err = p.Addresses.Ensure(t.LocalAddrs(), t.ClusterPodCIDRs)
		if err == nil {
			err = p.Transport.Listen(t.LocalAddrs())
		}
		if err != nil {
			p.tracker.NotProbed(fmt.Sprintf("cannot set up the probe addresses %v: %v", t.LocalAddrs(), err))
			break
		}
		results, dns := p.probe(ctx, t)
		p.tracker.Round(t.LocalAddrs(), t.Peers, results, dns)
		p.forgetGone(t.Peers)
	}
	next := p.tracker.Report()
	p.mu.Lock()
	changed := !next.Equal(p.report)
	p.report = next
	p.mu.Unlock()
	if changed {
		log.FromContext(ctx).Info("Connectivity changed", "healthy", next.Healthy(), "unreachable", unreachableNames(next),
			"dnsError", next.DNSError, "notProbed", next.NotProbedReason)
		if p.Changed != nil {
			p.Changed()
		}
	}
	return changed
}

// probe probes every peer address of a family this node has, and DNS, in parallel.
func (p *Prober) probe(ctx context.Context, t Targets) ([]Result, *DNSResult) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	src := map[bool]netip.Addr{} // by Is4
	for _, a := range t.LocalAddrs() {
		src[a.Is4()] = a
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []Result
	)
	for _, peer := range t.Peers {
		for _, dst := range peer.Addrs {
			s, ok := src[dst.Is4()]
			if !ok {
				continue // no probe address of this family here: pods of this node have none either
			}
			wg.Go(func() {
				rtt, err := p.Transport.Probe(ctx, s, dst)
				r := Result{Peer: peer.Name, Addr: dst, RTT: rtt, Err: err}
				p.Metrics.observe(r)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			})
		}
	}
	var dns *DNSResult
	if t.DNS != nil && p.DNS != nil {
		wg.Go(func() {
			rtt, err := p.DNS.Probe(ctx, *t.DNS)
			dns = &DNSResult{RTT: rtt, Err: err}
			p.Metrics.observeDNS(*dns)
		})
	}
	wg.Wait()
	return results, dns
}

// forgetGone removes the metrics of peers that are no longer probed.
func (p *Prober) forgetGone(peers []Peer) {
	for _, old := range p.known {
		if !slices.ContainsFunc(peers, func(n Peer) bool { return n.Name == old.Name }) {
			p.Metrics.forget(old.Name)
		}
	}
	p.known = slices.Clone(peers)
}

func unreachableNames(r Report) []string {
	out := make([]string, 0, len(r.Unreachable))
	for _, u := range r.Unreachable {
		out = append(out, u.Peer)
	}
	return out
}
