package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/agent/proxy"
)

const (
	// conntrackCommand is conntrack-tools' binary.
	conntrackCommand = "conntrack"
	// conntrackTimeout bounds one conntrack run.
	conntrackTimeout = 10 * time.Second
	// udpDrainDelay is how long a terminating UDP endpoint keeps its
	// conntrack entries after it stopped getting new flows: long enough
	// for the answers to questions it took just before (CoreDNS answers
	// from its cache in microseconds, through its upstream in well under
	// this), short enough to end inside a graceful stop (CoreDNS' lameduck,
	// controllers/render), which must outlast it plus the time the agents
	// take to see the endpoint terminating.
	udpDrainDelay = 2 * time.Second
)

// changedPorts yields, for each removed or changed key, the previous and
// next service port (next is nil when removed).
func changedPorts(prev, next proxy.Model, c proxy.Changes, fn func(old, cur *proxy.ServicePort)) {
	for _, k := range c.Removed {
		fn(prev.Ports[k], nil)
	}
	for _, k := range c.Changed {
		fn(prev.Ports[k], next.Ports[k])
	}
}

// targets returns the endpoints that still answer a port's existing flows:
// every serving one, whether or not it gets new flows. Traffic policies and
// topology narrow only new flows, so they do not narrow this (kube-proxy's
// conntrack cleanup keeps the entries of every serving endpoint the same
// way).
func targets(sp *proxy.ServicePort) map[netip.AddrPort]bool {
	out := map[netip.AddrPort]bool{}
	if sp == nil {
		return out
	}
	for _, e := range sp.Endpoints {
		if e.Ready || e.Serving {
			out[e.AddrPort()] = true
		}
	}
	return out
}

// newFlowTargets returns the endpoints a port balances new flows to, from
// any of its frontends (the node's own traffic to an external one too).
func newFlowTargets(sp *proxy.ServicePort) map[netip.AddrPort]bool {
	out := map[netip.AddrPort]bool{}
	if sp == nil {
		return out
	}
	for _, v := range sp.VIPs {
		lists := [][]proxy.Endpoint{sp.EndpointsFor(v.Kind)}
		if v.Kind.External() {
			lists = append(lists, sp.FromNodeEndpoints)
		}
		for _, l := range lists {
			for _, e := range l {
				out[e.AddrPort()] = true
			}
		}
	}
	return out
}

// terminatingEndpoints returns the endpoints of a port that are terminating.
func terminatingEndpoints(sp *proxy.ServicePort) map[netip.AddrPort]bool {
	out := map[netip.AddrPort]bool{}
	if sp == nil {
		return out
	}
	for _, e := range sp.Endpoints {
		if e.Terminating {
			out[e.AddrPort()] = true
		}
	}
	return out
}

// lostTargets returns the endpoints old sent traffic to and cur does not.
func lostTargets(old, cur *proxy.ServicePort) []netip.AddrPort {
	now := targets(cur)
	var out []netip.AddrPort
	for ap := range targets(old) {
		if !now[ap] {
			out = append(out, ap)
		}
	}
	return out
}

