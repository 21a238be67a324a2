package routing_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/agent/routing/routingfake"
)

const (
	vxlanLink = "link vxlan plexus.vxlan id 1 dstport 4789 local 10.99.0.11 dev eth0 mtu 1450 address {mac 10.99.0.11} up"
	vxlanAddr = `address 10.244.1.0/32 dev plexus.vxlan
		address fd10:244:0:1::/128 dev plexus.vxlan`
	node2Direct = `route 10.244.2.0/24 via 10.99.0.12 dev eth0
		route fd10:244:0:2::/64 via fd10:99::12 dev eth0`
	node2VXLAN = `fdb {mac 10.99.0.12} dst 10.99.0.12 dev plexus.vxlan
		neigh 10.244.2.0 lladdr {mac 10.99.0.12} dev plexus.vxlan
		neigh {ll 10.99.0.12} lladdr {mac 10.99.0.12} dev plexus.vxlan
		route 10.244.2.0/24 via 10.244.2.0 dev plexus.vxlan onlink
		route fd10:244:0:2::/64 via {ll 10.99.0.12} dev plexus.vxlan`
	node3VXLAN = `fdb {mac 10.99.1.13} dst 10.99.1.13 dev plexus.vxlan
		neigh 10.244.3.0 lladdr {mac 10.99.1.13} dev plexus.vxlan
		neigh {ll 10.99.1.13} lladdr {mac 10.99.1.13} dev plexus.vxlan
		route 10.244.3.0/24 via 10.244.3.0 dev plexus.vxlan onlink
		route fd10:244:0:3::/64 via {ll 10.99.1.13} dev plexus.vxlan`
)

// TestSyncModes programs a dual-stack node with one peer on its subnet and
// one behind a router, in each mode, and compares the whole fake kernel.
func TestSyncModes(t *testing.T) {
	tests := []struct {
		mode       routing.Mode
		want       string
		unroutable []string
	}{
		{
			mode: routing.ModeDirect,
			want: node2Direct,
			unroutable: []string{
				"peer node3 pod CIDR 10.244.3.0/24: node IP 10.99.1.13 is not on a subnet of uplink eth0",
				"peer node3 pod CIDR fd10:244:0:3::/64: node IP fd10:99:1::13 is not on a subnet of uplink eth0",
			},
		},
		{mode: routing.ModeVXLAN, want: vxlanLink + "\n" + vxlanAddr + "\n" + node2VXLAN + "\n" + node3VXLAN},
		{mode: routing.ModeAuto, want: vxlanLink + "\n" + vxlanAddr + "\n" + node2Direct + "\n" + node3VXLAN},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			f := routingfake.New("eth0")
			plan, err := routing.NewSyncer(f).Sync(config(tt.mode, node2(), node3()))
			if err != nil {
				t.Fatalf("sync: %v\nplan:\n%s", err, plan)
			}
			if d := diffLines(sortedLines(f.Dump()), sortedLines(expand(t, tt.want))); d != "" {
				t.Errorf("kernel state after sync differs at %s", d)
			}
			var got []string
			for _, u := range plan.Unroutable {
				got = append(got, u.String())
			}
			if len(got) != len(tt.unroutable) {
				t.Fatalf("unroutable = %q, want %d entries like %q", got, len(tt.unroutable), tt.unroutable)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.unroutable[i]) {
					t.Errorf("unroutable[%d] = %q, want prefix %q", i, got[i], tt.unroutable[i])
				}
			}
		})
	}
}

