package routing_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/internal/testnet"
)

// Address plan of the real-kernel tests: checked against this machine by
// testnet.CheckNoOverlap before anything is created.
var (
	kernelRanges = []netip.Prefix{
		prefix("10.99.0.0/24"), prefix("10.99.1.0/24"), prefix("fd10:99::/64"), prefix("fd10:99:1::/64"),
		prefix("10.244.0.0/16"), prefix("fd10:244::/56"), prefix("10.250.0.0/24"),
	}
	// echoBound bounds the wait for a connection through fresh routes.
	echoBound = 10 * time.Second
)

// kernelNode is one node of the real-kernel cluster: its namespace, its
// routing inputs and one fake pod behind it.
type kernelNode struct {
	name     string
	ns       *testnet.Netns
	nodeIPs  []netip.Addr
	podCIDRs []netip.Prefix
	pod      *testnet.Netns
	podIPs   []netip.Addr
	echo     *testnet.EchoServer
	nl       *routing.Netlink
	syncer   *routing.Syncer
}

// openNetlink opens the kernel implementation for ns, closed on cleanup.
func openNetlink(t testing.TB, ns *testnet.Netns) *routing.Netlink {
	t.Helper()
	nl, err := routing.NewNetlink(ns.NsHandle())
	if err != nil {
		t.Fatalf("%s: %v", ns, err)
	}
	t.Cleanup(nl.Close)
	return nl
}

// kernelCluster builds node1 and node2 on segment a (10.99.0.0/24,
// fd10:99::/64) and node3 on segment b (10.99.1.0/24, fd10:99:1::/64)
// behind the underlay's router, each with a pod running an echo server.
func kernelCluster(t *testing.T) []*kernelNode {
	t.Helper()
	testnet.RequireRoot(t)
	if err := testnet.CheckNoOverlap(kernelRanges...); err != nil {
		t.Fatal(err)
	}
	ul := testnet.NewUnderlay(t)
	segs := []*testnet.Segment{
		ul.AddSegment(t, "a", prefix("10.99.0.1/24"), prefix("fd10:99::1/64")),
		ul.AddSegment(t, "b", prefix("10.99.1.1/24"), prefix("fd10:99:1::1/64")),
	}
	var nodes []*kernelNode
	for i, seg := range []int{0, 0, 1} {
		n := i + 1
		node := &kernelNode{
			name:     fmt.Sprintf("node%d", n),
			nodeIPs:  []netip.Addr{ip(fmt.Sprintf("10.99.%d.1%d", seg, n)), ip(fmt.Sprintf("fd10:99:%x::1%d", seg, n))},
			podCIDRs: []netip.Prefix{prefix(fmt.Sprintf("10.244.%d.0/24", n)), prefix(fmt.Sprintf("fd10:244:0:%d::/64", n))},
			podIPs:   []netip.Addr{ip(fmt.Sprintf("10.244.%d.5", n)), ip(fmt.Sprintf("fd10:244:0:%d::5", n))},
		}
		node.ns = testnet.NewNetns(t, node.name)
		node.ns.EnableForwarding(t)
		segs[seg].Attach(t, node.ns, "eth0",
			netip.PrefixFrom(node.nodeIPs[0], 24), netip.PrefixFrom(node.nodeIPs[1], 64))
		node.pod = testnet.AddFakePod(t, node.ns, node.name, "vethpod", node.podIPs...)
		node.echo = testnet.StartEchoServer(t, node.pod)
		node.nl = openNetlink(t, node.ns)
		node.syncer = routing.NewSyncer(node.nl)
		nodes = append(nodes, node)
	}
	return nodes
}

// config returns node's routing config with every other node as a peer,
// the uplink found by the real discovery code.
func (node *kernelNode) config(t *testing.T, mode routing.Mode, all []*kernelNode) routing.Config {
	t.Helper()
	up, err := routing.DiscoverUplink(node.ns.Handle(), node.nodeIPs)
	if err != nil {
		t.Fatalf("%s: %v", node.name, err)
	}
	cfg := routing.Config{Mode: mode, Local: routing.LocalNode{
		Name: node.name, NodeIPs: node.nodeIPs, PodCIDRs: node.podCIDRs, Uplink: up}}
	for _, peer := range all {
		if peer != node {
			cfg.Peers = append(cfg.Peers, routing.Peer{Name: peer.name, NodeIPs: peer.nodeIPs, PodCIDRs: peer.podCIDRs})
		}
	}
	return cfg
}

