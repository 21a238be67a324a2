// Package podnetwork is the end-to-end test of the pod network: a real kube-apiserver with the
// operator in process, three "nodes" that are network namespaces on a routed underlay, one real
// plexus-agent process per node (programming its namespace with --netns), and pods attached by
// the real plexus-cni through libcni, as a container runtime does. Needs root; skips otherwise.
package podnetwork

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/cni"
	"github.com/plexus-net/plexus/agent/routing"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/testnet"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// readyBound bounds how long nodes may take to report a generation Ready.
	readyBound = 60 * time.Second
	// pathBound bounds how long a fresh path may take to carry a connection.
	pathBound = 10 * time.Second
	// pollInterval is how often conditions are polled.
	pollInterval = 50 * time.Millisecond
	// restartPackets is how many more UDP packets must be sent after the restarted agents are
	// ready before the streams stop.
	restartPackets = 250
)

// Test ranges; CheckNoOverlap makes sure the machine itself uses none of them. The service CIDR
// is a /16, not the usual /12, which would contain the underlay.
var (
	podCIDR4     = "10.244.0.0/16"
	podCIDR6     = "fd10:244::/56"
	serviceCIDR4 = "10.96.0.0/16"
	serviceCIDR6 = "fd00:10:96::/112"
	segA4, segA6 = netip.MustParsePrefix("10.99.0.1/24"), netip.MustParsePrefix("fd10:99::1/64")
	segB4, segB6 = netip.MustParsePrefix("10.99.1.1/24"), netip.MustParsePrefix("fd10:99:1::1/64")
	outside4     = netip.MustParsePrefix("10.99.0.100/24")
	outside6     = netip.MustParsePrefix("fd10:99::100/64")
	testRanges   = []netip.Prefix{
		netip.MustParsePrefix(podCIDR4), netip.MustParsePrefix(podCIDR6),
		netip.MustParsePrefix(serviceCIDR4), netip.MustParsePrefix(serviceCIDR6),
		segA4.Masked(), segA6.Masked(), segB4.Masked(), segB6.Masked(),
	}
)

// poll is testnet.Poll at the suite's pollInterval.
func poll(bound time.Duration, cond func() bool) bool { return testnet.Poll(bound, pollInterval, cond) }

// env is the whole test world.
type env struct {
	cluster *cluster
	bins    binaries
	nodes   []*node // n1, n2 on segment a; n3 on segment b
	outside *testnet.Netns
	pods    []*pod // one per node
	echo    map[*pod]*testnet.EchoServer
}