// planUDPFlush decides, for a UDP port that changed from old to cur, whose
// conntrack entries go now and whose after udpDrainDelay (draining says
// which endpoints of the port already wait for theirs).
//
// Why not keep a terminating endpoint's entries until it stops serving, or
// flush them the moment it stops getting new flows: a UDP conntrack entry
// outlives its lookup by nf_conntrack_udp_timeout (30 s), and a client
// that opens a new socket per lookup (glibc, musl) gets a random source
// port, which now and then is one an earlier lookup used: that lookup
// meets the old entry and goes to the old entry's endpoint, whatever the
// Service's endpoints are now. Kept until the endpoint stops serving (its
// readiness failing, seconds after CoreDNS stopped answering at the end of
// its lameduck), such entries sent lookups into a pod that no longer
// answered: refused while its socket was closed, lost for 5 s once its
// network namespace was gone (measured in the lab: every lookup refused
// after a CoreDNS pod's lameduck had reused a port of a live entry).
// Flushed the moment it stops getting new flows, they drop the answers to
// questions it took just before (an answer arriving after its entry is
// gone is not un-NATed, and the client's socket, connected to the VIP,
// discards it). So a terminating endpoint, which still answers while it
// stops gracefully, keeps its entries udpDrainDelay after it stopped
// getting new flows, then loses them while it still answers: the next
// lookup from any reused port starts a new entry to a live endpoint.
//
// An endpoint that stops serving without terminating (a failed readiness
// probe, a crash) or leaves the slice loses its entries at once, as
// before; so does a terminating one that stops serving while no drain is
// pending for it.
func planUDPFlush(old, cur *proxy.ServicePort, draining func(netip.AddrPort) bool) (now, drain []netip.AddrPort) {
	oldServe, curServe := targets(old), targets(cur)
	oldNew, curNew := newFlowTargets(old), newFlowTargets(cur)
	term := terminatingEndpoints(cur)
	var eps []netip.AddrPort
	for ep := range oldServe {
		eps = append(eps, ep)
	}
	for ep := range oldNew {
		if !oldServe[ep] {
			eps = append(eps, ep)
		}
	}
	slices.SortFunc(eps, netip.AddrPort.Compare)
	for _, ep := range eps {
		switch {
		case term[ep] && oldNew[ep] && !curNew[ep]:
			drain = append(drain, ep)
		case term[ep] && draining(ep):
			// It stopped serving while its drain is pending: the drain
			// flushes it shortly; flushing now would cut the answers the
			// drain waits for.
		case oldServe[ep] && !curServe[ep]:
			now = append(now, ep)
		}
	}
	return now, drain
}

// affinityFlushes returns the families whose affinity map must be emptied:
// a session-affinity port lost an endpoint or its affinity. Entries are
// keyed by client and frontend, so emptying the family's map is the one
// deletion that cannot fail on an entry that just expired; clients of
// other affinity Services pick a fresh endpoint once (a known cost).
func affinityFlushes(prev, next proxy.Model, c proxy.Changes) []fam {
	need := map[proxy.Family]bool{}
	changedPorts(prev, next, c, func(old, cur *proxy.ServicePort) {
		if old == nil || !old.SessionAffinity {
			return
		}
		if cur == nil || !cur.SessionAffinity || cur.AffinityTimeoutSeconds != old.AffinityTimeoutSeconds || len(lostTargets(old, cur)) > 0 {
			need[old.Key.Family] = true
		}
	})
	var out []fam
	// IPv4 only. An IPv6 affinity entry holds a choice, not an endpoint:
	// each packet turns it into a slot of the frontend's current endpoints
	// map (affinityV6Rules), so it can never send traffic to a removed
	// endpoint, and entries of a port that lost its affinity are no longer
	// looked up; they expire on their own.
	for _, f := range []proxy.Family{proxy.IPv4} {
		if need[f] {
			out = append(out, famOf(f))
		}
	}
	return out
}

// drainKey names a pending drain: an endpoint of a service port.
type drainKey struct {
	port proxy.Key
	ep   netip.AddrPort
}

// afterWrite flushes the conntrack entries of UDP endpoints that no longer
// get traffic, at once or after a drain (planUDPFlush says which): UDP has
// no connection end, so without this a client keeps sending to a removed
// endpoint for as long as it keeps the flow alive (or reuses its port).
// Failures are recorded in the stats, not returned: the table is right.
// It runs with p.mu held.
func (p *Proxier) afterWrite(ctx context.Context, next proxy.Model, c proxy.Changes) {
	if p.ct == nil {
		return
	}
	changedPorts(p.prev, next, c, func(old, cur *proxy.ServicePort) {
		if old == nil || old.Protocol != corev1.ProtocolUDP {
			return
		}
		now, drain := planUDPFlush(old, cur, func(ep netip.AddrPort) bool { return p.draining[drainKey{old.Key, ep}] })
		for _, ep := range now {
			for _, err := range clearUDP(ctx, p.ct, old.VIPs, ep) {
				p.stats.Errors = append(p.stats.Errors, fmt.Errorf("flush UDP conntrack of %s for %s: %w", ep, old.Key, err))
			}
		}
		for _, ep := range drain {
			k := drainKey{old.Key, ep}
			if p.draining[k] {
				continue
			}
			if p.draining == nil {
				p.draining = map[drainKey]bool{}
			}
			p.draining[k] = true
			vips := slices.Clone(old.VIPs)
			p.after(udpDrainDelay, func() { p.finishDrain(k, vips) })
		}
	})
}