// sync programs node and checks that the kernel now reads back exactly as
// desired (so the next full sync would write nothing).
func (node *kernelNode) sync(t *testing.T, cfg routing.Config) routing.Plan {
	t.Helper()
	plan, err := node.syncer.Sync(cfg)
	if err != nil {
		t.Fatalf("%s: sync: %v\nplan:\n%s", node.name, err, plan)
	}
	current, err := routing.Read(openNetlink(t, node.ns), routing.VXLANDeviceName)
	if err != nil {
		t.Fatalf("%s: read back: %v", node.name, err)
	}
	if again := routing.PlanChanges(routing.Desired(cfg), current); again.Changes() != 0 {
		t.Fatalf("%s: the kernel does not read back as programmed; a full sync would do:\n%s\nkernel:\n%s",
			node.name, again, node.ns.Exec(t, "ip", "-d", "route", "show", "proto", fmt.Sprint(routing.RouteProtocol)))
	}
	return plan
}

// expectPodToPod checks real TCP from each pod to the other's pod in both
// families, and that the receiver sees the sender's pod IP (no NAT).
func expectPodToPod(t *testing.T, from, to *kernelNode) {
	t.Helper()
	for i := range from.podIPs {
		target := netip.AddrPortFrom(to.podIPs[i], to.echo.Port())
		peer, err := testnet.PollEcho(from.pod, target, echoBound)
		if err != nil {
			t.Errorf("%s pod -> %s pod %s: %v\n%s routes:\n%s", from.name, to.name, target, err, from.name,
				from.ns.Exec(t, "ip", "-d", "-a", "route", "show", "table", "main"))
			continue
		}
		if peer != from.podIPs[i] {
			t.Errorf("%s pod -> %s pod %s: receiver saw %s, want the sender's pod IP %s (NAT on the way?)",
				from.name, to.name, target, peer, from.podIPs[i])
		}
	}
}

// TestKernelPodToPod runs the real routing code in three node namespaces
// and sends real TCP between their pods, per mode.
func TestKernelPodToPod(t *testing.T) {
	tests := []struct {
		mode routing.Mode
		// reachable lists node index pairs that must talk.
		reachable [][2]int
		// viaVXLAN lists, per node, the peers (by name) it must reach over VXLAN.
		viaVXLAN map[string][]string
	}{
		{mode: routing.ModeDirect, reachable: [][2]int{{0, 1}, {1, 0}}},
		{mode: routing.ModeVXLAN, reachable: [][2]int{{0, 1}, {1, 0}, {0, 2}, {2, 0}, {1, 2}, {2, 1}},
			viaVXLAN: map[string][]string{"node1": {"node2", "node3"}, "node2": {"node1", "node3"}, "node3": {"node1", "node2"}}},
		{mode: routing.ModeAuto, reachable: [][2]int{{0, 1}, {1, 0}, {0, 2}, {2, 0}, {1, 2}, {2, 1}},
			viaVXLAN: map[string][]string{"node1": {"node3"}, "node2": {"node3"}, "node3": {"node1", "node2"}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			nodes := kernelCluster(t)
			for _, node := range nodes {
				plan := node.sync(t, node.config(t, tt.mode, nodes))
				t.Logf("%s plan:\n%s", node.name, plan)
				if tt.mode == routing.ModeDirect && node.name != "node2" && !strings.Contains(plan.String(), "! peer node") {
					t.Errorf("%s: Direct mode should report the peer on the other subnet as unroutable:\n%s", node.name, plan)
				}
				checkVXLANPeers(t, node, nodes, tt.viaVXLAN[node.name])
			}
			for _, pair := range tt.reachable {
				expectPodToPod(t, nodes[pair[0]], nodes[pair[1]])
			}
			// The packets really went through the tunnel where one is used.
			for _, node := range nodes {
				if len(tt.viaVXLAN[node.name]) == 0 {
					continue
				}
				stats := node.ns.Link(t, routing.VXLANDeviceName).Attrs().Statistics
				if stats == nil || stats.TxPackets == 0 || stats.RxPackets == 0 {
					t.Errorf("%s: %s carried no traffic (stats %+v)", node.name, routing.VXLANDeviceName, stats)
				}
			}
		})
	}
}

