package nftables

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/proxy"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
	"github.com/plexus-net/plexus/internal/golden"
)

// txLines returns the fake's last transaction, sorted, digest normalised;
// "" when none ran.
func txLines(fake *knftables.Fake) string {
	if fake.LastTransaction == nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(fake.LastTransaction.String()), "\n")
	slices.Sort(lines)
	return stampRE.ReplaceAllString(strings.Join(lines, "\n"), "sync-stamp { DIGEST }")
}

// TestPartialSyncWritesOnlyChanges: one changed endpoint is one element
// replaced (plus a new digest stamp, older stamps pruned along with the
// delete); a new Service only adds (a new endpoint count brings its chain
// and map), and they go when no longer used.
func TestPartialSyncWritesOnlyChanges(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	p := New(fake)
	w := scenario()
	syncFake(t, p, w.model())

	w.slices[0].Endpoints[1].Addresses = []string{"10.244.2.50"}
	syncFake(t, p, w.model())
	want := `add element inet plexus-proxy endpoints-v4-2 { 10.96.0.10 . tcp . 80 . 1 : 10.244.2.50 . 8080 }
add element inet plexus-proxy sync-stamp { DIGEST }
delete element inet plexus-proxy endpoints-v4-2 { 10.96.0.10 . tcp . 80 . 1 }
delete element inet plexus-proxy sync-stamp { DIGEST }`
	if got := txLines(fake); got != want {
		t.Errorf("change one endpoint wrote:\n%s\nwant:\n%s", got, want)
	}

	tcp := corev1.ProtocolTCP
	w.add(pt.Service("ns", "three", []string{"10.96.0.50"}, pt.Port("p", tcp, 80)),
		pt.Slice("ns", "three", "three-1", "p", tcp, 80, pt.EP{IP: "10.244.2.1"}, pt.EP{IP: "10.244.2.2"}, pt.EP{IP: "10.244.2.3"}))
	syncFake(t, p, w.model())
	want = `add chain inet plexus-proxy dnat-v4-3
add element inet plexus-proxy endpoints-v4-3 { 10.96.0.50 . tcp . 80 . 0 : 10.244.2.1 . 80 }
add element inet plexus-proxy endpoints-v4-3 { 10.96.0.50 . tcp . 80 . 1 : 10.244.2.2 . 80 }
add element inet plexus-proxy endpoints-v4-3 { 10.96.0.50 . tcp . 80 . 2 : 10.244.2.3 . 80 }
add element inet plexus-proxy sync-stamp { DIGEST }
add element inet plexus-proxy vips-v4 { 10.96.0.50 . tcp . 80 : goto dnat-v4-3 }
add map inet plexus-proxy endpoints-v4-3 { typeof ip daddr . meta l4proto . th dport . numgen random mod 3 : ip daddr . th dport ; }
add rule inet plexus-proxy dnat-v4-3 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @endpoints-v4-3
add rule inet plexus-proxy dnat-v4-3 fib saddr type local dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 offset 65536 map @endpoints-v4-3`
	if got := txLines(fake); got != want {
		t.Errorf("add a Service wrote:\n%s\nwant:\n%s", got, want)
	}

	w.svcs, w.slices = w.svcs[:len(w.svcs)-1], w.slices[:len(w.slices)-1]
	syncFake(t, p, w.model())
	want = `add element inet plexus-proxy sync-stamp { DIGEST }
delete chain inet plexus-proxy dnat-v4-3
delete element inet plexus-proxy endpoints-v4-3 { 10.96.0.50 . tcp . 80 . 0 }
delete element inet plexus-proxy endpoints-v4-3 { 10.96.0.50 . tcp . 80 . 1 }
delete element inet plexus-proxy endpoints-v4-3 { 10.96.0.50 . tcp . 80 . 2 }
delete element inet plexus-proxy sync-stamp { DIGEST }
delete element inet plexus-proxy sync-stamp { DIGEST }
delete element inet plexus-proxy vips-v4 { 10.96.0.50 . tcp . 80 }
delete map inet plexus-proxy endpoints-v4-3
flush chain inet plexus-proxy dnat-v4-3`
	if got := txLines(fake); got != want {
		t.Errorf("remove the Service wrote:\n%s\nwant:\n%s", got, want)
	}
}

