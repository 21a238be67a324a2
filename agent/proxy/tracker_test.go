package proxy_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/plexus-net/plexus/agent/proxy"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

// TestTrackerMatchesBuild: after any sequence of updates the Tracker's
// model equals a full Build of the same objects, and earlier models are
// left untouched.
func TestTrackerMatchesBuild(t *testing.T) {
	svcs, sl := pt.Scale(20, 3)
	tr := proxy.NewTracker(node)
	for _, s := range svcs {
		tr.SetService(s)
	}
	for _, s := range sl {
		tr.SetSlice(s)
	}
	first := tr.Model()
	firstBuilt := proxy.Build(svcs, sl, node)
	if c := proxy.Diff(first, firstBuilt); !c.Empty() {
		t.Fatalf("initial model differs from Build: %+v", c)
	}
	// Nothing is left pending after Model: a second one without changes is the same.
	if c := proxy.Diff(first, tr.Model()); !c.Empty() {
		t.Errorf("a second Model without changes differs from the first: %+v", c)
	}
	changed := sl[3].DeepCopy()
	changed.Endpoints = changed.Endpoints[:1]
	tr.SetSlice(changed)
	tr.DeleteService("ns", "svc-5")
	tr.DeleteSlice(sl[7])
	second := tr.Model()
	sl[3] = changed
	want := proxy.Build(append(append([]*corev1.Service{}, svcs[:5]...), svcs[6:]...), append(append([]*discoveryv1.EndpointSlice{}, sl[:7]...), sl[8:]...), node)
	if c := proxy.Diff(second, want); !c.Empty() {
		t.Errorf("model after updates differs from Build: %+v", c)
	}
	// The Tracker keeps Counts as it goes; Build's are computed from Ports.
	for i, pair := range [][2]proxy.Model{{first, firstBuilt}, {second, want}} {
		if got, w := pair[0].Counts(), pair[1].Counts(); got != w {
			t.Errorf("model %d: Tracker counts %+v, computed %+v", i+1, got, w)
		}
	}
	if c := proxy.Diff(first, second); len(c.Changed) != 2 || len(c.Removed) != 1 {
		t.Errorf("first vs second: %+v, want 2 changed (svc-3, svc-7) and 1 removed (svc-5)", c)
	}
}

// TestTrackerDiffFastPath: Diff between consecutive Tracker models (which
// only looks at touched keys) agrees with a full comparison.
func TestTrackerDiffFastPath(t *testing.T) {
	svcs, sl := pt.Scale(10, 2)
	tr := proxy.NewTracker(node)
	for i := range svcs {
		tr.SetService(svcs[i])
		tr.SetSlice(sl[i])
	}
	a := tr.Model()
	if c := proxy.Diff(a, tr.Model()); !c.Empty() {
		t.Errorf("same model: %+v", c)
	}
	tr.DeleteService("ns", "svc-1")
	s := sl[2].DeepCopy()
	s.Endpoints = s.Endpoints[:1]
	tr.SetSlice(s)
	tr.SetSlice(sl[4]) // unchanged content
	b := tr.Model()
	fast := proxy.Diff(a, b)
	full := proxy.Diff(proxy.Build(svcs, sl, node), b) // not derived: full walk
	if fmt.Sprint(fast) != fmt.Sprint(full) || len(fast.Removed) != 1 || len(fast.Changed) != 1 {
		t.Errorf("fast diff %+v, full diff %+v", fast, full)
	}
}

// TestTrackerSlicesStayValid: the objects the Tracker hands out (the Feed's snapshots share
// them with the sync loop) do not change when it is updated.
func TestTrackerSlicesStayValid(t *testing.T) {
	a := pt.Slice("ns", "web", "web-a", "http", corev1.ProtocolTCP, 8080, pt.EP{IP: "10.244.1.1"})
	b := pt.Slice("ns", "web", "web-b", "http", corev1.ProtocolTCP, 8080, pt.EP{IP: "10.244.1.2"})
	tr := proxy.NewTracker(node)
	tr.SetService(pt.Service("ns", "web", []string{"10.96.0.10"}, pt.Port("http", corev1.ProtocolTCP, 80)))
	tr.SetSlice(a)
	tr.SetSlice(b)
	n := proxy.ServiceName{Namespace: "ns", Name: "web"}
	held := tr.Slices(n)
	if len(held) != 2 || tr.Service(n) == nil {
		t.Fatalf("Slices = %v, Service = %v", held, tr.Service(n))
	}
	a2 := a.DeepCopy()
	a2.Endpoints = nil
	tr.SetSlice(a2)
	tr.DeleteSlice(b)
	if held[0] != a || held[1] != b {
		t.Errorf("a held slice list changed under its holder: %v", held)
	}
	if got := tr.Slices(n); len(got) != 1 || got[0] != a2 {
		t.Errorf("Slices after the updates = %v, want [web-a (new)]", got)
	}
	tr.DeleteSlice(a2)
	tr.DeleteSlice(a2) // unknown: ignored
	if got := tr.Slices(n); got != nil {
		t.Errorf("Slices after deleting all = %v", got)
	}
	count := 0
	for name, svc := range tr.Services() {
		if name != n || svc.Name != "web" {
			t.Errorf("Services yields %v %v", name, svc.Name)
		}
		count++
	}
	if count != 1 || tr.Len() != 1 {
		t.Errorf("Services yields %d Services, Len is %d; want 1", count, tr.Len())
	}
}
