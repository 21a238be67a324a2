package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/policy"
	"github.com/plexus-net/plexus/agent/policy/conntrack"
	policynft "github.com/plexus-net/plexus/agent/policy/nftables"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// The policy test cluster, on newWorld's nodes: namespace a holds web (node-1, app=web) and
// client (node-2); namespace b holds other (node-1, app=other).
var (
	webIP    = netip.MustParseAddr("10.244.0.5")
	otherIP  = netip.MustParseAddr("10.244.0.6")
	clientIP = netip.MustParseAddr("10.244.1.5")
	node1IP  = netip.MustParseAddr("10.99.0.11")
)

func policyPods() []*corev1.Pod {
	return []*corev1.Pod{
		pt.Pod("a", "web", "node-1", map[string]string{"app": "web"}, []netip.Addr{webIP}),
		pt.Pod("a", "client", "node-2", map[string]string{"app": "client"}, []netip.Addr{clientIP}),
		pt.Pod("b", "other", "node-1", map[string]string{"app": "other"}, []netip.Addr{otherIP}),
	}
}

// denyIngress is a default-deny-ingress policy of namespace a.
func denyIngress() *networkingv1.NetworkPolicy {
	return pt.NP("a", "deny", "", pt.IngressOnly, nil, nil)
}

// policyWorld is newWorld's node-1 agent with the NetworkPolicy plane on a fake table and a fake
// conntrack table.
type policyWorld struct {
	*world
	a     *Agent
	table *knftables.Fake
	ct    *countingConntrack
	plane *PolicyPlane
}

func newPolicyWorld(t *testing.T) *policyWorld {
	w := newWorld(t, v1.RoutingAuto)
	w.api.in.Pods = policyPods()
	w.api.in.Namespaces = []*corev1.Namespace{pt.Namespace("a", nil), pt.Namespace("b", nil)}
	pw := &policyWorld{world: w, table: knftables.NewFake(policynft.TableFamily, policynft.TableName), ct: &countingConntrack{}}
	pw.plane = NewPolicyPlane(policynft.New(pw.table), pw.ct)
	pw.a = w.newAgent(nil)
	pw.a.Planes = append(pw.a.Planes, pw.plane)
	return pw
}

// setPolicies replaces the cluster's NetworkPolicies.
func (w *policyWorld) setPolicies(nps ...*networkingv1.NetworkPolicy) {
	w.api.mu.Lock()
	defer w.api.mu.Unlock()
	w.api.in.NetworkPolicies = nps
}

// setPolicyConfig sets networkPolicy in the served configuration.
func (w *policyWorld) setPolicyConfig(np *v1.NetworkPolicy) {
	w.api.mu.Lock()
	defer w.api.mu.Unlock()
	w.api.in.ClusterNetwork.Status.Effective.NetworkPolicy = np
}

// established are the connections the conntrack table starts with: client → web:80 (denied by
// denyIngress), client → other:80 (b is not isolated), node-1 → web:80 (the node is always
// allowed).
func established() []policy.Flow {
	return []policy.Flow{
		{Src: clientIP, Dst: webIP, Protocol: policy.TCP, Port: 80},
		{Src: clientIP, Dst: otherIP, Protocol: policy.TCP, Port: 80},
		{Src: node1IP, Dst: webIP, Protocol: policy.TCP, Port: 80},
	}
}