// TestNoOpSyncsWriteNothing: an unchanged model runs no transaction, in
// the same Proxier and in a new one (an agent restart) whose full sync
// finds the table's digest and objects as expected.
func TestNoOpSyncsWriteNothing(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	m := scenario().model()
	syncFake(t, New(fake), m)
	p := New(fake)
	fake.LastTransaction = nil
	syncFake(t, p, m)
	if fake.LastTransaction != nil || p.Stats().Wrote || !p.Stats().Full {
		t.Errorf("full resync after restart wrote:\n%s", fake.LastTransaction)
	}
	syncFake(t, p, scenario().model())
	if fake.LastTransaction != nil || p.Stats().Wrote {
		t.Errorf("partial no-op sync wrote:\n%s", fake.LastTransaction)
	}
}

// TestFullSyncRepairs: a restarted Proxier rebuilds the table when the
// model changed while it was down or when the chains are not the expected
// ones.
func TestFullSyncRepairs(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	w := scenario()
	syncFake(t, New(fake), w.model())
	w.slices[0].Endpoints[1].Addresses = []string{"10.244.2.50"}
	p := New(fake)
	syncFake(t, p, w.model())
	if !p.Stats().Wrote || !strings.Contains(fake.LastTransaction.String(), "delete table inet plexus-proxy") {
		t.Fatalf("changed model after restart: no rebuild")
	}
	assertEqualsFresh(t, fake, w.model())

	// A chain that a table holding the model does not have (an older
	// layout, someone else's edit) makes the full sync rebuild.
	tx := fake.NewTransaction()
	tx.Add(&knftables.Chain{Name: "foreign"})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	p = New(fake)
	syncFake(t, p, w.model())
	if !p.Stats().Wrote {
		t.Errorf("foreign chain after restart: no rebuild")
	}
	assertEqualsFresh(t, fake, w.model())
}

// assertEqualsFresh compares fake with a table written from scratch for m.
func assertEqualsFresh(t *testing.T, fake *knftables.Fake, m proxy.Model) {
	t.Helper()
	fresh := knftables.NewFake(TableFamily, TableName)
	syncFake(t, New(fresh), m)
	if got, want := normalise(sortedDump(fake)), normalise(sortedDump(fresh)); got != want {
		t.Errorf("table after syncs differs from a fresh one:\n%s", golden.FirstDiff(got, want))
	}
	// Write numbers differ; the newest stamp must carry the same digest.
	_, got, _ := latestStamp(stampsOf(t, fake))
	_, want, _ := latestStamp(stampsOf(t, fresh))
	if got != want {
		t.Errorf("newest stamp digest %x, want %x", got, want)
	}
}

// slotRE matches the numgen slot of an endpoints map element.
var slotRE = regexp.MustCompile(`^(add element inet plexus-proxy endpoints-\S+ \{ .*) \. [0-9]+ : `)