// TestNoOpSyncWritesNothing: a second sync with the same input makes no
// mutating call, whether it trusts its memory or reads the kernel again.
func TestNoOpSyncWritesNothing(t *testing.T) {
	for _, mode := range []routing.Mode{routing.ModeDirect, routing.ModeVXLAN, routing.ModeAuto} {
		t.Run(string(mode), func(t *testing.T) {
			f := routingfake.New("eth0")
			s := routing.NewSyncer(f)
			cfg := config(mode, node2(), node3())
			if _, err := s.Sync(cfg); err != nil {
				t.Fatal(err)
			}
			f.ResetCalls()
			for _, full := range []bool{false, true} {
				if full {
					s.RequestFullSync()
				}
				plan, err := s.Sync(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if calls := f.Calls(); len(calls) != 0 || !plan.Empty() {
					t.Errorf("no-op sync (full=%t) wrote %d calls %q; plan:\n%s", full, len(calls), calls, plan)
				}
			}
			// A fresh Syncer (an agent restart) reads the kernel: still nothing.
			if plan, err := routing.NewSyncer(f).Sync(cfg); err != nil || !plan.Empty() || len(f.Calls()) != 0 {
				t.Errorf("sync after restart: err %v, calls %q, plan:\n%s", err, f.Calls(), plan)
			}
		})
	}
}

// TestPeerChanges walks a peer list through add, change and remove and
// checks each plan, the exact kernel calls it costs, and the final state.
func TestPeerChanges(t *testing.T) {
	moved := node2()
	moved.NodeIPs = []netip.Addr{ip("10.99.0.22"), ip("fd10:99::22")}
	steps := []struct {
		name  string
		mode  routing.Mode
		peers []routing.Peer
		plan  string
	}{
		{name: "first peer", mode: routing.ModeAuto, peers: []routing.Peer{node2()}, plan: `
			+ route 10.244.2.0/24 via 10.99.0.12 dev eth0
			+ route fd10:244:0:2::/64 via fd10:99::12 dev eth0`},
		{name: "peer behind the router creates the device", mode: routing.ModeAuto, peers: []routing.Peer{node2(), node3()}, plan: `
			+ link ` + strings.TrimPrefix(vxlanLink, "link ") + `
			+ address 10.244.1.0/32 dev plexus.vxlan
			+ address fd10:244:0:1::/128 dev plexus.vxlan
			+ fdb {mac 10.99.1.13} dst 10.99.1.13 dev plexus.vxlan
			+ neigh 10.244.3.0 lladdr {mac 10.99.1.13} dev plexus.vxlan
			+ neigh {ll 10.99.1.13} lladdr {mac 10.99.1.13} dev plexus.vxlan
			+ route 10.244.3.0/24 via 10.244.3.0 dev plexus.vxlan onlink
			+ route fd10:244:0:3::/64 via {ll 10.99.1.13} dev plexus.vxlan`},
		{name: "peer changes its node IP", mode: routing.ModeAuto, peers: []routing.Peer{moved, node3()}, plan: `
			~ route 10.244.2.0/24 via 10.99.0.22 dev eth0 (was 10.244.2.0/24 via 10.99.0.12 dev eth0)
			~ route fd10:244:0:2::/64 via fd10:99::22 dev eth0 (was fd10:244:0:2::/64 via fd10:99::12 dev eth0)`},
		{name: "switch to VXLAN replaces direct routes in place", mode: routing.ModeVXLAN, peers: []routing.Peer{moved, node3()}, plan: `
			+ fdb {mac 10.99.0.22} dst 10.99.0.22 dev plexus.vxlan
			+ neigh 10.244.2.0 lladdr {mac 10.99.0.22} dev plexus.vxlan
			+ neigh {ll 10.99.0.22} lladdr {mac 10.99.0.22} dev plexus.vxlan
			~ route 10.244.2.0/24 via 10.244.2.0 dev plexus.vxlan onlink (was 10.244.2.0/24 via 10.99.0.22 dev eth0)
			~ route fd10:244:0:2::/64 via {ll 10.99.0.22} dev plexus.vxlan (was fd10:244:0:2::/64 via fd10:99::22 dev eth0)`},
		{name: "peer removed", mode: routing.ModeVXLAN, peers: []routing.Peer{moved}, plan: `
			- route 10.244.3.0/24 via 10.244.3.0 dev plexus.vxlan onlink
			- route fd10:244:0:3::/64 via {ll 10.99.1.13} dev plexus.vxlan
			- neigh 10.244.3.0 lladdr {mac 10.99.1.13} dev plexus.vxlan
			- neigh {ll 10.99.1.13} lladdr {mac 10.99.1.13} dev plexus.vxlan
			- fdb {mac 10.99.1.13} dst 10.99.1.13 dev plexus.vxlan`},
		{name: "back to Direct removes the device", mode: routing.ModeDirect, peers: []routing.Peer{moved}, plan: `
			- link plexus.vxlan (with its entries and routes)
			+ route 10.244.2.0/24 via 10.99.0.22 dev eth0
			+ route fd10:244:0:2::/64 via fd10:99::22 dev eth0`},
		{name: "last peer gone", mode: routing.ModeDirect, plan: `
			- route 10.244.2.0/24 via 10.99.0.22 dev eth0
			- route fd10:244:0:2::/64 via fd10:99::22 dev eth0`},
	}
	f := routingfake.New("eth0")
	s := routing.NewSyncer(f)
	for _, step := range steps {
		f.ResetCalls()
		plan, err := s.Sync(config(step.mode, step.peers...))
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if d := diffLines(plan.String(), expand(t, step.plan)); d != "" {
			t.Errorf("%s: plan differs at %s", step.name, d)
		}
		if got, want := len(f.Calls()), plan.Changes(); got != want {
			t.Errorf("%s: %d kernel calls %q for a plan of %d changes", step.name, got, f.Calls(), want)
		}
		// What the Syncer remembers must be what the kernel holds.
		if fresh, err := routing.NewSyncer(f).Sync(config(step.mode, step.peers...)); err != nil || !fresh.Empty() {
			t.Errorf("%s: a full sync afterwards still plans:\n%s (err %v)", step.name, fresh, err)
		}
	}
	if d := f.Dump(); d != "" {
		t.Errorf("state left after the last peer went:\n%s", d)
	}
}

// TestForeignRoutesLeftAlone: routes of other owners survive every sync,
// including one to a peer's pod CIDR, which is reported instead.
func TestForeignRoutesLeftAlone(t *testing.T) {
	f := routingfake.New("eth0", "ens5")
	foreign := []routing.Route{
		{Dst: prefix("10.96.0.0/12"), Via: ip("10.99.0.1"), Dev: "eth0"},
		{Dst: prefix("10.244.3.0/24"), Via: ip("10.99.0.77"), Dev: "ens5"}, // clashes with node3
		{Dst: prefix("fd10:244:0:9::/64"), Via: ip("fd10:99::1"), Dev: "eth0"},
	}
	for _, r := range foreign {
		f.AddForeignRoute(r)
	}
	s := routing.NewSyncer(f)
	_, err := s.Sync(config(routing.ModeAuto, node2(), node3()))
	if err == nil || !strings.Contains(err.Error(), "add route 10.244.3.0/24") || !errors.Is(err, routing.ErrExists) ||
		!strings.Contains(err.Error(), "not made by Plexus") {
		t.Fatalf("want an error naming the clash on 10.244.3.0/24, got %v", err)
	}
	if _, err := s.Sync(config(routing.ModeDirect)); err != nil {
		t.Fatalf("sync to no peers: %v", err)
	}
	var left []routing.Route
	for _, r := range f.AllRoutes() {
		if !r.Foreign {
			t.Errorf("route of Plexus left: %s", r)
		}
		left = append(left, r.Route)
	}
	if len(left) != len(foreign) {
		t.Fatalf("foreign routes after sync: %v, want %v", left, foreign)
	}
	for _, c := range f.Calls() {
		if strings.Contains(c, "ens5") || strings.Contains(c, "10.96.0.0/12") || strings.Contains(c, "fd10:244:0:9::") {
			t.Errorf("a call touched a foreign route: %s", c)
		}
	}
}

func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