// checkVXLANPeers checks which peers' pod CIDRs go through the VXLAN device.
func checkVXLANPeers(t *testing.T, node *kernelNode, all []*kernelNode, want []string) {
	t.Helper()
	routes, err := openNetlink(t, node.ns).ListRoutes()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, peer := range all {
		for _, r := range routes {
			if r.Dst == peer.podCIDRs[0] && r.Dev == routing.VXLANDeviceName {
				got = append(got, peer.name)
			}
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s reaches %v over VXLAN, want %v", node.name, got, want)
	}
}

// TestKernelOwnership: routes of other owners survive every sync and a
// sync to "no peers" removes exactly what Plexus made, the device too;
// mode changes on a live node keep traffic flowing.
func TestKernelOwnership(t *testing.T) {
	nodes := kernelCluster(t)
	n1 := nodes[0]
	foreign := "10.250.0.0/24 via 10.99.0.1 dev eth0"
	n1.ns.Exec(t, "ip", "route", "add", "10.250.0.0/24", "via", "10.99.0.1", "dev", "eth0", "proto", "static")
	before := n1.ns.Exec(t, "ip", "-4", "route", "show") + n1.ns.Exec(t, "ip", "-6", "route", "show")

	for _, mode := range []routing.Mode{routing.ModeAuto, routing.ModeVXLAN, routing.ModeDirect, routing.ModeAuto} {
		for _, node := range nodes {
			node.sync(t, node.config(t, mode, nodes))
		}
		expectPodToPod(t, nodes[0], nodes[1])
		if mode != routing.ModeDirect {
			expectPodToPod(t, nodes[0], nodes[2])
		}
		// Routes name shared nexthop objects of Plexus: one per next hop.
		if out := n1.ns.Exec(t, "ip", "-4", "route", "show", "10.244.2.0/24"); !strings.Contains(out, "nhid") {
			t.Errorf("%s: route without a nexthop object: %q", mode, out)
		}
	}
	if out := n1.ns.Exec(t, "ip", "route", "show", "10.250.0.0/24"); !strings.Contains(out, "10.250.0.0/24 via 10.99.0.1 dev eth0 proto static") {
		t.Errorf("foreign route %s lost: %q", foreign, out)
	}
	lonely := n1.config(t, routing.ModeAuto, nil)
	n1.sync(t, lonely)
	after := n1.ns.Exec(t, "ip", "-4", "route", "show") + n1.ns.Exec(t, "ip", "-6", "route", "show")
	if after != before {
		t.Errorf("routes after removing all peers differ from before Plexus ran:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if out := n1.ns.Exec(t, "ip", "nexthop", "show"); out != "" {
		t.Errorf("nexthop objects left with no route using them:\n%s", out)
	}
	if _, err := n1.ns.TryExec("ip", "link", "show", routing.VXLANDeviceName); err == nil {
		t.Errorf("%s still exists with no peer needing it", routing.VXLANDeviceName)
	}
}

// TestKernelInlineNextHops runs Auto mode with next hops inline in the
// routes, the fallback for kernels without nexthop objects, and then lets
// nodes that do use nexthop objects take over the same routes.
func TestKernelInlineNextHops(t *testing.T) {
	nodes := kernelCluster(t)
	for _, node := range nodes {
		routing.UseInlineNextHops(node.nl)
		node.sync(t, node.config(t, routing.ModeAuto, nodes))
	}
	if out := nodes[0].ns.Exec(t, "ip", "-4", "route", "show", "10.244.3.0/24"); strings.Contains(out, "nhid") {
		t.Errorf("inline mode wrote a nexthop object: %q", out)
	}
	expectPodToPod(t, nodes[0], nodes[1])
	expectPodToPod(t, nodes[0], nodes[2])
	// An agent restart on a kernel with nexthop objects adopts the inline
	// routes as they are (same route, nothing to do) and uses objects for
	// changes.
	for _, node := range nodes {
		node.nl = openNetlink(t, node.ns)
		node.syncer = routing.NewSyncer(node.nl)
		if plan := node.sync(t, node.config(t, routing.ModeAuto, nodes)); !plan.Empty() {
			t.Errorf("%s: restart replanned inline routes:\n%s", node.name, plan)
		}
	}
	nodes[0].sync(t, nodes[0].config(t, routing.ModeVXLAN, nodes))
	if out := nodes[0].ns.Exec(t, "ip", "-4", "route", "show", "10.244.2.0/24"); !strings.Contains(out, "nhid") {
		t.Errorf("changed route without a nexthop object: %q", out)
	}
	expectPodToPod(t, nodes[0], nodes[1])
}
