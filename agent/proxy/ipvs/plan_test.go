package ipvs_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/proxy/ipvs"
)

func TestPlanChanges(t *testing.T) {
	web := vs("10.96.0.10:80")
	persistent := web
	persistent.Persistence = 3 * time.Hour
	dns := vs("10.96.0.53:53")
	for _, tc := range []struct {
		name             string
		desired, current ipvs.State
		want             string
	}{
		{
			name: "nothing wanted, nothing there",
			want: "no changes",
		},
		{
			name:    "first sync",
			desired: ipvs.State{Services: []ipvs.Service{svc(web, "10.244.1.2:8080", "10.244.2.2:8080")}, Bound: []netip.Addr{ip("10.96.0.10")}},
			want: lines(
				"+ link plexus-ipvs0 (if missing)",
				"+ virtual-server TCP 10.96.0.10:80 rr",
				"+ real-server TCP 10.96.0.10:80 -> 10.244.1.2:8080 weight 1",
				"+ real-server TCP 10.96.0.10:80 -> 10.244.2.2:8080 weight 1",
				"+ address 10.96.0.10 dev plexus-ipvs0",
			),
		},
		{
			name:    "in sync",
			desired: ipvs.State{Services: []ipvs.Service{svc(web, "10.244.1.2:8080")}, Bound: []netip.Addr{ip("10.96.0.10")}},
			current: ipvs.State{Services: []ipvs.Service{svc(web, "10.244.1.2:8080")}, Bound: []netip.Addr{ip("10.96.0.10")}},
			want:    "no changes",
		},
		{
			name:    "endpoint replaced: the new one is added before the old one goes",
			desired: ipvs.State{Services: []ipvs.Service{svc(web, "10.244.3.2:8080")}, Bound: []netip.Addr{ip("10.96.0.10")}},
			current: ipvs.State{Services: []ipvs.Service{svc(web, "10.244.1.2:8080")}, Bound: []netip.Addr{ip("10.96.0.10")}},
			want: lines(
				"+ real-server TCP 10.96.0.10:80 -> 10.244.3.2:8080 weight 1",
				"- real-server TCP 10.96.0.10:80 -> 10.244.1.2:8080",
			),
		},
		{
			name:    "affinity switched on, weight changed",
			desired: ipvs.State{Services: []ipvs.Service{{VirtualServer: persistent, RealServers: []ipvs.RealServer{{Address: ip("10.244.1.2"), Port: 8080, Weight: 0}}}}, Bound: []netip.Addr{ip("10.96.0.10")}},
			current: ipvs.State{Services: []ipvs.Service{svc(web, "10.244.1.2:8080")}, Bound: []netip.Addr{ip("10.96.0.10")}},
			want: lines(
				"~ virtual-server TCP 10.96.0.10:80 rr persistent 3h0m0s (was TCP 10.96.0.10:80 rr)",
				"~ real-server TCP 10.96.0.10:80 -> 10.244.1.2:8080 weight 0",
			),
		},
		{
			name:    "service gone: unbound before its virtual server is deleted",
			desired: ipvs.State{Services: []ipvs.Service{svc(dns)}, Bound: []netip.Addr{ip("10.96.0.53")}},
			current: ipvs.State{Services: []ipvs.Service{svc(web, "10.244.1.2:8080"), svc(dns)}, Bound: []netip.Addr{ip("10.96.0.10"), ip("10.96.0.53")}},
			want: lines(
				"- address 10.96.0.10 dev plexus-ipvs0",
				"- virtual-server TCP 10.96.0.10:80 rr (with its real servers)",
			),
		},
		{
			name:    "mode on without virtual IPs: the device is made anyway",
			desired: ipvs.State{Device: true},
			want:    "+ link plexus-ipvs0 (if missing)",
		},
		{
			name:    "device there, nothing bound: in sync",
			desired: ipvs.State{Device: true},
			current: ipvs.State{Device: true},
			want:    "no changes",
		},
		{
			name:    "mode turned off: everything goes, the device last",
			desired: ipvs.State{NodeAddresses: []netip.Addr{ip("10.99.0.11")}},
			current: ipvs.State{Device: true, Services: []ipvs.Service{svc(web, "10.244.1.2:8080"), svc(vs("10.99.0.11:30080"), "10.244.1.2:8080")}, Bound: []netip.Addr{ip("10.96.0.10")}},
			want: lines(
				"- address 10.96.0.10 dev plexus-ipvs0",
				"- virtual-server TCP 10.96.0.10:80 rr (with its real servers)",
				"- virtual-server TCP 10.99.0.11:30080 rr (with its real servers)",
				"- link plexus-ipvs0",
			),
		},
		{
			name:    "mode off and nothing there",
			desired: ipvs.State{},
			current: ipvs.State{},
			want:    "no changes",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.desired.Sort()
			tc.current.Sort()
			got := ipvs.PlanChanges(tc.desired, tc.current)
			if got.String() != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
			if got.Empty() != (tc.want == "no changes") {
				t.Errorf("Empty() = %v for plan:\n%s", got.Empty(), got)
			}
		})
	}
}
