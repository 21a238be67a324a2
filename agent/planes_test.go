package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-net/plexus/agent/masquerade"
	"github.com/plexus-net/plexus/agent/routing"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// brokenMasquerade is a masquerade table the kernel refuses until fixed.
type brokenMasquerade struct {
	inner  Masquerader
	broken bool
}

func (b *brokenMasquerade) Sync(ctx context.Context, cfg masquerade.Config) (bool, error) {
	if b.broken {
		return false, errors.New("injected nft failure")
	}
	return b.inner.Sync(ctx, cfg)
}

func (b *brokenMasquerade) Remove(ctx context.Context) error {
	if b.broken {
		return errors.New("injected nft failure")
	}
	return b.inner.Remove(ctx)
}

// wantCondition fails t unless conds has a condition of type typ with status and reason.
func wantCondition(t *testing.T, conds []metav1.Condition, typ string, s metav1.ConditionStatus, reason string) {
	t.Helper()
	c := meta.FindStatusCondition(conds, typ)
	if c == nil || c.Status != s || c.Reason != reason {
		t.Errorf("condition %s: got %+v, want %s %s", typ, c, s, reason)
	}
}

// A broken masquerade table stops no other plane: routes, the CNI node state and Services are
// programmed, and every plane reports in its own condition.
func TestFailingMasqueradeStopsNoOtherPlane(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, v1.RoutingAuto)
	masq := &brokenMasquerade{inner: masquerade.New(w.nft), broken: true}
	a := w.newAgentWith(nil, routing.NewSyncer(w.kernel), masq)
	proxyNFT := withServices(a)

	res, err := a.Sync(ctx, true)
	if err == nil || !strings.Contains(err.Error(), "masquerade") || !strings.Contains(err.Error(), "injected nft failure") {
		t.Fatalf("sync error %v, want the masquerade plane's failure", err)
	}
	if res.Plane(PlaneRoutes).Changes == 0 || !res.Plane(PlaneCNI).Wrote || !res.Plane(PlaneServices).Wrote || res.Plane(PlaneMasquerade).Wrote {
		t.Errorf("planes: %+v", res.Planes)
	}
	if routes, _ := w.kernel.ListRoutes(); proxyNFT.Table == nil || len(routes) == 0 {
		t.Fatalf("Services or routes not programmed beside a broken masquerade table")
	}
	if a.Ready() {
		t.Error("ready after a failed sync")
	}
	st := w.api.status("node-1")
	wantCondition(t, st.Conditions, v1.ConditionMasqueradeProgrammed, metav1.ConditionFalse, v1.ReasonMasqueradeFailed)
	wantCondition(t, st.Conditions, v1.ConditionServicesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionRoutesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionCNIConfigured, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionNodeReady, metav1.ConditionFalse, v1.ReasonMasqueradeFailed)
	if st.Services != 1 || st.Endpoints != 2 || st.Routes == 0 || !strings.Contains(st.LastError, "injected nft failure") {
		t.Errorf("status: %+v", st)
	}
	if st.ProgrammedGeneration != 0 {
		t.Errorf("programmedGeneration %d while the masquerade plane of that generation fails", st.ProgrammedGeneration)
	}

	// Fixed: the next sync writes the table, and only it.
	masq.broken = false
	res, err = a.Sync(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Plane(PlaneMasquerade).Wrote || res.Plane(PlaneRoutes).Changes != 0 || res.Plane(PlaneServices).Wrote || res.Plane(PlaneCNI).Wrote {
		t.Errorf("recovery sync: %+v", res.Planes)
	}
	st = w.api.status("node-1")
	wantCondition(t, st.Conditions, v1.ConditionMasqueradeProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionNodeReady, metav1.ConditionTrue, v1.ReasonProgrammed)
	if st.ProgrammedGeneration != 1 || st.LastError != "" {
		t.Errorf("status after recovery: %+v", st)
	}
}

// Failing routes stop neither the masquerade table nor Services, and hold back the generation.
func TestFailingRoutesStopNoOtherPlane(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, v1.RoutingAuto)
	a := w.newAgentWith(nil, &flakyRoutes{inner: routing.NewSyncer(w.kernel), failures: 1}, masquerade.New(w.nft))
	proxyNFT := withServices(a)
	res, err := a.Sync(ctx, true)
	if err == nil || !strings.Contains(err.Error(), "injected netlink failure") {
		t.Fatalf("sync error %v, want the routes plane's failure", err)
	}
	if !res.Plane(PlaneMasquerade).Wrote || !res.Plane(PlaneServices).Wrote || proxyNFT.Table == nil {
		t.Errorf("planes beside failing routes: %+v", res.Planes)
	}
	st := w.api.status("node-1")
	wantCondition(t, st.Conditions, v1.ConditionRoutesProgrammed, metav1.ConditionFalse, v1.ReasonRoutingFailed)
	wantCondition(t, st.Conditions, v1.ConditionServicesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionMasqueradeProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionNodeReady, metav1.ConditionFalse, v1.ReasonRoutingFailed)
	if st.ProgrammedGeneration != 0 {
		t.Errorf("programmedGeneration %d with failing routes", st.ProgrammedGeneration)
	}
}

// The sync's log line keeps its keys and their order: test/podnetwork tells a write to the data
// plane from one to the status alone by `"routeChanges":0,"masquerade":false,"nodeState":false,`.
func TestSyncLogValues(t *testing.T) {
	r := SyncResult{Planes: []PlaneOutcome{{Name: PlaneRoutes}, {Name: PlaneMasquerade}, {Name: PlaneCNI},
		{Name: PlaneServices, Wrote: true}}, StatusPatched: true}
	got := fmt.Sprint(r.logValues()...)
	if want := fmt.Sprint("routeChanges", 0, "masquerade", false, "nodeState", false, "services", true, "status", true); got != want {
		t.Errorf("log values %s, want %s", got, want)
	}
}