func TestPodNetwork(t *testing.T) {
	testnet.RequireRoot(t)
	if err := testnet.CheckNoOverlap(testRanges...); err != nil {
		t.Fatalf("test ranges clash with this machine: %v", err)
	}
	e := &env{echo: map[*pod]*testnet.EchoServer{}}
	e.cluster = startCluster(t)
	e.bins = build(t)
	e.buildTopology(t)
	ctx := context.Background()
	for _, n := range e.nodes {
		if err := e.cluster.client.Create(ctx, n.nodeObject()); err != nil {
			t.Fatal(err)
		}
	}
	cn := &v1.ClusterNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultClusterNetworkName},
		Spec: v1.ClusterNetworkSpec{
			IPFamilies:     []v1.IPFamily{v1.IPv4, v1.IPv6},
			PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{v1.CIDR(podCIDR4), v1.CIDR(podCIDR6)}},
			ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{v1.CIDR(serviceCIDR4), v1.CIDR(serviceCIDR6)}},
			Routing:        &v1.Routing{Mode: v1.RoutingAuto},
			// No kubelet runs the pods here: a CoreDNS Deployment could never turn ready, and
			// the cluster DNS has suites of its own (test/dns, test/envtest, test/e2e).
			DNS: &v1.DNS{Enabled: ptr.To(false)},
		},
	}
	if err := e.cluster.client.Create(ctx, cn, client.FieldOwner(testFieldManager)); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	for _, n := range e.nodes {
		n.startAgent(t, e.bins, e.cluster.kubeconfig)
	}
	e.waitProgrammed(t, cn.Generation, true)
	t.Logf("time to Ready: %s from starting 3 agents until every NodeNetwork and the ClusterNetwork report Ready", time.Since(start).Round(time.Millisecond))
	e.checkNodeStatus(t, routing.VXLANOverheadIPv4, true)

	for i, n := range e.nodes {
		p := n.addPod(t, fmt.Sprintf("p%d", i+1))
		e.pods = append(e.pods, p)
		e.echo[p] = testnet.StartEchoServer(t, p.ns)
	}

	t.Run("Auto routes the same subnet directly and the other over VXLAN", func(t *testing.T) {
		e.checkRoute(t, e.nodes[0], e.nodes[1], uplinkName)
		e.checkRoute(t, e.nodes[0], e.nodes[2], routing.VXLANDeviceName)
		e.checkAllPaths(t, allPairs(len(e.pods)))
	})
	t.Run("pods leaving the cluster are masqueraded to the node IP", func(t *testing.T) { e.checkMasquerade(t) })
	t.Run("agent restart loses no packet", func(t *testing.T) { e.checkRestart(t) })
	t.Run("CNI DEL frees the address and the host route", func(t *testing.T) { e.checkDel(t) })
	t.Run("Direct", func(t *testing.T) {
		// node-3 is on another subnet: Direct cannot reach it, and every node says so.
		gen := e.cluster.setMode(t, v1.RoutingDirect)
		e.waitProgrammed(t, gen, false)
		e.checkRoute(t, e.nodes[0], e.nodes[1], uplinkName)
		e.checkAllPaths(t, [][2]int{{0, 1}, {1, 0}})
		e.checkUnroutable(t, e.nodes[0], e.nodes[2])
		e.checkNodeStatus(t, 0, false)
	})
	t.Run("VXLAN", func(t *testing.T) {
		gen := e.cluster.setMode(t, v1.RoutingVXLAN)
		e.waitProgrammed(t, gen, true)
		e.checkRoute(t, e.nodes[0], e.nodes[1], routing.VXLANDeviceName)
		e.checkRoute(t, e.nodes[0], e.nodes[2], routing.VXLANDeviceName)
		e.checkAllPaths(t, allPairs(len(e.pods)))
		e.checkNodeStatus(t, routing.VXLANOverheadIPv4, true)
	})
	t.Run("Services", func(t *testing.T) { e.checkServices(t) })
	t.Run("a refused spec change leaves the network alone", func(t *testing.T) { e.checkRefused(t) })
	t.Run("Ready changes are recorded as Events", func(t *testing.T) {
		var events corev1.EventList
		if err := e.cluster.client.List(ctx, &events, client.InNamespace(metav1.NamespaceDefault)); err != nil {
			t.Fatal(err)
		}
		reasons := map[string]bool{}
		for _, ev := range events.Items {
			if ev.InvolvedObject.Kind == "NodeNetwork" && ev.InvolvedObject.Name == e.nodes[0].name {
				reasons[ev.Reason] = true
			}
		}
		if !reasons[v1.ReasonProgrammed] || !reasons[v1.ReasonPartiallyRouted] {
			t.Errorf("Events of NodeNetwork %s have reasons %v; want %s and %s", e.nodes[0].name, reasons, v1.ReasonProgrammed, v1.ReasonPartiallyRouted)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		text := e.nodes[0].metricsText(t)
		for _, m := range []string{"plexus_agent_sync_duration_seconds_bucket", "plexus_agent_programmed_routes", "plexus_agent_sync_errors_total"} {
			if !strings.Contains(text, m) {
				t.Errorf("metrics of %s lack %s", e.nodes[0].name, m)
			}
		}
	})
}

// buildTopology makes the underlay (segments a and b, routed), the three nodes and "outside".
func (e *env) buildTopology(t *testing.T) {
	ul := testnet.NewUnderlay(t)
	segA := ul.AddSegment(t, "a", segA4, segA6)
	segB := ul.AddSegment(t, "b", segB4, segB6)
	root := t.TempDir()
	for i, spec := range []struct {
		seg      *testnet.Segment
		ip4, ip6 string
	}{
		{segA, "10.99.0.11/24", "fd10:99::11/64"},
		{segA, "10.99.0.12/24", "fd10:99::12/64"},
		{segB, "10.99.1.13/24", "fd10:99:1::13/64"},
	} {
		n := &node{top: t, name: fmt.Sprintf("node-%d", i+1), ip4: netip.MustParsePrefix(spec.ip4), ip6: netip.MustParsePrefix(spec.ip6)}
		n.dir = fmt.Sprintf("%s/%s", root, n.name)
		n.ns = testnet.NewNetns(t, fmt.Sprintf("n%d", i+1))
		spec.seg.Attach(t, n.ns, uplinkName, n.ip4, n.ip6)
		e.nodes = append(e.nodes, n)
	}
	e.outside = testnet.NewNetns(t, "outside")
	segA.Attach(t, e.outside, uplinkName, outside4, outside6)
}

