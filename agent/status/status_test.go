package status

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

var ignoreTransition = cmpopts.IgnoreFields(metav1.Condition{}, "LastTransitionTime")

func cond(t, s, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(s), Reason: reason, Message: msg, ObservedGeneration: 2}
}

var goodRoutes = Routes{Count: 4, Uplink: "eth0", ProgrammedGeneration: 5}

// good is a sync of the routes, masquerade and CNI planes that all succeeded.
func good() Observation {
	return Observation{NodeNetworkGeneration: 2, ProgrammedGeneration: 5, Uplink: "eth0", MTU: 1450, Pods: 3,
		NodeIPs: []netip.Addr{netip.MustParseAddr("10.99.0.11")},
		Planes:  []Plane{RoutesPlane(goodRoutes), MasqueradePlane(true, nil), CNIPlane(nil)}}
}

// with returns good with its planes replaced by those given (by condition type) and the others
// appended.
func with(planes ...Plane) Observation {
	o := good()
	for _, p := range planes {
		i := 0
		for i < len(o.Planes) && o.Planes[i].Condition.Type != p.Condition.Type {
			i++
		}
		if i == len(o.Planes) {
			o.Planes = append(o.Planes, p)
		} else {
			o.Planes[i] = p
		}
	}
	return o
}

var (
	routesOK = cond(v1.ConditionRoutesProgrammed, "True", v1.ReasonProgrammed, "4 routes to peers' pods programmed via uplink eth0")
	masqOK   = cond(v1.ConditionMasqueradeProgrammed, "True", v1.ReasonProgrammed, "traffic from pods to outside the cluster is masqueraded to the node IP")
	cniOK    = cond(v1.ConditionCNIConfigured, "True", v1.ReasonProgrammed, "plexus-cni has the node's pod CIDRs and MTU")
	readyOK  = cond(v1.ConditionNodeReady, "True", v1.ReasonProgrammed, "pod network programmed for ClusterNetwork generation 5: 4 routes, pod MTU 1450, 3 pods")
)

func TestConditions(t *testing.T) {
	waiting := "no pod CIDRs yet; nothing is programmed until then"
	tests := []struct {
		name string
		o    Observation
		want []metav1.Condition
	}{{
		name: "programmed",
		o:    good(),
		want: []metav1.Condition{routesOK, masqOK, cniOK, readyOK},
	}, {
		name: "waiting for the operator: every plane says so",
		o: Observation{NodeNetworkGeneration: 2, Waiting: "WaitingForPodCIDRs", WaitingMessage: "no pod CIDRs yet",
			Planes: []Plane{NotRun(v1.ConditionRoutesProgrammed), NotRun(v1.ConditionServicesProgrammed)}},
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", "WaitingForPodCIDRs", waiting),
			cond(v1.ConditionServicesProgrammed, "False", "WaitingForPodCIDRs", waiting),
			cond(v1.ConditionNodeReady, "False", "WaitingForPodCIDRs", waiting),
		},
	}, {
		name: "failed before any plane ran",
		o: Observation{NodeNetworkGeneration: 2, Err: errors.New("no uplink"),
			Planes: []Plane{NotRun(v1.ConditionRoutesProgrammed)}},
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", v1.ReasonSyncFailed, "nothing is programmed: no uplink (retrying with backoff)"),
			cond(v1.ConditionNodeReady, "False", v1.ReasonSyncFailed, "nothing is programmed: no uplink (retrying with backoff)"),
		},
	}, {
		name: "routing failed",
		o:    with(RoutesPlane(Routes{Err: errors.New("add route: file exists")})),
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", v1.ReasonRoutingFailed, "add route: file exists (retrying with backoff)"),
			masqOK, cniOK,
			cond(v1.ConditionNodeReady, "False", v1.ReasonRoutingFailed, "routes are not programmed: add route: file exists (retrying with backoff)"),
		},
	}, {
		name: "masquerade failed: routes still programmed",
		o:    with(MasqueradePlane(true, errors.New("nft: boom"))),
		want: []metav1.Condition{
			routesOK,
			cond(v1.ConditionMasqueradeProgrammed, "False", v1.ReasonMasqueradeFailed, "nft: boom (retrying with backoff)"),
			cniOK,
			cond(v1.ConditionNodeReady, "False", v1.ReasonMasqueradeFailed, "nft: boom (retrying with backoff)"),
		},
	}, {
		name: "masquerading off",
		o:    with(MasqueradePlane(false, nil)),
		want: []metav1.Condition{
			routesOK,
			cond(v1.ConditionMasqueradeProgrammed, "True", v1.ReasonMasqueradeDisabled, "routing.masquerade is off: pods leave the cluster with their own addresses"),
			cniOK, readyOK,
		},
	}, {
		name: "CNI node state failed",
		o:    with(CNIPlane(errors.New("read-only file system"))),
		want: []metav1.Condition{
			routesOK, masqOK,
			cond(v1.ConditionCNIConfigured, "False", v1.ReasonCNIFailed, "read-only file system (retrying with backoff)"),
			cond(v1.ConditionNodeReady, "False", v1.ReasonCNIFailed, "read-only file system (retrying with backoff)"),
		},
	}, {
		name: "some peers unroutable: not Ready, and RoutesProgrammed says which",
		o: with(RoutesPlane(Routes{Count: 4, Uplink: "eth0", ProgrammedGeneration: 5,
			Unroutable: []string{"peer n3 pod CIDR 10.244.2.0/24: not on the uplink subnet"}})),
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", v1.ReasonPartiallyRouted,
				"1 pod CIDRs of peers have no route: peer n3 pod CIDR 10.244.2.0/24: not on the uplink subnet"),
			masqOK, cniOK,
			cond(v1.ConditionNodeReady, "False", v1.ReasonPartiallyRouted,
				"pods on some peers are unreachable from this node (4 routes programmed for ClusterNetwork generation 5); see RoutesProgrammed"),
		},
	}, {
		name: "two planes failed: Ready names the first",
		o:    with(RoutesPlane(Routes{Err: errors.New("boom")}), MasqueradePlane(true, errors.New("nft: boom"))),
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", v1.ReasonRoutingFailed, "boom (retrying with backoff)"),
			cond(v1.ConditionMasqueradeProgrammed, "False", v1.ReasonMasqueradeFailed, "nft: boom (retrying with backoff)"),
			cniOK,
			cond(v1.ConditionNodeReady, "False", v1.ReasonRoutingFailed, "routes are not programmed: boom (retrying with backoff)"),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, Conditions(tt.o, 2), ignoreTransition); d != "" {
				t.Errorf("conditions (-want +got):\n%s", d)
			}
		})
	}
}