// normalise drops stamps (write numbers differ) and numgen slots (an
// incremental sync keeps an endpoint's slot, a fresh one sorts), so the
// comparison is of which endpoints each frontend gets.
func normalise(dump string) string {
	var out []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "add element inet plexus-proxy sync-stamp ") {
			continue
		}
		out = append(out, slotRE.ReplaceAllString(l, "$1 . SLOT : "))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func stampsOf(t *testing.T, fake *knftables.Fake) []string {
	t.Helper()
	s, err := fakeReader(fake).stamp(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRandomChangesConverge: after many random partial syncs the table is
// exactly what a fresh full sync of the final model writes.
func TestRandomChangesConverge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	svcs, sls := pt.Scale(40, 4)
	fake := knftables.NewFake(TableFamily, TableName)
	p := New(fake)
	n := testNode
	n.Name = "node-a"
	build := func() proxy.Model { return proxy.Build(svcs, sls, n) }
	syncFake(t, p, build())
	for step := 0; step < 300; step++ {
		i := rng.IntN(len(svcs))
		switch rng.IntN(6) {
		case 5: // replace an endpoint's address: same count, one slot
			s := sls[i].DeepCopy()
			if len(s.Endpoints) > 0 {
				s.Endpoints[rng.IntN(len(s.Endpoints))].Addresses = []string{fmt.Sprintf("10.246.%d.%d", step/200, step%200+1)}
			}
			sls[i] = s
		case 0: // drop or add an endpoint
			s := sls[i].DeepCopy()
			if len(s.Endpoints) > 0 && rng.IntN(2) == 0 {
				s.Endpoints = s.Endpoints[:len(s.Endpoints)-1]
			} else {
				s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.245.%d.%d", step/200, step%200+1)}, NodeName: ptr.To("node-a")})
			}
			sls[i] = s
		case 1: // readiness flip
			s := sls[i].DeepCopy()
			if len(s.Endpoints) > 0 {
				e := &s.Endpoints[rng.IntN(len(s.Endpoints))]
				e.Conditions.Ready = ptr.To(e.Conditions.Ready != nil && !*e.Conditions.Ready)
			}
			sls[i] = s
		case 2: // affinity and policies
			s := svcs[i].DeepCopy()
			if s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
				s.Spec.SessionAffinity = corev1.ServiceAffinityNone
			} else {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			}
			s.Spec.InternalTrafficPolicy = ptr.To([]corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}[rng.IntN(2)])
			svcs[i] = s
		case 3: // NodePort on and off
			s := svcs[i].DeepCopy()
			if s.Spec.Type == corev1.ServiceTypeNodePort {
				s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeClusterIP, 0
			} else {
				// Unique per Service, as the API server guarantees: two
				// Services on one node port would fight over one key.
				var num int32
				_, _ = fmt.Sscanf(s.Name, "svc-%d", &num)
				s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30000+num
			}
			svcs[i] = s
		case 4: // remove and re-add a Service
			s := svcs[i].DeepCopy()
			svcs = slices.Delete(svcs, i, i+1)
			syncFake(t, p, build())
			svcs = append(svcs, s)
		}
		syncFake(t, p, build())
	}
	assertEqualsFresh(t, fake, build())
}

// TestUDPConntrackFlush: a UDP endpoint that stops receiving traffic gets
// its conntrack entries flushed, per frontend; TCP endpoints do not.
func TestUDPConntrackFlush(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	ct := &FakeConntrack{}
	p := New(fake, WithConntrack(ct))
	w := scenario()
	syncFake(t, p, w.model())
	for _, s := range w.slices {
		if s.Name == "dns-1" || s.Name == "web-4" {
			s.Endpoints = s.Endpoints[1:] // drops the local endpoint
		}
	}
	syncFake(t, p, w.model())
	if want := []string{"10.96.0.53:53->10.244.1.9"}; !slices.Equal(ct.Cleared, want) {
		t.Errorf("conntrack cleared %v, want %v", ct.Cleared, want)
	}
}

