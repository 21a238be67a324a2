package ipvs_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/ipvs/ipvsfake"
)

// newFakes returns a syncer on fresh fakes.
func newFakes() (*ipvs.Syncer, *ipvsfake.Fake, *ipvsfake.Binder) {
	f, b := ipvsfake.New(), ipvsfake.NewBinder()
	return ipvs.NewSyncer(f, b), f, b
}

// TestSyncFromModel: a dual-stack NodePort Service with session affinity
// becomes, per family, a persistent virtual server on the cluster IP (bound
// on the dummy device) and one on the node address (not bound), each with
// the endpoints of its family.
func TestSyncFromModel(t *testing.T) {
	s, f, b := newFakes()
	m := webService{affinity: time.Minute, nodePort: 30080, backends: []int{1, 2}}.model(ip("10.99.0.11"), ip("fd10:99::11"))
	syncOK(t, s, ipvs.DesiredState(m, ipvs.Config{}))
	want := lines(
		"TCP 10.96.0.10:80 rr persistent 1m0s",
		"  -> 10.244.1.2:8080 weight 1",
		"  -> 10.244.2.2:8080 weight 1",
		"TCP 10.99.0.11:30080 rr persistent 1m0s",
		"  -> 10.244.1.2:8080 weight 1",
		"  -> 10.244.2.2:8080 weight 1",
		"TCP [fd10:96::10]:80 rr persistent 1m0s",
		"  -> [fd10:244:1::2]:8080 weight 1",
		"  -> [fd10:244:2::2]:8080 weight 1",
		"TCP [fd10:99::11]:30080 rr persistent 1m0s",
		"  -> [fd10:244:1::2]:8080 weight 1",
		"  -> [fd10:244:2::2]:8080 weight 1",
	)
	if got := f.Dump(); got != want {
		t.Errorf("IPVS:\n%s\nwant:\n%s", got, want)
	}
	bound, _ := b.ListBound()
	if want := []netip.Addr{ip("10.96.0.10"), ip("fd10:96::10")}; !equalAddrs(bound, want) {
		t.Errorf("bound %v, want %v", bound, want)
	}
}

// TestNoOpSyncWritesNothing: a second sync of the same model makes no
// kernel call, and neither does a full resync that reads the kernel.
func TestNoOpSyncWritesNothing(t *testing.T) {
	s, f, b := newFakes()
	m := webService{backends: []int{1, 2}}.model()
	desired := ipvs.DesiredState(m, ipvs.Config{})
	syncOK(t, s, desired)
	f.ResetCalls()
	b.ResetCalls()
	if plan := syncOK(t, s, desired); !plan.Empty() {
		t.Errorf("second sync planned:\n%s", plan)
	}
	s.RequestFullSync()
	if plan := syncOK(t, s, desired); !plan.Empty() {
		t.Errorf("full resync planned:\n%s", plan)
	}
	if calls := append(f.Calls(), b.Calls()...); len(calls) > 0 {
		t.Errorf("no-op syncs wrote: %q", calls)
	}
}

// TestEndpointRemoved: dropping one backend deletes exactly its real
// servers, one per family.
func TestEndpointRemoved(t *testing.T) {
	s, f, _ := newFakes()
	syncOK(t, s, ipvs.DesiredState(webService{backends: []int{1, 2}}.model(), ipvs.Config{}))
	f.ResetCalls()
	plan := syncOK(t, s, ipvs.DesiredState(webService{backends: []int{2}}.model(), ipvs.Config{}))
	want := lines(
		"- real-server TCP 10.96.0.10:80 -> 10.244.1.2:8080",
		"- real-server TCP [fd10:96::10]:80 -> [fd10:244:1::2]:8080",
	)
	if plan.String() != want {
		t.Errorf("plan:\n%s\nwant:\n%s", plan, want)
	}
	if got := len(f.Calls()); got != 2 {
		t.Errorf("%d calls, want 2: %q", got, f.Calls())
	}
}

// TestNoEndpoints: a Service without endpoints keeps its virtual server
// (without real servers, IPVS rejects new connections) and its bound IP.
func TestNoEndpoints(t *testing.T) {
	s, f, b := newFakes()
	syncOK(t, s, ipvs.DesiredState(webService{}.model(), ipvs.Config{Scheduler: ipvs.SourceHashing}))
	if got, want := f.Dump(), lines("TCP 10.96.0.10:80 sh", "TCP [fd10:96::10]:80 sh"); got != want {
		t.Errorf("IPVS:\n%s\nwant:\n%s", got, want)
	}
	if bound, _ := b.ListBound(); len(bound) != 2 {
		t.Errorf("bound %v, want both cluster IPs", bound)
	}
}

// TestForeignVirtualServersLeftAlone: a virtual server whose address is
// neither bound by Plexus, a node address nor wanted is not Plexus's.
func TestForeignVirtualServersLeftAlone(t *testing.T) {
	s, f, _ := newFakes()
	foreign := vs("172.17.0.1:443")
	if err := f.AddVirtualServer(foreign); err != nil {
		t.Fatal(err)
	}
	syncOK(t, s, ipvs.DesiredState(webService{backends: []int{1}}.model(), ipvs.Config{}))
	syncOK(t, s, ipvs.State{}) // everything of Plexus's goes
	if got := f.Dump(); got != foreign.String() {
		t.Errorf("IPVS after removing everything of Plexus's:\n%s\nwant only %s", got, foreign)
	}
}

// TestFailedSyncRepairs: a failed virtual server add skips its real
// servers, reports the error, and the next sync reads the kernel and
// completes the work.
func TestFailedSyncRepairs(t *testing.T) {
	s, f, _ := newFakes()
	desired := ipvs.DesiredState(webService{backends: []int{1}}.model(), ipvs.Config{})
	boom := errors.New("boom")
	f.FailOn["AddVirtualServer TCP [fd10:96::10]:80 rr"] = boom
	if _, err := s.Sync(desired); !errors.Is(err, boom) {
		t.Fatalf("sync error %v, want boom", err)
	}
	if strings.Contains(f.Dump(), "fd10") {
		t.Errorf("IPv6 virtual server exists after a failed add:\n%s", f.Dump())
	}
	delete(f.FailOn, "AddVirtualServer TCP [fd10:96::10]:80 rr")
	plan := syncOK(t, s, desired)
	want := lines(
		"+ virtual-server TCP [fd10:96::10]:80 rr",
		"+ real-server TCP [fd10:96::10]:80 -> [fd10:244:1::2]:8080 weight 1",
	)
	if plan.String() != want {
		t.Errorf("repair plan:\n%s\nwant:\n%s", plan, want)
	}
}

// TestLeftoverVirtualServerAdopted: a virtual server at a wanted key that
// the agent made before it crashed (never bound) is updated, not re-added.
func TestLeftoverVirtualServerAdopted(t *testing.T) {
	s, f, _ := newFakes()
	left := vs("10.96.0.10:80")
	left.Scheduler = ipvs.LeastConnection
	if err := f.AddVirtualServer(left); err != nil {
		t.Fatal(err)
	}
	plan := syncOK(t, s, ipvs.DesiredState(webService{}.model(), ipvs.Config{}))
	if !strings.Contains(plan.String(), "~ virtual-server TCP 10.96.0.10:80 rr (was TCP 10.96.0.10:80 lc)") {
		t.Errorf("plan does not update the leftover:\n%s", plan)
	}
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