func TestServicesConditions(t *testing.T) {
	tests := []struct {
		name string
		o    Observation
		want []metav1.Condition
	}{{
		name: "programmed with nftables: Ready",
		o:    with(ServicesPlane(Services{Mode: "nftables", Services: 3, ServicePorts: 5, Endpoints: 7})),
		want: []metav1.Condition{
			routesOK, masqOK, cniOK,
			cond(v1.ConditionServicesProgrammed, "True", v1.ReasonProgrammed, "every Service is programmed with nftables"),
			readyOK,
		},
	}, {
		name: "mode none: programmed (nothing), Ready",
		o:    with(ServicesPlane(Services{Mode: "none"})),
		want: []metav1.Condition{
			routesOK, masqOK, cniOK,
			cond(v1.ConditionServicesProgrammed, "True", v1.ReasonServiceProxyDisabled,
				"serviceProxy mode none: Plexus programs no Service on this node (another proxy must)"),
			readyOK,
		},
	}, {
		name: "ipvs without kernel support: not Ready, the reason names it",
		o: with(ServicesPlane(Services{Mode: "ipvs", Unavailable: true,
			Err: errors.New("serviceProxy mode ipvs needs IPVS (CONFIG_IP_VS; no /proc/net/ip_vs), which this node's kernel lacks")})),
		want: []metav1.Condition{
			routesOK, masqOK, cniOK,
			cond(v1.ConditionServicesProgrammed, "False", v1.ReasonServiceProxyUnavailable,
				"serviceProxy mode ipvs needs IPVS (CONFIG_IP_VS; no /proc/net/ip_vs), which this node's kernel lacks"),
			cond(v1.ConditionNodeReady, "False", v1.ReasonServiceProxyUnavailable,
				"Services are not programmed: serviceProxy mode ipvs needs IPVS (CONFIG_IP_VS; no /proc/net/ip_vs), which this node's kernel lacks"),
		},
	}, {
		name: "nft failed: not Ready",
		o:    with(ServicesPlane(Services{Mode: "nftables", Err: errors.New("nft: boom")})),
		want: []metav1.Condition{
			routesOK, masqOK, cniOK,
			cond(v1.ConditionServicesProgrammed, "False", v1.ReasonServiceProxyFailed, "nft: boom (retrying with backoff)"),
			cond(v1.ConditionNodeReady, "False", v1.ReasonServiceProxyFailed, "Services are not programmed: nft: boom (retrying with backoff)"),
		},
	}, {
		name: "routes failed: Services still programmed and reported",
		o:    with(RoutesPlane(Routes{Err: errors.New("boom")}), ServicesPlane(Services{Mode: "nftables"})),
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", v1.ReasonRoutingFailed, "boom (retrying with backoff)"),
			masqOK, cniOK,
			cond(v1.ConditionServicesProgrammed, "True", v1.ReasonProgrammed, "every Service is programmed with nftables"),
			cond(v1.ConditionNodeReady, "False", v1.ReasonRoutingFailed, "routes are not programmed: boom (retrying with backoff)"),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, Conditions(tt.o, 2), ignoreTransition); d != "" {
				t.Errorf("conditions (-want +got):\n%s", d)
			}
		})
	}
}