func (e *env) waitProgrammed(t *testing.T, gen int64, wantReady bool) {
	t.Helper()
	for _, n := range e.nodes {
		if err := n.alive(); err != nil {
			t.Fatal(err)
		}
	}
	took := e.cluster.waitProgrammed(t, gen, len(e.nodes), wantReady)
	t.Logf("generation %d programmed on all nodes (wantReady=%v) %s after the change", gen, wantReady, took.Round(time.Millisecond))
}

// checkNodeStatus checks what each NodeNetwork reports, the state file the agent wrote for the
// plugin, and /readyz. overhead is the VXLAN overhead the MTU must leave (0 in Direct mode);
// wantReady is the Ready condition expected.
func (e *env) checkNodeStatus(t *testing.T, overhead int, wantReady bool) {
	t.Helper()
	for _, n := range e.nodes {
		nn := &v1.NodeNetwork{}
		if err := e.cluster.client.Get(context.Background(), client.ObjectKey{Name: n.name}, nn); err != nil {
			t.Fatal(err)
		}
		s := nn.Status
		wantIPs := []string{n.ip4.Addr().String(), n.ip6.Addr().String()}
		if s.UplinkInterface != uplinkName || strings.Join(s.NodeIPs, ",") != strings.Join(wantIPs, ",") ||
			int(s.MTU) != 1500-overhead || s.ObservedGeneration != nn.Generation || s.LastSyncTime == nil {
			t.Errorf("NodeNetwork %s status: got uplink %q, node IPs %v, MTU %d, observedGeneration %d (of %d); want %s, %v, %d",
				n.name, s.UplinkInterface, s.NodeIPs, s.MTU, s.ObservedGeneration, nn.Generation, uplinkName, wantIPs, 1500-overhead)
		}
		if meta.IsStatusConditionTrue(s.Conditions, v1.ConditionNodeReady) != wantReady {
			t.Errorf("NodeNetwork %s: want Ready=%v: %s", n.name, wantReady, describe(s))
		}
		st, err := cni.ReadNodeState(n.statePath())
		if err != nil {
			t.Fatal(err)
		}
		if st.MTU != 1500-overhead || st.PodCIDRs.IPv4.String() != string(nn.Spec.PodCIDRs[0]) || st.PodCIDRs.IPv6.String() != string(nn.Spec.PodCIDRs[1]) {
			t.Errorf("node state of %s: %+v; want MTU %d and pod CIDRs %v", n.name, st, 1500-overhead, nn.Spec.PodCIDRs)
		}
		if !n.ready() {
			t.Errorf("agent of %s: /readyz not OK", n.name)
		}
	}
}

// podCIDR4Of returns the node's IPv4 pod CIDR.
func (e *env) podCIDR4Of(t *testing.T, n *node) string {
	nn := &v1.NodeNetwork{}
	if err := e.cluster.client.Get(context.Background(), client.ObjectKey{Name: n.name}, nn); err != nil {
		t.Fatal(err)
	}
	return string(nn.Spec.PodCIDRs[0])
}

// checkRoute checks that from's route to to's IPv4 pod CIDR goes out of dev.
func (e *env) checkRoute(t *testing.T, from, to *node, dev string) {
	t.Helper()
	cidr := e.podCIDR4Of(t, to)
	out := from.ns.Exec(t, "ip", "-4", "route", "show", cidr)
	if !strings.Contains(out, "dev "+dev) {
		t.Errorf("route of %s to %s's pods (%s): %q, want it out of %s", from.name, to.name, cidr, out, dev)
	}
}

// checkUnroutable checks that from has no route to to's pods and says so in its status.
func (e *env) checkUnroutable(t *testing.T, from, to *node) {
	t.Helper()
	cidr := e.podCIDR4Of(t, to)
	if out := from.ns.Exec(t, "ip", "-4", "route", "show", cidr); strings.TrimSpace(out) != "" {
		t.Errorf("%s has a route to %s's pods in Direct mode across subnets: %q", from.name, to.name, out)
	}
	nn := &v1.NodeNetwork{}
	if err := e.cluster.client.Get(context.Background(), client.ObjectKey{Name: from.name}, nn); err != nil {
		t.Fatal(err)
	}
	c := meta.FindStatusCondition(nn.Status.Conditions, v1.ConditionRoutesProgrammed)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, cidr) {
		t.Errorf("NodeNetwork %s RoutesProgrammed: %+v; want False naming %s", from.name, c, cidr)
	}
	t.Logf("%s reports: %s", from.name, c.Message)
}

func allPairs(n int) [][2]int {
	var out [][2]int
	for i := range n {
		for j := range n {
			if i != j {
				out = append(out, [2]int{i, j})
			}
		}
	}
	return out
}

