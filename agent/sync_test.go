package agent

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/masquerade"
	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/agent/routing/routingfake"
	"github.com/plexus-net/plexus/agent/status"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/testnet"
)

// fakeAPI is the Source and the StatusWriter of the tests: a patch lands in the NodeNetwork the
// next Inputs returns, as it would in the informer cache.
type fakeAPI struct {
	mu      sync.Mutex
	in      Inputs
	patches int
}

func (f *fakeAPI) Inputs(context.Context) (Inputs, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.in
	in.NodeNetworks = slices.Clone(f.in.NodeNetworks)
	for i := range in.NodeNetworks {
		in.NodeNetworks[i] = *in.NodeNetworks[i].DeepCopy()
	}
	return in, nil
}

func (f *fakeAPI) PatchStatus(_ context.Context, nn *v1.NodeNetwork, next v1.NodeNetworkStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.patches++
	for i := range f.in.NodeNetworks {
		if f.in.NodeNetworks[i].Name == nn.Name {
			f.in.NodeNetworks[i].Status = next
		}
	}
	return nil
}

func (f *fakeAPI) status(name string) v1.NodeNetworkStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *findNodeNetwork(f.in.NodeNetworks, name).Status.DeepCopy()
}

func (f *fakeAPI) patchCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.patches
}

// fixedUplink is the UplinkFinder of the tests.
type fixedUplink struct{}

func (fixedUplink) Uplink([]netip.Addr) (routing.Uplink, error) { return testUplink, nil }

// world is one node's fake kernel, nftables, files and API.
type world struct {
	kernel *routingfake.Fake
	nft    *knftables.Fake
	api    *fakeAPI
	state  string
}

func newWorld(t *testing.T, mode v1.RoutingMode) *world {
	nodes, nns := threeNodes()
	return &world{
		kernel: routingfake.New("eth0"),
		nft:    knftables.NewFake(masquerade.TableFamily, masquerade.TableName),
		api:    &fakeAPI{in: Inputs{ClusterNetwork: effectiveNetwork(mode, 1), Nodes: nodes, NodeNetworks: nns}},
		state:  filepath.Join(t.TempDir(), "node-state.json"),
	}
}

// newAgent returns a freshly started agent of node-1 on w (a new process: nothing remembered),
// with the routes, masquerade and CNI planes.
func (w *world) newAgent(reg prometheus.Registerer) *Agent {
	return w.newAgentWith(reg, routing.NewSyncer(w.kernel), masquerade.New(w.nft))
}

// newAgentWith is newAgent with the given route syncer and masquerader.
func (w *world) newAgentWith(reg prometheus.Registerer, routes RouteSyncer, masq Masquerader) *Agent {
	metrics := NewMetrics(reg)
	return &Agent{
		NodeName: "node-1",
		Source:   w.api, Reporter: status.Reporter{Writer: w.api}, Uplinks: fixedUplink{},
		Planes:  []Plane{NewRoutesPlane(routes, metrics), NewMasqueradePlane(masq), NewCNIPlane(w.state)},
		Pods:    func() (int, error) { return 2, nil },
		Metrics: metrics,
	}
}

func TestNoOpSyncWritesNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, v1.RoutingAuto)
	a := w.newAgent(nil)
	res, err := a.Sync(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Plane(PlaneRoutes).Changes == 0 || !res.Plane(PlaneMasquerade).Wrote || !res.Plane(PlaneCNI).Wrote || !res.StatusPatched {
		t.Fatalf("first sync should program everything, got %+v", res)
	}
	st := w.api.status("node-1")
	if !meta.IsStatusConditionTrue(st.Conditions, v1.ConditionNodeReady) || st.ProgrammedGeneration != 1 || st.Routes == 0 || st.Pods != 2 || st.MTU != 1450 {
		t.Fatalf("status after the first sync: %+v", st)
	}
	fileInfo, _ := os.Stat(w.state)

	for _, full := range []bool{false, true} {
		w.kernel.ResetCalls()
		w.nft.LastTransaction = nil
		patches := w.api.patchCount()
		res, err := a.Sync(ctx, full)
		if err != nil {
			t.Fatal(err)
		}
		if res.Wrote() || len(w.kernel.Calls()) > 0 || w.nft.LastTransaction != nil || w.api.patchCount() != patches {
			t.Errorf("no-op sync (full=%v) wrote: %+v, kernel calls %v, nft %v, patches %d->%d",
				full, res, w.kernel.Calls(), w.nft.LastTransaction, patches, w.api.patchCount())
		}
		if now, _ := os.Stat(w.state); !now.ModTime().Equal(fileInfo.ModTime()) {
			t.Errorf("no-op sync rewrote the node state file")
		}
	}

	// A new agent process adopts the data plane: its first (full) sync writes nothing.
	w.kernel.ResetCalls()
	w.nft.LastTransaction = nil
	res, err = w.newAgent(nil).Sync(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Wrote() || len(w.kernel.Calls()) > 0 || w.nft.LastTransaction != nil {
		t.Errorf("a restarted agent rewrote the data plane: %+v, kernel calls %v", res, w.kernel.Calls())
	}
}

func TestSyncFollowsChanges(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, v1.RoutingAuto)
	a := w.newAgent(nil)
	if _, err := a.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	// The operator serves a new generation in Direct mode: the VXLAN device goes, the pod MTU
	// grows, node-3 (another subnet) becomes unroutable.
	w.api.mu.Lock()
	w.api.in.ClusterNetwork = effectiveNetwork(v1.RoutingDirect, 2)
	w.api.mu.Unlock()
	res, err := a.Sync(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Plane(PlaneRoutes).Changes == 0 || res.Plane(PlaneMasquerade).Wrote || !res.Plane(PlaneCNI).Wrote || !res.StatusPatched {
		t.Errorf("mode change: %+v", res)
	}
	st := w.api.status("node-1")
	rp := meta.FindStatusCondition(st.Conditions, v1.ConditionRoutesProgrammed)
	if st.ProgrammedGeneration != 2 || st.MTU != 1500 || rp.Reason != v1.ReasonPartiallyRouted {
		t.Errorf("status after the mode change: %+v", st)
	}
	if dev, _ := w.kernel.GetVXLAN(routing.VXLANDeviceName); dev != nil {
		t.Errorf("VXLAN device left in Direct mode")
	}

	// Masquerade turned off: the table goes.
	w.api.mu.Lock()
	cn := effectiveNetwork(v1.RoutingDirect, 3)
	cn.Status.Effective.Routing.Masquerade = ptr.To(false)
	w.api.in.ClusterNetwork = cn
	w.api.mu.Unlock()
	if _, err := a.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.nft.List(ctx, "chains"); !knftables.IsNotFound(err) {
		t.Errorf("masquerade table still there with masquerading off: %v", err)
	}
}

func TestWaitingProgramsNothing(t *testing.T) {
	w := newWorld(t, v1.RoutingAuto)
	w.api.in.NodeNetworks[0].Spec.PodCIDRs = nil
	_, err := w.newAgent(nil).Sync(context.Background(), true)
	var waiting *WaitingError
	if !errors.As(err, &waiting) || waiting.Reason != v1.ReasonWaitingForPodCIDRs {
		t.Fatalf("got %v, want waiting for pod CIDRs", err)
	}
	if len(w.kernel.Calls()) > 0 || w.nft.LastTransaction != nil {
		t.Errorf("programmed while waiting: %v", w.kernel.Calls())
	}
	if _, err := os.Stat(w.state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("wrote a node state without pod CIDRs")
	}
	r := meta.FindStatusCondition(w.api.status("node-1").Conditions, v1.ConditionNodeReady)
	if r == nil || r.Status != "False" || r.Reason != v1.ReasonWaitingForPodCIDRs {
		t.Errorf("Ready while waiting: %+v", r)
	}
}

// flakyRoutes fails the first failures syncs, and records when each sync ran and whether a full
// resync was asked for before it.
type flakyRoutes struct {
	inner    RouteSyncer
	mu       sync.Mutex
	failures int
	calls    []time.Time
	fullAsk  []bool
	askFull  bool
}

func (f *flakyRoutes) RequestFullSync() {
	f.mu.Lock()
	f.askFull = true
	f.mu.Unlock()
	f.inner.RequestFullSync()
}

func (f *flakyRoutes) Sync(cfg routing.Config) (routing.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, time.Now())
	f.fullAsk = append(f.fullAsk, f.askFull)
	f.askFull = false
	if len(f.calls) <= f.failures {
		return routing.Plan{}, errors.New("injected netlink failure")
	}
	return f.inner.Sync(cfg)
}

func TestFailureRetriesWithBackoffAndFullResync(t *testing.T) {
	w := newWorld(t, v1.RoutingAuto)
	reg := prometheus.NewRegistry()
	flaky := &flakyRoutes{inner: routing.NewSyncer(w.kernel), failures: 3}
	a := w.newAgentWith(reg, flaky, masquerade.New(w.nft))
	a.MinBackoff, a.MaxBackoff = 20*time.Millisecond, time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testnet.Poll(10*time.Second, 5*time.Millisecond, a.Ready)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !a.Ready() {
		t.Fatalf("never recovered")
	}
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	if len(flaky.calls) != 4 {
		t.Fatalf("got %d route syncs, want 3 failures and 1 success", len(flaky.calls))
	}
	for i, full := range flaky.fullAsk {
		if !full {
			t.Errorf("route sync %d was not a full resync", i)
		}
	}
	for i := 1; i < len(flaky.calls); i++ {
		want := a.MinBackoff << (i - 1)
		if gap := flaky.calls[i].Sub(flaky.calls[i-1]); gap < want {
			t.Errorf("retry %d came after %s, want a backoff of at least %s", i, gap, want)
		}
	}
	if got := testutil.ToFloat64(a.Metrics.SyncErrors); got != 3 {
		t.Errorf("sync errors metric %v, want 3", got)
	}
	st := w.api.status("node-1")
	if !meta.IsStatusConditionTrue(st.Conditions, v1.ConditionNodeReady) || st.LastError != "" {
		t.Errorf("status after recovery: %+v", st)
	}
}

func TestEventsDoNotBypassBackoff(t *testing.T) {
	w := newWorld(t, v1.RoutingAuto)
	flaky := &flakyRoutes{inner: routing.NewSyncer(w.kernel), failures: 2}
	a := w.newAgentWith(nil, flaky, masquerade.New(w.nft))
	a.MinBackoff, a.MaxBackoff = 100*time.Millisecond, time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testnet.Poll(10*time.Second, time.Millisecond, func() bool {
		a.MarkDirty() // a storm of API events while the agent backs off
		return a.Ready()
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	if !a.Ready() || len(flaky.calls) < 3 {
		t.Fatalf("ready %v after %d route syncs", a.Ready(), len(flaky.calls))
	}
	if gap := flaky.calls[1].Sub(flaky.calls[0]); gap < a.MinBackoff {
		t.Errorf("an event bypassed the backoff: retry after %s, want at least %s", gap, a.MinBackoff)
	}
}