func (w *policyWorld) sync(t *testing.T, full bool) SyncResult {
	t.Helper()
	res, err := w.a.Sync(context.Background(), full)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

// isolated reports whether the fake table sends traffic to ip through a policy: its address is
// an element of the ingress pod map.
func (w *policyWorld) isolated(ip netip.Addr) bool {
	return strings.Contains(w.table.Dump(), "element inet "+policynft.TableName+" ingress-pods-v4 { "+ip.String()+" ")
}

// Enabled: the policy is programmed and established connections it denies are cut; disabled:
// the table goes and the condition says so; enabled again: enforcement is back.
func TestPolicyPlaneEnforcesRemovesAndRestores(t *testing.T) {
	w := newPolicyWorld(t)
	w.setPolicies(denyIngress())
	w.ct.Flows = established()
	res := w.sync(t, true)
	if !res.Plane(PlanePolicy).Wrote || !w.isolated(webIP) || w.isolated(otherIP) {
		t.Fatalf("first sync: %+v\n%s", res.Planes, w.table.Dump())
	}
	if want := established()[1:]; !slices.Equal(w.ct.Flows, want) {
		t.Errorf("conntrack after the policy: %v, want %v (client → web cut)", w.ct.Flows, want)
	}
	st := w.api.status("node-1")
	wantCondition(t, st.Conditions, v1.ConditionPoliciesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionNodeReady, metav1.ConditionTrue, v1.ReasonProgrammed)
	if st.Policies != 1 || st.IsolatedPods != 1 || st.PolicyRules == 0 || st.PolicyObjects == 0 {
		t.Errorf("policy counts: policies %d, isolated pods %d, rules %d, objects %d", st.Policies, st.IsolatedPods, st.PolicyRules, st.PolicyObjects)
	}

	// No-op syncs write nothing.
	for _, full := range []bool{false, true} {
		w.table.LastTransaction = nil
		if res := w.sync(t, full); res.Plane(PlanePolicy).Wrote || w.table.LastTransaction != nil {
			t.Errorf("no-op sync (full=%v) wrote the policy table", full)
		}
	}

	w.setPolicyConfig(&v1.NetworkPolicy{Enabled: ptr.To(false)})
	w.ct.Flows = established()
	if res := w.sync(t, false); !res.Plane(PlanePolicy).Wrote || w.table.Table != nil {
		t.Fatalf("disabled: wrote %v, table left:\n%s", res.Plane(PlanePolicy).Wrote, w.table.Dump())
	}
	st = w.api.status("node-1")
	wantCondition(t, st.Conditions, v1.ConditionPoliciesProgrammed, metav1.ConditionTrue, v1.ReasonPolicyDisabled)
	wantCondition(t, st.Conditions, v1.ConditionNodeReady, metav1.ConditionTrue, v1.ReasonProgrammed)
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionPoliciesProgrammed); !strings.Contains(c.Message, "networkPolicy.enabled is false") {
		t.Errorf("disabled message: %q", c.Message)
	}
	if len(w.ct.Flows) != 3 {
		t.Errorf("disabling cut connections: %v", w.ct.Flows)
	}
	if res := w.sync(t, false); res.Plane(PlanePolicy).Wrote {
		t.Error("a no-op sync while disabled wrote")
	}

	w.setPolicyConfig(&v1.NetworkPolicy{Enabled: ptr.To(true)})
	if res := w.sync(t, false); !res.Plane(PlanePolicy).Wrote || !w.isolated(webIP) {
		t.Fatalf("enabled again: %+v\n%s", res.Planes, w.table.Dump())
	}
	if want := established()[1:]; !slices.Equal(w.ct.Flows, want) {
		t.Errorf("conntrack after enabling again: %v, want %v", w.ct.Flows, want)
	}
	wantCondition(t, w.api.status("node-1").Conditions, v1.ConditionPoliciesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)

	// Deleting the policy writes, and cuts nothing: it stops allowing nothing, and with no pod
	// isolated the conntrack table is not even read.
	w.setPolicies()
	w.ct.Flows = established()
	reads := w.ct.reads
	if res := w.sync(t, false); !res.Plane(PlanePolicy).Wrote || w.isolated(webIP) || len(w.ct.Flows) != 3 || w.ct.reads != reads {
		t.Errorf("policy deleted: wrote %v, isolated %v, conntrack %v, read %d times", res.Plane(PlanePolicy).Wrote, w.isolated(webIP),
			w.ct.Flows, w.ct.reads-reads)
	}
}

