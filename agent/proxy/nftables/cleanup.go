package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
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
// every serving one, whether or not it gets new flows. A terminating pod
// that still serves (CoreDNS in its lameduck) leaves the endpoints new
// flows are balanced to at once, but its conntrack entries must stay until
// it stops serving: flushing them then would drop the replies to questions
// it already took (a reply arriving after its entry is gone is not
// un-NATed, and the client's socket, connected to the VIP, discards it:
// the 5 s DNS timeout). Traffic policies and topology narrow only new
// flows, so they do not narrow this either (kube-proxy's conntrack cleanup
// keeps the entries of every serving endpoint the same way).
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

// afterWrite flushes the conntrack entries of UDP endpoints that no longer
// get traffic: UDP has no connection end, so without this a client keeps
// sending to a removed endpoint for as long as it keeps the flow alive.
// Failures are recorded in the stats, not returned: the table is right.
func (p *Proxier) afterWrite(ctx context.Context, next proxy.Model, c proxy.Changes) {
	if p.ct == nil {
		return
	}
	changedPorts(p.prev, next, c, func(old, cur *proxy.ServicePort) {
		if old == nil || old.Protocol != corev1.ProtocolUDP {
			return
		}
		for _, ep := range lostTargets(old, cur) {
			for _, v := range old.VIPs {
				if err := p.ct.ClearUDP(ctx, netip.AddrPortFrom(v.Addr, v.Port), ep.Addr()); err != nil {
					p.stats.Errors = append(p.stats.Errors, fmt.Errorf("flush UDP conntrack of %s for %s: %w", ep, old.Key, err))
				}
			}
		}
	})
}

// ExecConntrack runs conntrack-tools in the caller's network namespace.
type ExecConntrack struct{}

var _ Conntrack = ExecConntrack{}

// ClearUDP runs `conntrack -D -p udp --orig-dst VIP --orig-port-dst PORT
// --dst-nat ENDPOINT`; exit status 1 with nothing deleted is not an error.
func (ExecConntrack) ClearUDP(ctx context.Context, frontend netip.AddrPort, endpoint netip.Addr) error {
	ctx, cancel := context.WithTimeout(ctx, conntrackTimeout)
	defer cancel()
	args := []string{"-D", "-p", "udp", "--orig-dst", frontend.Addr().String(),
		"--orig-port-dst", strconv.Itoa(int(frontend.Port())), "--dst-nat", endpoint.String()}
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
