package nftables

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

// drainWorld is a cluster-policy UDP Service (kube-dns' shape) with two
// endpoints, each getting new flows on this node, and a Proxier whose drain
// timers the test runs by hand.
type drainWorld struct {
	w      *world
	slice  *discoveryv1.EndpointSlice
	p      *Proxier
	ct     *FakeConntrack
	timers []func()
	delays []time.Duration
}

func newDrainWorld(t *testing.T) *drainWorld {
	d := &drainWorld{w: &world{}, ct: &FakeConntrack{}}
	udp := corev1.ProtocolUDP
	d.slice = pt.Slice("kube-system", "kube-dns", "kube-dns-1", "dns", udp, 53,
		pt.EP{IP: "10.244.1.2", Node: "node-a"}, pt.EP{IP: "10.244.2.2", Node: "node-b"})
	d.w.add(pt.Service("kube-system", "kube-dns", []string{"10.96.0.10"}, pt.Port("dns", udp, 53)), d.slice)
	d.p = New(knftables.NewFake(TableFamily, TableName), WithConntrack(d.ct))
	d.p.after = func(delay time.Duration, f func()) { d.delays, d.timers = append(d.delays, delay), append(d.timers, f) }
	syncFake(t, d.p, d.w.model())
	return d
}

// set changes the conditions of the endpoint on node-b and syncs.
func (d *drainWorld) set(t *testing.T, c discoveryv1.EndpointConditions) {
	t.Helper()
	d.slice.Endpoints[1].Conditions = c
	syncFake(t, d.p, d.w.model())
}

// fire runs the pending drain timers.
func (d *drainWorld) fire() {
	timers := d.timers
	d.timers = nil
	for _, f := range timers {
		f()
	}
}

var (
	terminatingServing = discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
	terminatingGone    = discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(true)}
	notReady           = discoveryv1.EndpointConditions{Ready: ptr.To(false)}
)

const drainedFlush = "10.96.0.10:53->10.244.2.2"

// TestUDPConntrackDrainedWhileTerminatingEndpointServes: an endpoint that
// terminates but still serves (CoreDNS in its lameduck) gets no new flows
// and keeps its conntrack entries for udpDrainDelay, so that the answers to
// questions it already took reach their clients; then the entries go while
// it still answers, so that no lookup from a reused source port follows an
// old entry into it once it stops.
func TestUDPConntrackDrainedWhileTerminatingEndpointServes(t *testing.T) {
	d := newDrainWorld(t)
	d.set(t, terminatingServing)
	if len(d.ct.Cleared) != 0 {
		t.Fatalf("a terminating endpoint that still serves had its conntrack cleared at once: %v", d.ct.Cleared)
	}
	if len(d.timers) != 1 || d.delays[0] != udpDrainDelay {
		t.Fatalf("drains scheduled %v, want one of %s", d.delays, udpDrainDelay)
	}
	d.set(t, terminatingServing) // nothing changed: no second drain
	if len(d.timers) != 1 {
		t.Fatalf("drains scheduled %d, want still one", len(d.timers))
	}
	d.fire()
	if want := []string{drainedFlush}; !slices.Equal(d.ct.Cleared, want) {
		t.Errorf("after the drain, conntrack cleared %v, want %v", d.ct.Cleared, want)
	}
}

// TestUDPConntrackDrainOutlastsStopServing: while the drain is pending, the
// endpoint stopping serving (CoreDNS' ready plugin fails at once in a
// lameduck) does not flush early; leaving the slice does.
func TestUDPConntrackDrainOutlastsStopServing(t *testing.T) {
	d := newDrainWorld(t)
	d.set(t, terminatingServing)
	d.set(t, terminatingGone)
	if len(d.ct.Cleared) != 0 {
		t.Fatalf("stopping serving during the drain flushed at once: %v", d.ct.Cleared)
	}
	d.fire()
	if want := []string{drainedFlush}; !slices.Equal(d.ct.Cleared, want) {
		t.Errorf("after the drain, conntrack cleared %v, want %v", d.ct.Cleared, want)
	}

	d = newDrainWorld(t)
	d.set(t, terminatingServing)
	d.slice.Endpoints = d.slice.Endpoints[:1]
	syncFake(t, d.p, d.w.model())
	if want := []string{drainedFlush}; !slices.Equal(d.ct.Cleared, want) {
		t.Errorf("leaving the slice during the drain: conntrack cleared %v, want %v at once", d.ct.Cleared, want)
	}
}

// TestUDPConntrackDrainSkippedWhenNewFlowsReturn: if the endpoint gets new
// flows again before its drain ends (the other endpoint went and the
// terminating fallback balances to it), its entries stay.
func TestUDPConntrackDrainSkippedWhenNewFlowsReturn(t *testing.T) {
	d := newDrainWorld(t)
	d.set(t, terminatingServing)
	d.slice.Endpoints[0].Conditions = notReady
	syncFake(t, d.p, d.w.model())
	d.fire()
	for _, c := range d.ct.Cleared {
		if c == drainedFlush {
			t.Fatalf("the drain flushed an endpoint that gets new flows again: %v", d.ct.Cleared)
		}
	}
}

// TestUDPConntrackFlushedAtOnceWhenNotReady: an endpoint that stops being
// ready without terminating (failed readiness, crash) is flushed at once,
// with no drain.
func TestUDPConntrackFlushedAtOnceWhenNotReady(t *testing.T) {
	d := newDrainWorld(t)
	d.set(t, notReady)
	if want := []string{drainedFlush}; !slices.Equal(d.ct.Cleared, want) || len(d.timers) != 0 {
		t.Errorf("conntrack cleared %v with %d drains, want %v at once and no drain", d.ct.Cleared, len(d.timers), want)
	}
}