// countingConntrack is the fake conntrack table counting its reads.
type countingConntrack struct {
	conntrack.Fake
	reads int
}

func (c *countingConntrack) DeleteMatching(family uint8, match func(policy.Flow) bool) (uint, error) {
	c.reads++
	return c.Fake.DeleteMatching(family, match)
}

// keepEstablishedConnections: a new deny stops new connections only.
func TestPolicyPlaneKeepsEstablishedConnectionsWhenTold(t *testing.T) {
	w := newPolicyWorld(t)
	w.setPolicyConfig(&v1.NetworkPolicy{KeepEstablishedConnections: ptr.To(true)})
	w.sync(t, true)
	w.ct.Flows = established()
	w.setPolicies(denyIngress())
	if res := w.sync(t, false); !res.Plane(PlanePolicy).Wrote || !w.isolated(webIP) {
		t.Fatalf("policy not programmed: %+v", res.Planes)
	}
	if len(w.ct.Flows) != 3 {
		t.Errorf("connections cut although kept: %v", w.ct.Flows)
	}
}

// failingEnforcer is an enforcer the kernel refuses until fixed.
type failingEnforcer struct {
	PolicyEnforcer
	broken bool
}

func (f *failingEnforcer) Sync(ctx context.Context, m *policy.Model, full bool) (policy.SyncResult, error) {
	if f.broken {
		return policy.SyncResult{}, errors.New("injected policy nft failure")
	}
	return f.PolicyEnforcer.Sync(ctx, m, full)
}

// A failing policy table makes PoliciesProgrammed False and stops no other plane.
func TestFailingPolicyPlaneStopsNoOtherPlane(t *testing.T) {
	w := newPolicyWorld(t)
	enf := &failingEnforcer{PolicyEnforcer: policynft.New(w.table), broken: true}
	w.plane = NewPolicyPlane(enf, w.ct)
	w.a.Planes[len(w.a.Planes)-1] = w.plane
	proxyNFT := withServices(w.a)
	w.setPolicies(denyIngress())
	w.ct.Flows = established()

	res, err := w.a.Sync(context.Background(), true)
	if err == nil || !strings.Contains(err.Error(), "policies plane") || !strings.Contains(err.Error(), "injected policy nft failure") {
		t.Fatalf("sync error %v, want the policy plane's failure", err)
	}
	if res.Plane(PlaneRoutes).Changes == 0 || !res.Plane(PlaneServices).Wrote || !res.Plane(PlaneMasquerade).Wrote || proxyNFT.Table == nil {
		t.Errorf("planes beside a failing policy plane: %+v", res.Planes)
	}
	if len(w.ct.Flows) != 3 {
		t.Errorf("connections cut although nothing was programmed: %v", w.ct.Flows)
	}
	st := w.api.status("node-1")
	wantCondition(t, st.Conditions, v1.ConditionPoliciesProgrammed, metav1.ConditionFalse, v1.ReasonPolicyFailed)
	wantCondition(t, st.Conditions, v1.ConditionServicesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionRoutesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionNodeReady, metav1.ConditionFalse, v1.ReasonPolicyFailed)
	if st.ProgrammedGeneration != 1 {
		t.Errorf("programmedGeneration %d: NetworkPolicies are not part of the ClusterNetwork generation", st.ProgrammedGeneration)
	}

	enf.broken = false
	if _, err := w.a.Sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if !w.isolated(webIP) || len(w.ct.Flows) != 2 {
		t.Errorf("after recovery: isolated %v, conntrack %v", w.isolated(webIP), w.ct.Flows)
	}
	st = w.api.status("node-1")
	wantCondition(t, st.Conditions, v1.ConditionPoliciesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionNodeReady, metav1.ConditionTrue, v1.ReasonProgrammed)
}

