package status

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

var ignoreTransition = cmpopts.IgnoreFields(metav1.Condition{}, "LastTransitionTime")

func cond(t, s, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(s), Reason: reason, Message: msg, ObservedGeneration: 2}
}

func good() Observation {
	return Observation{NodeNetworkGeneration: 2, ProgrammedGeneration: 5, Uplink: "eth0", MTU: 1450, Routes: 4, Pods: 3,
		NodeIPs: []netip.Addr{netip.MustParseAddr("10.99.0.11")}}
}

func TestConditions(t *testing.T) {
	with := func(f func(*Observation)) Observation { o := good(); f(&o); return o }
	tests := []struct {
		name string
		o    Observation
		want []metav1.Condition
	}{{
		name: "programmed",
		o:    good(),
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "True", ReasonProgrammed, "4 routes to peers' pods programmed via uplink eth0"),
			cond(v1.ConditionNodeReady, "True", ReasonProgrammed, "pod network programmed for ClusterNetwork generation 5: 4 routes, pod MTU 1450, 3 pods"),
		},
	}, {
		name: "waiting for the operator",
		o:    Observation{NodeNetworkGeneration: 2, Waiting: "WaitingForPodCIDRs", WaitingMessage: "no pod CIDRs yet"},
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", "WaitingForPodCIDRs", "no pod CIDRs yet; nothing is programmed until then"),
			cond(v1.ConditionNodeReady, "False", "WaitingForPodCIDRs", "no pod CIDRs yet; nothing is programmed until then"),
			cond(v1.ConditionServicesProgrammed, "False", "WaitingForPodCIDRs", "no pod CIDRs yet; nothing is programmed until then"),
		},
	}, {
		name: "routing failed",
		o:    with(func(o *Observation) { o.Err, o.ErrReason = errors.New("add route: file exists"), ReasonRoutingFailed }),
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", ReasonRoutingFailed, "add route: file exists (retrying with backoff)"),
			cond(v1.ConditionNodeReady, "False", ReasonRoutingFailed, "routes are not programmed: add route: file exists (retrying with backoff)"),
		},
	}, {
		name: "masquerade failed after the routes went in",
		o:    with(func(o *Observation) { o.Err, o.ErrReason = errors.New("nft: boom"), ReasonMasqueradeFailed }),
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "True", ReasonProgrammed, "4 routes to peers' pods programmed via uplink eth0"),
			cond(v1.ConditionNodeReady, "False", ReasonMasqueradeFailed, "nft: boom (retrying with backoff)"),
		},
	}, {
		name: "some peers unroutable: not Ready, and RoutesProgrammed says which",
		o: with(func(o *Observation) {
			o.Unroutable = []string{"peer n3 pod CIDR 10.244.2.0/24: not on the uplink subnet"}
		}),
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", ReasonPartiallyRouted,
				"1 pod CIDRs of peers have no route: peer n3 pod CIDR 10.244.2.0/24: not on the uplink subnet"),
			cond(v1.ConditionNodeReady, "False", ReasonPartiallyRouted,
				"pods on some peers are unreachable from this node (4 routes programmed for ClusterNetwork generation 5); see RoutesProgrammed"),
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
	with := func(s Services) Observation { o := good(); o.Services = &s; return o }
	routes := cond(v1.ConditionRoutesProgrammed, "True", ReasonProgrammed, "4 routes to peers' pods programmed via uplink eth0")
	tests := []struct {
		name string
		o    Observation
		want []metav1.Condition
	}{{
		name: "programmed with nftables: Ready",
		o:    with(Services{Mode: "nftables", Services: 3, ServicePorts: 5, Endpoints: 7}),
		want: []metav1.Condition{
			routes,
			cond(v1.ConditionNodeReady, "True", ReasonProgrammed, "pod network programmed for ClusterNetwork generation 5: 4 routes, pod MTU 1450, 3 pods"),
			cond(v1.ConditionServicesProgrammed, "True", ReasonProgrammed, "every Service is programmed with nftables"),
		},
	}, {
		name: "mode none: programmed (nothing), Ready",
		o:    with(Services{Mode: "none"}),
		want: []metav1.Condition{
			routes,
			cond(v1.ConditionNodeReady, "True", ReasonProgrammed, "pod network programmed for ClusterNetwork generation 5: 4 routes, pod MTU 1450, 3 pods"),
			cond(v1.ConditionServicesProgrammed, "True", ReasonServiceProxyDisabled,
				"serviceProxy mode none: Plexus programs no Service on this node (another proxy must)"),
		},
	}, {
		name: "ipvs without kernel support: not Ready, the reason names it",
		o: with(Services{Mode: "ipvs", Unavailable: true,
			Err: errors.New("serviceProxy mode ipvs needs IPVS (CONFIG_IP_VS; no /proc/net/ip_vs), which this node's kernel lacks")}),
		want: []metav1.Condition{
			routes,
			cond(v1.ConditionNodeReady, "False", ReasonServiceProxyUnavailable,
				"Services are not programmed: serviceProxy mode ipvs needs IPVS (CONFIG_IP_VS; no /proc/net/ip_vs), which this node's kernel lacks"),
			cond(v1.ConditionServicesProgrammed, "False", ReasonServiceProxyUnavailable,
				"serviceProxy mode ipvs needs IPVS (CONFIG_IP_VS; no /proc/net/ip_vs), which this node's kernel lacks"),
		},
	}, {
		name: "nft failed: not Ready",
		o:    with(Services{Mode: "nftables", Err: errors.New("nft: boom")}),
		want: []metav1.Condition{
			routes,
			cond(v1.ConditionNodeReady, "False", ReasonServiceProxyFailed, "Services are not programmed: nft: boom (retrying with backoff)"),
			cond(v1.ConditionServicesProgrammed, "False", ReasonServiceProxyFailed, "nft: boom (retrying with backoff)"),
		},
	}, {
		name: "routes failed and services never reached: ServicesProgrammed untouched",
		o: func() Observation {
			o := good()
			o.Err, o.ErrReason = errors.New("boom"), ReasonRoutingFailed
			return o
		}(),
		want: []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, "False", ReasonRoutingFailed, "boom (retrying with backoff)"),
			cond(v1.ConditionNodeReady, "False", ReasonRoutingFailed, "routes are not programmed: boom (retrying with backoff)"),
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
	o := good()
	o.Services = &Services{Mode: "nftables", Services: 2, Endpoints: 6, Supported: []string{"ClusterIP"}, Unsupported: []string{"SessionAffinityClientIPv6"}}
	s := Build(v1.NodeNetworkStatus{}, o)
	if s.Services != 2 || s.Endpoints != 6 || s.ServiceProxy == nil || s.ServiceProxy.Mode != "nftables" ||
		len(s.ServiceProxy.UnsupportedFeatures) != 1 || s.LastError != "" {
		t.Fatalf("status: %+v", s)
	}
	// A failed service sync keeps the counts, says why in lastError.
	o.Services = &Services{Mode: "ipvs", Err: errors.New("no IPVS"), Unavailable: true}
	f := Build(s, o)
	if f.Services != 2 || f.ServiceProxy.Mode != "ipvs" || f.LastError != "no IPVS" || !Changed(s, f) {
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

	// A failed routing sync keeps the counters and programmedGeneration of the last good one.
	bad := Observation{NodeNetworkGeneration: 2, ProgrammedGeneration: 0, Err: errors.New("boom"), ErrReason: ReasonRoutingFailed,
		Finished: t0.Add(2 * time.Minute)}
	failed := Build(again, bad)
	if !Changed(again, failed) || failed.ProgrammedGeneration != 5 || failed.Routes != 4 || failed.LastError != "boom" {
		t.Errorf("failed status: %+v", failed)
	}
	if c := failed.Conditions[1]; c.Status != metav1.ConditionFalse || !c.LastTransitionTime.Time.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("Ready after failure: %+v", c)
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