// TestUDPConntrackKeptWhileTerminatingEndpointServes: an endpoint that
// terminates but still serves gets no new flows, yet keeps its conntrack
// entries (the replies to questions it took must reach their clients);
// they are flushed once it stops serving, and when it leaves the slice.
func TestUDPConntrackKeptWhileTerminatingEndpointServes(t *testing.T) {
	for _, gone := range []struct {
		name string
		set  func(s *discoveryv1.EndpointSlice)
	}{
		{"stops serving", func(s *discoveryv1.EndpointSlice) { s.Endpoints[1].Conditions.Serving = ptr.To(false) }},
		{"leaves the slice", func(s *discoveryv1.EndpointSlice) { s.Endpoints = s.Endpoints[:1] }},
	} {
		fake := knftables.NewFake(TableFamily, TableName)
		ct := &FakeConntrack{}
		p := New(fake, WithConntrack(ct))
		w := scenario()
		syncFake(t, p, w.model())
		var dns *discoveryv1.EndpointSlice
		for _, sl := range w.slices {
			if sl.Name == "dns-1" {
				dns = sl
			}
		}
		// The remote endpoint: the local one stays the only one of internalTrafficPolicy Local.
		dns.Endpoints[1].Conditions = discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
		syncFake(t, p, w.model())
		if len(ct.Cleared) != 0 {
			t.Fatalf("%s: a terminating endpoint that still serves had its conntrack cleared: %v", gone.name, ct.Cleared)
		}
		gone.set(dns)
		syncFake(t, p, w.model())
		if want := []string{"10.96.0.53:53->10.244.2.9"}; !slices.Equal(ct.Cleared, want) {
			t.Errorf("%s: conntrack cleared %v, want %v", gone.name, ct.Cleared, want)
		}
	}
}

// TestAffinityFlushedWhenEndpointGoes: losing an endpoint of an affinity
// Service empties the affinity map in the same transaction, so no client
// stays pinned to an endpoint that is gone.
func TestAffinityFlushedWhenEndpointGoes(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	p := New(fake)
	w := scenario()
	syncFake(t, p, w.model())
	for _, s := range w.slices {
		if s.Name == "np-1" {
			s.Endpoints = s.Endpoints[1:]
		}
	}
	syncFake(t, p, w.model())
	if !strings.Contains(txLines(fake), "flush map inet plexus-proxy affinity-v4") {
		t.Errorf("affinity map not flushed:\n%s", txLines(fake))
	}
}

// fakeHealth records health check Syncs.
type fakeHealth struct{ last map[uint16]int }

func (f *fakeHealth) Sync(m map[uint16]int) error { f.last = m; return nil }

// TestHealthCheckPorts: the eTP Local LoadBalancer's health check port
// gets the local endpoint count.
func TestHealthCheckPorts(t *testing.T) {
	hc := &fakeHealth{}
	p := New(knftables.NewFake(TableFamily, TableName), WithHealthChecker(hc))
	syncFake(t, p, scenario().model())
	if got := fmt.Sprint(hc.last); got != "map[32000:1]" {
		t.Errorf("health check ports %s, want map[32000:1]", got)
	}
}

// TestOlderStampNeverMatches: X, then Y, then a restart with model X
// again: X's stamp may still be in the table, but Y's is newer, so the
// full sync rebuilds rather than adopt a table that holds Y.
func TestOlderStampNeverMatches(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	p := New(fake)
	w := scenario()
	x := w.model()
	syncFake(t, p, x)
	w.slices[0].Endpoints = w.slices[0].Endpoints[:1]
	syncFake(t, p, w.model()) // Y, with a delete: prunes X's stamp
	w.add(pt.Service("ns", "more", []string{"10.96.0.99"}, pt.Port("p", corev1.ProtocolTCP, 80)))
	syncFake(t, p, w.model()) // Z: add-only, Y's stamp stays
	restarted := New(fake)
	syncFake(t, restarted, x)
	if !restarted.Stats().Wrote {
		t.Fatalf("restart with an older model adopted the table")
	}
	assertEqualsFresh(t, fake, x)
	p = New(fake)
	syncFake(t, p, x)
	if p.Stats().Wrote {
		t.Errorf("restart with the current model rebuilt the table")
	}
}