func TestBuildServices(t *testing.T) {
	o := with(ServicesPlane(Services{Mode: "nftables", Services: 2, Endpoints: 6, Supported: []string{"ClusterIP"},
		Unsupported: []string{"SessionAffinityClientIPv6"}}))
	s := Build(v1.NodeNetworkStatus{}, o)
	if s.Services != 2 || s.Endpoints != 6 || s.ServiceProxy == nil || s.ServiceProxy.Mode != "nftables" ||
		len(s.ServiceProxy.UnsupportedFeatures) != 1 || s.LastError != "" {
		t.Fatalf("status: %+v", s)
	}
	// A failed service sync keeps the counts, says why in lastError, and does not hold back
	// the generation (Services are not part of it).
	o = with(ServicesPlane(Services{Mode: "ipvs", Err: errors.New("no IPVS"), Unavailable: true}))
	f := Build(s, o)
	if f.Services != 2 || f.ServiceProxy.Mode != "ipvs" || f.LastError != "no IPVS" || !Changed(s, f) || f.ProgrammedGeneration != 5 {
		t.Fatalf("failed status: %+v", f)
	}
}

func TestBuild(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := good()
	o.Finished, o.Duration = t0, 30*time.Millisecond
	first := Build(v1.NodeNetworkStatus{}, o)
	if first.ProgrammedGeneration != 5 || first.ObservedGeneration != 2 || first.UplinkInterface != "eth0" || first.MTU != 1450 ||
		first.Routes != 4 || first.Pods != 3 || first.LastError != "" || first.NodeIPs[0] != "10.99.0.11" || !first.LastSyncTime.Time.Equal(t0) {
		t.Fatalf("first status: %+v", first)
	}

	// The same observation later changes nothing a reader cares about: no patch.
	o.Finished = t0.Add(time.Minute)
	again := Build(first, o)
	if Changed(first, again) {
		t.Errorf("an identical sync changed the status: %s", cmp.Diff(first, again))
	}
	if !again.Conditions[0].LastTransitionTime.Time.Equal(t0) {
		t.Errorf("LastTransitionTime moved without a transition")
	}

	// A failed routing sync keeps the route count and programmedGeneration of the last good one.
	bad := with(RoutesPlane(Routes{Err: errors.New("boom")}))
	bad.ProgrammedGeneration, bad.Finished = 6, t0.Add(2*time.Minute)
	failed := Build(again, bad)
	if !Changed(again, failed) || failed.ProgrammedGeneration != 5 || failed.Routes != 4 || failed.LastError != "boom" {
		t.Errorf("failed status: %+v", failed)
	}
	if c := meta.FindStatusCondition(failed.Conditions, v1.ConditionNodeReady); c.Status != metav1.ConditionFalse || !c.LastTransitionTime.Time.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("Ready after failure: %+v", c)
	}
	// So does a failed masquerade plane: the generation is not programmed until it is.
	if m := Build(again, with(MasqueradePlane(true, errors.New("nft: boom")))); m.ProgrammedGeneration != 5 || m.Routes != 4 {
		t.Errorf("masquerade failed: %+v", m)
	}
	// Two planes failing: lastError names both.
	if two := Build(again, with(RoutesPlane(Routes{Err: errors.New("boom")}), CNIPlane(errors.New("disk full")))); two.LastError != "boom; disk full" {
		t.Errorf("lastError of two failures: %q", two.LastError)
	}
	// A sync that programmed nothing keeps every counter.
	nothing := Observation{NodeNetworkGeneration: 2, Err: errors.New("no uplink"), Finished: t0.Add(2 * time.Minute)}
	if n := Build(again, nothing); n.Routes != 4 || n.UplinkInterface != "eth0" || n.MTU != 1450 || n.ProgrammedGeneration != 5 || n.LastError != "no uplink" {
		t.Errorf("nothing programmed: %+v", n)
	}

	// Recovery clears the error.
	o.Finished = t0.Add(3 * time.Minute)
	if rec := Build(failed, o); rec.LastError != "" || !Changed(failed, rec) {
		t.Errorf("recovered status: %+v", rec)
	}
}

func TestOnlyCountsChanged(t *testing.T) {
	base := v1.NodeNetworkStatus{ProgrammedGeneration: 3, Routes: 4, Services: 2,
		Conditions: []metav1.Condition{{Type: v1.ConditionNodeReady, Status: metav1.ConditionTrue, Reason: "AsExpected"}}}
	counts := *base.DeepCopy()
	counts.Services, counts.Endpoints = 3, 7
	gen := *counts.DeepCopy()
	gen.ProgrammedGeneration = 4
	cond := *base.DeepCopy()
	cond.Conditions[0].Status = metav1.ConditionFalse
	for _, c := range []struct {
		name string
		next v1.NodeNetworkStatus
		want bool
	}{
		{"nothing changed", *base.DeepCopy(), false},
		{"counts only", counts, true},
		{"counts and generation", gen, false},
		{"a condition", cond, false},
	} {
		if got := OnlyCountsChanged(base, c.next); got != c.want {
			t.Errorf("%s: OnlyCountsChanged = %v, want %v", c.name, got, c.want)
		}
	}
}
