package routing_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/agent/routing/routingfake"
)

func TestEffectiveMTU(t *testing.T) {
	v6first := node1()
	v6first.NodeIPs = []netip.Addr{ip("fd10:99::11"), ip("10.99.0.11")}
	tests := []struct {
		name string
		cfg  routing.Config
		want int
	}{
		{"Direct keeps the uplink MTU", config(routing.ModeDirect), 1500},
		{"VXLAN over IPv4 takes 50", config(routing.ModeVXLAN), 1450},
		{"Auto takes the VXLAN overhead too", config(routing.ModeAuto), 1450},
		{"VXLAN over IPv6 takes 70", routing.Config{Mode: routing.ModeVXLAN, Local: v6first}, 1430},
		{"configured MTU wins", routing.Config{Mode: routing.ModeVXLAN, MTU: 1400, Local: node1()}, 1400},
	}
	for _, tt := range tests {
		if got := routing.EffectiveMTU(tt.cfg); got != tt.want {
			t.Errorf("%s: EffectiveMTU = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestIPv6Underlay: with an IPv6 first node IP the device sends over IPv6
// and IPv4 pod CIDRs ride it too.
func TestIPv6Underlay(t *testing.T) {
	local := node1()
	local.NodeIPs = []netip.Addr{ip("fd10:99::11"), ip("10.99.0.11")}
	f := routingfake.New("eth0")
	if _, err := routing.NewSyncer(f).Sync(routing.Config{Mode: routing.ModeVXLAN, Local: local, Peers: []routing.Peer{node3()}}); err != nil {
		t.Fatal(err)
	}
	want := expand(t, `
		address 10.244.1.0/32 dev plexus.vxlan
		address fd10:244:0:1::/128 dev plexus.vxlan
		fdb {mac fd10:99:1::13} dst fd10:99:1::13 dev plexus.vxlan
		link vxlan plexus.vxlan id 1 dstport 4789 local fd10:99::11 dev eth0 mtu 1430 address {mac fd10:99::11} up
		neigh 10.244.3.0 lladdr {mac fd10:99:1::13} dev plexus.vxlan
		neigh {ll fd10:99:1::13} lladdr {mac fd10:99:1::13} dev plexus.vxlan
		route 10.244.3.0/24 via 10.244.3.0 dev plexus.vxlan onlink
		route fd10:244:0:3::/64 via {ll fd10:99:1::13} dev plexus.vxlan`)
	if d := diffLines(f.Dump(), want); d != "" {
		t.Errorf("state differs at %s", d)
	}
}

// TestDeviceChanges: an MTU change updates the device in place; a VNI or
// port change recreates it and puts every entry and route back.
func TestDeviceChanges(t *testing.T) {
	f := routingfake.New("eth0")
	s := routing.NewSyncer(f)
	cfg := config(routing.ModeVXLAN, node2())
	if _, err := s.Sync(cfg); err != nil {
		t.Fatal(err)
	}
	before := f.Dump()

	cfg.MTU = 1400
	f.ResetCalls()
	plan, err := s.Sync(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Calls(), "\n"); got != "UpdateVXLAN plexus.vxlan mtu 1400 up true" {
		t.Errorf("MTU change made calls:\n%s\nplan:\n%s", got, plan)
	}

	cfg.VXLAN = routing.VXLANConfig{VNI: 42, Port: 8472}
	f.ResetCalls()
	plan, err = s.Sync(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plan.String(), "- link plexus.vxlan (with its entries and routes)\n+ link vxlan plexus.vxlan id 42 dstport 8472") {
		t.Errorf("VNI change plan:\n%s", plan)
	}
	want := strings.NewReplacer("id 1 dstport 4789", "id 42 dstport 8472", "mtu 1450", "mtu 1400").Replace(before)
	if d := diffLines(f.Dump(), want); d != "" {
		t.Errorf("after recreation, state differs at %s", d)
	}
}

// TestDriftIsRepairedOnFullSync: what someone else removes or changes comes
// back on the next full sync, and only that.
func TestDriftIsRepairedOnFullSync(t *testing.T) {
	f := routingfake.New("eth0")
	s := routing.NewSyncer(f)
	cfg := config(routing.ModeAuto, node2(), node3())
	if _, err := s.Sync(cfg); err != nil {
		t.Fatal(err)
	}
	want := f.Dump()
	_ = f.DelRoutes([]routing.Route{{Dst: prefix("10.244.2.0/24"), Via: ip("10.99.0.12"), Dev: "eth0"}})
	_ = f.DelNeighbor(routing.VXLANDeviceName, routing.Neighbor{IP: routing.VTEPLinkLocal(routing.VTEPMAC(ip("10.99.1.13")))})
	f.SetVXLANDown(routing.VXLANDeviceName)
	f.ResetCalls()

	if plan, _ := s.Sync(cfg); !plan.Empty() {
		t.Fatalf("a sync trusting its memory should not see drift; plan:\n%s", plan)
	}
	s.RequestFullSync()
	plan, err := s.Sync(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantPlan := expand(t, `
		~ link plexus.vxlan mtu 1450 up
		+ neigh {ll 10.99.1.13} lladdr {mac 10.99.1.13} dev plexus.vxlan
		+ route 10.244.2.0/24 via 10.99.0.12 dev eth0`)
	if d := diffLines(plan.String(), wantPlan); d != "" {
		t.Errorf("repair plan differs at %s", d)
	}
	if d := diffLines(f.Dump(), want); d != "" {
		t.Errorf("repaired state differs at %s", d)
	}
}

// TestFailedSyncRetriesFromTheKernel: after a failed step the next sync
// reads the kernel and finishes the job.
func TestFailedSyncRetriesFromTheKernel(t *testing.T) {
	f := routingfake.New("eth0")
	boom := errors.New("boom")
	f.FailOn["AddRoute 10.244.2.0/24 via 10.99.0.12 dev eth0"] = boom
	s := routing.NewSyncer(f)
	cfg := config(routing.ModeDirect, node2())
	if _, err := s.Sync(cfg); !errors.Is(err, boom) || !strings.Contains(err.Error(), "node1") {
		t.Fatalf("want the injected error with the node name, got %v", err)
	}
	delete(f.FailOn, "AddRoute 10.244.2.0/24 via 10.99.0.12 dev eth0")
	f.ResetCalls()
	if _, err := s.Sync(cfg); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Calls(), "\n"); got != "AddRoute 10.244.2.0/24 via 10.99.0.12 dev eth0" {
		t.Errorf("retry made calls:\n%s", got)
	}
}

// TestDeviceCreationFailureSkipsItsEntries: no calls against a device that
// does not exist, but direct routes are still programmed.
func TestDeviceCreationFailureSkipsItsEntries(t *testing.T) {
	f := routingfake.New("eth0")
	d := routing.Desired(config(routing.ModeAuto, node2(), node3())).VXLAN
	f.FailOn["AddVXLAN "+d.String()] = errors.New("no vxlan module")
	_, err := routing.NewSyncer(f).Sync(config(routing.ModeAuto, node2(), node3()))
	if err == nil || !strings.Contains(err.Error(), "could not be created") {
		t.Fatalf("err = %v", err)
	}
	for _, c := range f.Calls()[1:] {
		if strings.Contains(c, routing.VXLANDeviceName) {
			t.Errorf("call against the missing device: %s", c)
		}
	}
	if !strings.Contains(f.Dump(), "route 10.244.2.0/24 via 10.99.0.12 dev eth0") {
		t.Errorf("direct routes missing:\n%s", f.Dump())
	}
}

func TestDesiredRefusesBadPeerCIDRs(t *testing.T) {
	dup := routing.Peer{Name: "node6", NodeIPs: []netip.Addr{ip("10.99.0.16")},
		PodCIDRs: []netip.Prefix{prefix("10.244.7.0/24")}}
	dup2 := routing.Peer{Name: "node7", NodeIPs: []netip.Addr{ip("10.99.0.17")},
		PodCIDRs: []netip.Prefix{prefix("10.244.7.0/24")}}
	steal := routing.Peer{Name: "node4", NodeIPs: []netip.Addr{ip("10.99.0.14")},
		PodCIDRs: []netip.Prefix{prefix("10.244.1.128/25"), prefix("10.244.0.0/16"), prefix("10.245.0.1/24")}}
	noV6 := routing.Peer{Name: "node5", NodeIPs: []netip.Addr{ip("10.99.0.15")},
		PodCIDRs: []netip.Prefix{prefix("10.244.5.0/24"), prefix("fd10:244:0:5::/64")}}
	s := routing.Desired(config(routing.ModeDirect, node2(), steal, noV6, dup, dup2))
	var got []string
	for _, u := range s.Unroutable {
		got = append(got, u.String())
	}
	want := []string{
		"peer node4 pod CIDR 10.244.0.0/16: covers pod CIDR 10.244.1.0/24 of node node1",
		"peer node4 pod CIDR 10.244.1.128/25: lies inside pod CIDR 10.244.1.0/24 of node node1",
		"peer node4 pod CIDR 10.245.0.1/24: pod CIDR 10.245.0.1/24 has host bits set (want 10.245.0.0/24)",
		"peer node5 pod CIDR fd10:244:0:5::/64: peer has no IPv6 node IP to route it via",
		"peer node6 pod CIDR 10.244.7.0/24: equals pod CIDR 10.244.7.0/24 of node node7",
		"peer node7 pod CIDR 10.244.7.0/24: equals pod CIDR 10.244.7.0/24 of node node6",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("unroutable:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// node2 keeps its routes despite node4's covering /16; node5 keeps
	// IPv4, which needs no IPv6 node IP.
	var dsts []string
	for _, r := range s.Routes {
		dsts = append(dsts, r.Dst.String())
	}
	if strings.Join(dsts, " ") != "10.244.2.0/24 10.244.5.0/24 fd10:244:0:2::/64" {
		t.Errorf("routed: %v", dsts)
	}
	// In Auto the IPv6 pod CIDR of an IPv4-only peer rides VXLAN over IPv4.
	auto := routing.Desired(config(routing.ModeAuto, noV6))
	if len(auto.Unroutable) != 0 || len(auto.Routes) != 2 || auto.Routes[1].Dev != routing.VXLANDeviceName {
		t.Errorf("Auto with an IPv4-only peer: routes %v, unroutable %v", auto.Routes, auto.Unroutable)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*routing.Config)
		wantErr string
	}{
		{"valid", func(*routing.Config) {}, ""},
		{"unknown mode", func(c *routing.Config) { c.Mode = "Geneve" }, `routing mode "Geneve"`},
		{"MTU too small", func(c *routing.Config) { c.MTU = 1000 }, "MTU 1000: below the minimum 1280"},
		{"VNI too big", func(c *routing.Config) { c.VXLAN.VNI = 1 << 24 }, "VNI 16777216"},
		{"no node IP", func(c *routing.Config) { c.Local.NodeIPs = nil }, "has no node IP"},
		{"no uplink", func(c *routing.Config) { c.Local.Uplink = routing.Uplink{} }, "has no uplink"},
		{"local CIDR unmasked", func(c *routing.Config) { c.Local.PodCIDRs = []netip.Prefix{prefix("10.244.1.1/24")} }, "host bits set"},
	}
	for _, tt := range tests {
		cfg := config(routing.ModeAuto)
		tt.mutate(&cfg)
		err := cfg.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestVTEPMAC(t *testing.T) {
	a, b := routing.VTEPMAC(ip("10.99.0.11")), routing.VTEPMAC(ip("10.99.0.12"))
	if a.String() == b.String() {
		t.Fatalf("two nodes got the same MAC %s", a)
	}
	if a.String() != routing.VTEPMAC(ip("::ffff:10.99.0.11")).String() {
		t.Errorf("a v4-mapped address must give the same MAC")
	}
	for _, m := range [][]byte{a, b, routing.VTEPMAC(ip("fd10:99::11"))} {
		if m[0]&0x01 != 0 || m[0]&0x02 == 0 {
			t.Errorf("MAC %x is not locally administered unicast", m)
		}
	}
}

func TestChooseUplink(t *testing.T) {
	links := []routing.LinkInfo{
		{Name: "lo", MTU: 65536, Loopback: true, Addrs: []netip.Prefix{prefix("127.0.0.1/8"), prefix("10.1.1.1/32")}},
		{Name: "eth0", MTU: 9000, Addrs: []netip.Prefix{prefix("10.99.0.11/24"), prefix("fd10:99::11/64"), prefix("fe80::1/64")}},
		{Name: "eth1", MTU: 1500, Addrs: []netip.Prefix{prefix("172.16.0.5/16")}},
	}
	tests := []struct {
		name    string
		ips     []netip.Addr
		want    string
		wantErr string
	}{
		{"dual-stack", []netip.Addr{ip("10.99.0.11"), ip("fd10:99::11")}, "eth0 9000 [10.99.0.11/24 fd10:99::11/64]", ""},
		{"v4-mapped node IP", []netip.Addr{ip("::ffff:10.99.0.11")}, "eth0 9000 [10.99.0.11/24]", ""},
		{"not assigned", []netip.Addr{ip("10.99.0.99")}, "", "node IP 10.99.0.99 is not assigned to any interface"},
		{"two interfaces", []netip.Addr{ip("10.99.0.11"), ip("172.16.0.5")}, "", "two interfaces, eth0 (10.99.0.11) and eth1 (172.16.0.5)"},
		{"loopback", []netip.Addr{ip("10.1.1.1")}, "", "on loopback interface lo"},
		{"none", nil, "", "no node IP"},
	}
	for _, tt := range tests {
		up, err := routing.ChooseUplink(links, tt.ips)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := up.Name + " " + itoa(up.MTU) + " " + fmtPrefixes(up.Subnets); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