// TestEndpointKeepsItsSlot: replacing the first of three endpoints by one
// that sorts last rewrites one element, not all three.
func TestEndpointKeepsItsSlot(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	p := New(fake)
	tcp := corev1.ProtocolTCP
	w := &world{}
	w.add(pt.Service("ns", "web", []string{"10.96.0.10"}, pt.Port("p", tcp, 80)),
		pt.Slice("ns", "web", "web-1", "p", tcp, 80, pt.EP{IP: "10.244.1.1"}, pt.EP{IP: "10.244.1.2"}, pt.EP{IP: "10.244.1.3"}))
	syncFake(t, p, w.model())
	w.slices[0].Endpoints[0].Addresses = []string{"10.244.1.9"}
	syncFake(t, p, w.model())
	want := `add element inet plexus-proxy endpoints-v4-3 { 10.96.0.10 . tcp . 80 . 0 : 10.244.1.9 . 80 }
add element inet plexus-proxy sync-stamp { DIGEST }
delete element inet plexus-proxy endpoints-v4-3 { 10.96.0.10 . tcp . 80 . 0 }
delete element inet plexus-proxy sync-stamp { DIGEST }`
	if got := txLines(fake); got != want {
		t.Errorf("replace one endpoint wrote:\n%s\nwant:\n%s", got, want)
	}
	assertEqualsFresh(t, fake, w.model())
	if got := newTracer(fake).Trace(packet{Src: ip(podA), Dst: ip("10.96.0.10"), Proto: "tcp", DPort: 80}).String(); got != "dnat 10.244.1.2:80,10.244.1.3:80,10.244.1.9:80" {
		t.Errorf("after the change: %s", got)
	}
}

// TestPeriodicFullSyncStaysIncremental: a running Proxier asked for a full
// sync (the agent does every minute) while the model changed writes only
// the change when the table still holds its last write, and rebuilds when
// the table was changed behind its back or after a failed write.
func TestPeriodicFullSyncStaysIncremental(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	p := New(fake)
	w := scenario()
	syncFake(t, p, w.model())

	w.slices[0].Endpoints[1].Addresses = []string{"10.244.2.51"}
	p.RequestFullSync()
	syncFake(t, p, w.model())
	if st := p.Stats(); !st.Full || !st.Wrote || strings.Contains(fake.LastTransaction.String(), "delete table") {
		t.Errorf("full sync of a running Proxier rebuilt the table (stats %+v):\n%s", st, fake.LastTransaction)
	}
	assertEqualsFresh(t, fake, w.model())

	// Someone else's write (a newer stamp) makes the table unknown.
	tx := fake.NewTransaction()
	tx.Add(&knftables.Element{Set: setStamp, Key: []string{stampElement(1<<31, 42)}})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	w.slices[0].Endpoints[1].Addresses = []string{"10.244.2.52"}
	p.RequestFullSync()
	syncFake(t, p, w.model())
	if !strings.Contains(fake.LastTransaction.String(), "delete table") {
		t.Errorf("full sync over a table changed behind the Proxier's back did not rebuild:\n%s", fake.LastTransaction)
	}
	assertEqualsFresh(t, fake, w.model())

	// A failed write, the table otherwise as last written (an element the
	// write deletes was removed behind the Proxier's back): the next sync
	// trusts nothing it remembers.
	tx = fake.NewTransaction()
	tx.Delete(&knftables.Element{Map: "endpoints-v4-2", Key: []string{"10.96.0.10 . tcp . 80 . 1"}})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	w.slices[0].Endpoints[1].Addresses = []string{"10.244.2.53"}
	if err := p.Sync(context.Background(), w.model()); err == nil {
		t.Fatal("a write deleting a missing element did not fail")
	}
	syncFake(t, p, w.model())
	if !strings.Contains(fake.LastTransaction.String(), "delete table") {
		t.Errorf("sync after a failed write did not rebuild:\n%s", fake.LastTransaction)
	}
	assertEqualsFresh(t, fake, w.model())
}