// finishDrain flushes a drained endpoint's entries, unless it gets new
// flows again by now. Errors wait for the next sync's stats.
func (p *Proxier) finishDrain(k drainKey, vips []proxy.VIP) {
	p.mu.Lock()
	delete(p.draining, k)
	back := newFlowTargets(p.prev.Ports[k.port])[k.ep]
	p.mu.Unlock()
	if back {
		return
	}
	errs := clearUDP(context.Background(), p.ct, vips, k.ep)
	if len(errs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, err := range errs {
		p.drainErrs = append(p.drainErrs, fmt.Errorf("flush UDP conntrack of drained %s for %s: %w", k.ep, k.port, err))
	}
}

// clearUDP deletes the entries of every frontend of a port DNATed to ep.
func clearUDP(ctx context.Context, ct Conntrack, vips []proxy.VIP, ep netip.AddrPort) []error {
	var errs []error
	for _, v := range vips {
		if err := ct.ClearUDP(ctx, netip.AddrPortFrom(v.Addr, v.Port), ep.Addr()); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ExecConntrack runs conntrack-tools in the caller's network namespace.
type ExecConntrack struct{}

var _ Conntrack = ExecConntrack{}

// ClearUDP runs `conntrack -D -p udp --orig-dst VIP --orig-port-dst PORT
// --reply-src ENDPOINT`; exit status 1 with nothing deleted is not an error.
//
// Why --reply-src and not --dst-nat: conntrack-tools (1.4.7, Debian's)
// ignores --dst-nat for IPv6 and deletes every entry to the VIP, those
// DNATed to the endpoints that stay too; an answer in flight on one of them
// then reaches its client un-NATed and is discarded (a 5 s DNS timeout for
// every IPv6 lookup in flight on the node at each flush, measured in the
// lab). The reply direction's source of a DNATed entry is its endpoint, in
// both families.
func (ExecConntrack) ClearUDP(ctx context.Context, frontend netip.AddrPort, endpoint netip.Addr) error {
	ctx, cancel := context.WithTimeout(ctx, conntrackTimeout)
	defer cancel()
	args := []string{"-D", "-p", "udp", "--orig-dst", frontend.Addr().String(),
		"--orig-port-dst", strconv.Itoa(int(frontend.Port())), "--reply-src", endpoint.String()}
	if frontend.Addr().Is6() {
		args = append([]string{"-f", "ipv6"}, args...)
	}
	out, err := exec.CommandContext(ctx, conntrackCommand, args...).CombinedOutput()
	if err != nil {
		// conntrack exits 1 when no entry matched ("0 flow entries have
		// been deleted"): that is success here.
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return nil
		}
		return fmt.Errorf("conntrack %v: %w: %s", args, err, out)
	}
	return nil
}

// FakeConntrack records ClearUDP calls, for tests.
type FakeConntrack struct {
	// Cleared lists "frontend->endpoint" per call, in order.
	Cleared []string
}

var _ Conntrack = &FakeConntrack{}

// ClearUDP records the call.
func (f *FakeConntrack) ClearUDP(_ context.Context, frontend netip.AddrPort, endpoint netip.Addr) error {
	f.Cleared = append(f.Cleared, frontend.String()+"->"+endpoint.String())
	return nil
}