// A policy the compiler cannot read fails closed, and the condition names it.
func TestPolicyPlaneNamesPoliciesThatFailClosed(t *testing.T) {
	w := newPolicyWorld(t)
	bad := pt.NP("a", "bad-selector", "", pt.IngressOnly, nil, nil)
	bad.Spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}
	w.setPolicies(bad)
	w.sync(t, true)
	c := meta.FindStatusCondition(w.api.status("node-1").Conditions, v1.ConditionPoliciesProgrammed)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonPolicyUnreadable || !strings.Contains(c.Message, "a/bad-selector") {
		t.Fatalf("condition: %+v", c)
	}
	if !w.isolated(webIP) || w.isolated(otherIP) {
		t.Errorf("the unreadable policy of a does not isolate a's pods alone:\n%s", w.table.Dump())
	}
}

// The compile seam: a compiler set on the plane is the one the plane uses.
func TestPolicyPlaneUsesItsCompiler(t *testing.T) {
	w := newPolicyWorld(t)
	var calls int
	var nodeIPs []netip.Addr
	w.plane.Compile = func(in policy.Input) *policy.Model { calls++; nodeIPs = in.NodeIPs; return policy.Compile(in) }
	w.setPolicies(denyIngress())
	w.sync(t, true)
	if calls != 1 || !w.isolated(webIP) {
		t.Fatalf("compiler called %d times, isolated %v", calls, w.isolated(webIP))
	}
	for _, a := range []string{"10.99.0.11", "fd10:99::11", "10.244.0.0", "fd10:244::", "169.254.1.1", "fe80::1"} {
		if !slices.Contains(nodeIPs, netip.MustParseAddr(a)) {
			t.Errorf("node IPs %v lack %s", nodeIPs, a)
		}
	}
}

// EnforcePod isolates a pod the cache holds without addresses yet, and keeps it isolated until
// the Pod shows its own.
func TestEnforcePodBeforeThePodHasAddresses(t *testing.T) {
	w := newPolicyWorld(t)
	w.setPolicies(denyIngress())
	fresh := pt.Pod("a", "fresh", "node-1", map[string]string{"app": "fresh"}, nil)
	w.api.in.Pods = append(w.api.in.Pods, fresh)
	ctx := context.Background()
	freshIP := netip.MustParseAddr("10.244.0.7")
	if err := w.plane.EnforcePod(ctx, "a", "fresh", []netip.Addr{freshIP}); err == nil {
		t.Error("EnforcePod before the first sync succeeded")
	}
	w.sync(t, true)
	if err := w.plane.EnforcePod(ctx, "a", "missing", []netip.Addr{freshIP}); err == nil {
		t.Error("EnforcePod of a Pod the cache lacks succeeded")
	}
	if err := w.plane.EnforcePod(ctx, "a", "fresh", []netip.Addr{freshIP}); err != nil || !w.isolated(freshIP) {
		t.Fatalf("EnforcePod: %v, isolated %v", err, w.isolated(freshIP))
	}
	// A sync before the kubelet reports the address keeps the pod isolated.
	w.sync(t, false)
	if !w.isolated(freshIP) {
		t.Fatal("a sync dropped the pending pod's isolation")
	}
	// The Pod shows its address: the pending one is forgotten, the Pod's is used.
	w.api.mu.Lock()
	shown := *fresh
	shown.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.8"}}
	w.api.in.Pods[len(w.api.in.Pods)-1] = &shown
	w.api.mu.Unlock()
	w.sync(t, false)
	if w.isolated(freshIP) || !w.isolated(netip.MustParseAddr("10.244.0.8")) {
		t.Errorf("after the Pod shows its address:\n%s", w.table.Dump())
	}

	w.setPolicyConfig(&v1.NetworkPolicy{Enabled: ptr.To(false)})
	w.sync(t, false)
	if err := w.plane.EnforcePod(ctx, "a", "fresh", []netip.Addr{freshIP}); err != nil || w.table.Table != nil {
		t.Errorf("EnforcePod while disabled: %v, table %v", err, w.table.Table != nil)
	}
}