// checkAllPaths makes a TCP connection for each pair and family, and checks the receiver saw
// the sender's pod IP (no NAT between pods).
func (e *env) checkAllPaths(t *testing.T, pairs [][2]int) {
	t.Helper()
	for _, v6 := range []bool{false, true} {
		for _, pr := range pairs {
			src, dst := e.pods[pr[0]], e.pods[pr[1]]
			target := netip.AddrPortFrom(dst.addr(v6), e.echo[dst].Port())
			seen, err := testnet.PollEcho(src.ns, target, pathBound)
			if err != nil {
				t.Errorf("pod %s (%s) -> pod %s (%s): %v", src.name, src.node.name, dst.name, dst.node.name, err)
				continue
			}
			if seen != src.addr(v6) {
				t.Errorf("pod %s -> pod %s: receiver saw %s, want the sender's pod IP %s (no NAT)", src.name, dst.name, seen, src.addr(v6))
			}
		}
	}
}

// checkMasquerade connects from pods to a host outside the cluster, which must see the node IP.
func (e *env) checkMasquerade(t *testing.T) {
	srv := testnet.StartEchoServer(t, e.outside)
	for _, p := range []*pod{e.pods[0], e.pods[2]} {
		for _, v6 := range []bool{false, true} {
			out, want := outside4.Addr(), p.node.ip4.Addr()
			if v6 {
				out, want = outside6.Addr(), p.node.ip6.Addr()
			}
			seen, err := testnet.PollEcho(p.ns, netip.AddrPortFrom(out, srv.Port()), pathBound)
			if err != nil {
				t.Errorf("pod %s -> outside %s: %v", p.name, out, err)
				continue
			}
			if seen != want {
				t.Errorf("pod %s -> outside: outside saw %s, want node IP %s", p.name, seen, want)
			}
		}
	}
}

// checkDel adds a pod, checks its address and host route, deletes it with CNI DEL and checks
// both are gone.
func (e *env) checkDel(t *testing.T) {
	n := e.nodes[1]
	p := n.addPod(t, "del")
	hasAlloc := func() bool {
		for _, a := range n.allocations(t) {
			if a.IP == p.ip4 || a.IP == p.ip6 {
				return true
			}
		}
		return false
	}
	route := func() string { return strings.TrimSpace(n.ns.Exec(t, "ip", "-4", "route", "show", p.ip4.String())) }
	if !hasAlloc() || route() == "" {
		t.Fatalf("after ADD: allocation present %v, host route %q", hasAlloc(), route())
	}
	p.del(t)
	if hasAlloc() {
		t.Errorf("after DEL the allocation store still holds %s or %s", p.ip4, p.ip6)
	}
	if r := route(); r != "" {
		t.Errorf("after DEL the node still routes %s: %q", p.ip4, r)
	}
}

// checkRefused makes a spec change the operator refuses (shrinking the pod network under
// allocated nodes) and checks that nothing on the nodes changes.
func (e *env) checkRefused(t *testing.T) {
	ctx := context.Background()
	cn := &v1.ClusterNetwork{}
	if err := e.cluster.client.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn); err != nil {
		t.Fatal(err)
	}
	applied := cn.Status.AppliedGeneration
	cn.Spec.PodNetwork.CIDRs = []v1.CIDR{"10.245.0.0/16", v1.CIDR(podCIDR6)}
	if err := e.cluster.client.Update(ctx, cn, client.FieldOwner(testFieldManager)); err != nil {
		t.Fatalf("update spec: %v", err)
	}
	var msg string
	if !poll(readyBound, func() bool {
		got := &v1.ClusterNetwork{}
		if err := e.cluster.client.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, got); err != nil {
			return false
		}
		c := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionConfigValid)
		if c != nil && c.ObservedGeneration == got.Generation && c.Status == metav1.ConditionFalse {
			msg = c.Message
			return true
		}
		return false
	}) {
		t.Fatalf("the operator did not refuse the pod CIDR change")
	}
	t.Logf("operator refused: %s", msg)
	e.checkAllPaths(t, allPairs(len(e.pods)))
	for _, n := range e.nodes {
		nn := &v1.NodeNetwork{}
		if err := e.cluster.client.Get(ctx, client.ObjectKey{Name: n.name}, nn); err != nil {
			t.Fatal(err)
		}
		if nn.Status.ProgrammedGeneration != applied || !meta.IsStatusConditionTrue(nn.Status.Conditions, v1.ConditionNodeReady) {
			t.Errorf("NodeNetwork %s after a refused change: programmedGeneration %d (want %d): %s", n.name, nn.Status.ProgrammedGeneration, applied, describe(nn.Status))
		}
	}
}
