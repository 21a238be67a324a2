package cni

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"

	"github.com/plexus-net/plexus/internal/testnet"
)

// Real-kernel tests: each runs the real plexus-cni binary through libcni against throwaway
// network namespaces (see node_test.go). They skip, saying why, when not run as root.

// TestPodsGetAddressesAndConnect: two pods on one node get distinct addresses of both families
// from the node's CIDRs, the MTU from the node state, and real TCP works pod to pod, pod to node
// and node to pod with no address translation.
func TestPodsGetAddressesAndConnect(t *testing.T) {
	node := newTestNode(t, dualStackState(1400))
	podA, podB := node.newPod("a"), node.newPod("b")
	resA, resB := node.mustAdd(podA, "ctr-a"), node.mustAdd(podB, "ctr-b")
	a4, a6 := podAddrs(t, resA)
	b4, b6 := podAddrs(t, resB)
	for _, ip := range []netip.Addr{a4, b4} {
		if !testPods4.Contains(ip) {
			t.Fatalf("IPv4 address %s is not from the node's CIDR %s", ip, testPods4)
		}
	}
	for _, ip := range []netip.Addr{a6, b6} {
		if !testPods6.Contains(ip) {
			t.Fatalf("IPv6 address %s is not from the node's CIDR %s", ip, testPods6)
		}
	}
	if a4 == b4 || a6 == b6 {
		t.Fatalf("pods share an address: a=%s,%s b=%s,%s", a4, a6, b4, b6)
	}
	for _, id := range []string{"ctr-a", "ctr-b"} {
		pod := map[string]*testnet.Netns{"ctr-a": podA, "ctr-b": podB}[id]
		if err := node.check(pod, id); err != nil {
			t.Errorf("CHECK %s right after ADD: %v", id, err)
		}
	}

	// Node side: a host veth named after the container, with a scope-link route per address.
	hostVeth := HostVethName("ctr-a", podIfName)
	if resA.Interfaces[0].Name != hostVeth || resA.Interfaces[1].Name != podIfName || resA.Interfaces[1].Sandbox != podA.Path() {
		t.Errorf("result interfaces = %v, want host %s and %s in %s", resA.Interfaces, hostVeth, podIfName, podA.Path())
	}
	link := node.ns.Link(t, hostVeth)
	if link.Attrs().MTU != 1400 || podA.Link(t, podIfName).Attrs().MTU != 1400 {
		t.Errorf("MTU: host %d, pod %d; want 1400 from the node state", link.Attrs().MTU, podA.Link(t, podIfName).Attrs().MTU)
	}
	routes, err := node.ns.Handle().RouteList(link, netlink.FAMILY_V4)
	if err != nil || len(routes) != 1 || routes[0].Dst.String() != a4.String()+"/32" || routes[0].Scope != netlink.SCOPE_LINK {
		t.Errorf("node routes via %s = %v (%v), want one scope-link route to %s/32", hostVeth, routes, err, a4)
	}

	srvB := testnet.StartEchoServer(t, podB)
	srvNode := testnet.StartEchoServer(t, node.ns)
	for _, c := range []struct {
		what     string
		from     *testnet.Netns
		to       netip.AddrPort
		wantPeer netip.Addr
	}{
		{"pod a -> pod b, IPv4", podA, netip.AddrPortFrom(b4, srvB.Port()), a4},
		{"pod a -> pod b, IPv6", podA, netip.AddrPortFrom(b6, srvB.Port()), a6},
		{"pod a -> node, IPv4", podA, netip.AddrPortFrom(testNodeIP4, srvNode.Port()), a4},
		{"pod a -> node, IPv6", podA, netip.AddrPortFrom(testNodeIP6, srvNode.Port()), a6},
		{"node -> pod b, IPv4", node.ns, netip.AddrPortFrom(b4, srvB.Port()), testNodeIP4},
		{"node -> pod b, IPv6", node.ns, netip.AddrPortFrom(b6, srvB.Port()), testNodeIP6},
	} {
		peer, err := testnet.PollEcho(c.from, c.to, echoBound)
		if err != nil {
			t.Errorf("%s: %v", c.what, err)
			continue
		}
		if peer != c.wantPeer {
			t.Errorf("%s: receiver saw %s, want %s", c.what, peer, c.wantPeer)
		}
	}
}

// TestAddIsIdempotent: a repeated ADD for the same container and interface returns the same
// addresses, holds no extra allocation and leaves a working attachment.
func TestAddIsIdempotent(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	pod := node.newPod("a")
	first := node.mustAdd(pod, "ctr-a")
	second := node.mustAdd(pod, "ctr-a")
	f4, f6 := podAddrs(t, first)
	s4, s6 := podAddrs(t, second)
	if f4 != s4 || f6 != s6 {
		t.Fatalf("repeated ADD gave %s,%s after %s,%s", s4, s6, f4, f6)
	}
	if got := node.allocations(); len(got) != 2 {
		t.Fatalf("store holds %v after two ADDs of one pod, want 2 allocations", got)
	}
	if err := node.check(pod, "ctr-a"); err != nil {
		t.Fatalf("CHECK after repeated ADD: %v", err)
	}
	srv := testnet.StartEchoServer(t, node.ns)
	if peer := testnet.EchoEventually(t, pod, netip.AddrPortFrom(testNodeIP4, srv.Port()), echoBound); peer != f4 {
		t.Errorf("node saw %s, want %s", peer, f4)
	}
}

// TestDelCleansUp: DEL removes the host veth, the node's routes and the allocations; DEL of an
// unknown container and a repeated DEL succeed; DEL without a netns still frees everything.
func TestDelCleansUp(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	pod := node.newPod("a")
	a4, a6 := podAddrs(t, node.mustAdd(pod, "ctr-a"))
	hostVeth := HostVethName("ctr-a", podIfName)
	node.ns.Link(t, hostVeth) // exists

	if err := node.del(pod.Path(), "ctr-a"); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if _, err := node.ns.Handle().LinkByName(hostVeth); err == nil {
		t.Errorf("host veth %s still exists after DEL", hostVeth)
	}
	if _, err := pod.Handle().LinkByName(podIfName); err == nil {
		t.Errorf("%s still exists in the pod after DEL", podIfName)
	}
	for _, ip := range []netip.Addr{a4, a6} {
		routes, err := node.ns.Handle().RouteGet(ip.AsSlice())
		if err == nil && len(routes) > 0 && routes[0].LinkIndex != 0 {
			if l, _ := node.ns.Handle().LinkByIndex(routes[0].LinkIndex); l != nil && strings.HasPrefix(l.Attrs().Name, HostVethPrefix) {
				t.Errorf("node still routes %s to %s after DEL", ip, l.Attrs().Name)
			}
		}
	}
	if got := node.allocations(); len(got) != 0 {
		t.Errorf("allocations left after DEL: %v", got)
	}
	if err := node.del(pod.Path(), "ctr-a"); err != nil {
		t.Errorf("second DEL: %v", err)
	}
	if err := node.del(pod.Path(), "never-added"); err != nil {
		t.Errorf("DEL of an unknown container: %v", err)
	}

	// DEL without a network namespace (the runtime lost it) frees the addresses and the link.
	podB := node.newPod("b")
	node.mustAdd(podB, "ctr-b")
	if err := node.del("", "ctr-b"); err != nil {
		t.Fatalf("DEL without netns: %v", err)
	}
	if got := node.allocations(); len(got) != 0 {
		t.Errorf("DEL without netns left allocations: %v", got)
	}
	if _, err := node.ns.Handle().LinkByName(HostVethName("ctr-b", podIfName)); err == nil {
		t.Errorf("DEL without netns left the host veth")
	}
}

// TestAllocationsSurviveRuntimeRestart: a runtime that lost its cache (new plugin processes,
// new libcni state) still sees earlier allocations: new pods get other addresses, and a repeated
// ADD of an old pod gets its old ones.
func TestAllocationsSurviveRuntimeRestart(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	podA, podB := node.newPod("a"), node.newPod("b")
	a4, a6 := podAddrs(t, node.mustAdd(podA, "ctr-a"))

	node.rt = node.newRuntime()
	b4, b6 := podAddrs(t, node.mustAdd(podB, "ctr-b"))
	if b4 == a4 || b6 == a6 {
		t.Fatalf("after restart pod b got %s,%s, already held by pod a", b4, b6)
	}
	again4, again6 := podAddrs(t, node.mustAdd(podA, "ctr-a"))
	if again4 != a4 || again6 != a6 {
		t.Errorf("after restart pod a got %s,%s, want its old %s,%s", again4, again6, a4, a6)
	}
}

// TestConcurrentAdds: 20 ADDs in parallel (20 plugin processes) never share an address, and 20
// parallel DELs leave nothing behind.
func TestConcurrentAdds(t *testing.T) {
	const pods = 20
	node := newTestNode(t, dualStackState(0))
	nss := make([]*testnet.Netns, pods)
	for i := range nss {
		nss[i] = node.newPod(fmt.Sprint(i))
	}
	results := make([][2]netip.Addr, pods)
	errs := make([]error, pods)
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			res, err := node.add(nss[i], fmt.Sprint("ctr-", i))
			if err == nil {
				results[i][0], results[i][1] = podAddrs(t, res)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	owner := map[netip.Addr]int{}
	for i := range pods {
		if errs[i] != nil {
			t.Fatalf("ADD %d: %v", i, errs[i])
		}
		for _, ip := range results[i] {
			if !ip.IsValid() {
				t.Fatalf("pod %d lacks an address family: %v", i, results[i])
			}
			if j, dup := owner[ip]; dup {
				t.Fatalf("pods %d and %d both got %s", j, i, ip)
			}
			owner[ip] = i
		}
	}
	if got := node.allocations(); len(got) != 2*pods {
		t.Errorf("store holds %d allocations, want %d", len(got), 2*pods)
	}
	for i := range pods {
		wg.Go(func() { errs[i] = node.del(nss[i].Path(), fmt.Sprint("ctr-", i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("DEL %d: %v", i, err)
		}
	}
	if got := node.allocations(); len(got) != 0 {
		t.Errorf("allocations left after parallel DELs: %v", got)
	}
	links, _ := node.ns.Handle().LinkList()
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, HostVethPrefix) {
			t.Errorf("host veth %s left after parallel DELs", l.Attrs().Name)
		}
	}
}

// TestGCFreesLeakedAllocations: GC from a runtime that knows only pod a (its cache has no other
// attachments to DEL, so the plugin's own GC must act) frees the leaked pods' addresses and host
// veths and leaves pod a working.
func TestGCFreesLeakedAllocations(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	podA, podB, podC := node.newPod("a"), node.newPod("b"), node.newPod("c")
	a4, _ := podAddrs(t, node.mustAdd(podA, "ctr-a"))
	node.mustAdd(podB, "ctr-b")
	node.mustAdd(podC, "ctr-c")

	if err := node.gcWith(node.newRuntime(), "ctr-a"); err != nil {
		t.Fatalf("GC: %v", err)
	}
	got := node.allocations()
	if len(got) != 2 || got[0].Owner.ContainerID != "ctr-a" || got[1].Owner.ContainerID != "ctr-a" {
		t.Errorf("after GC the store holds %v, want only ctr-a's two addresses", got)
	}
	for _, id := range []string{"ctr-b", "ctr-c"} {
		if _, err := node.ns.Handle().LinkByName(HostVethName(id, podIfName)); err == nil {
			t.Errorf("GC left the host veth of %s", id)
		}
	}
	if err := node.check(podA, "ctr-a"); err != nil {
		t.Errorf("CHECK of the valid pod after GC: %v", err)
	}
	srv := testnet.StartEchoServer(t, node.ns)
	if peer := testnet.EchoEventually(t, podA, netip.AddrPortFrom(testNodeIP4, srv.Port()), echoBound); peer != a4 {
		t.Errorf("node saw %s, want %s", peer, a4)
	}
}

// TestPoolExhausted: with a /30 the fourth pod fails with an error naming the CIDR and the
// count, and succeeds once a pod is deleted.
func TestPoolExhausted(t *testing.T) {
	node := newTestNode(t, &NodeState{PodCIDRs: PodCIDRs{IPv4: testTinyPods4}})
	pods := make([]*testnet.Netns, 4)
	for i := range pods {
		pods[i] = node.newPod(fmt.Sprint(i))
	}
	for i := range 3 {
		node.mustAdd(pods[i], fmt.Sprint("ctr-", i))
	}
	_, err := node.add(pods[3], "ctr-3")
	if err == nil {
		t.Fatal("4th ADD in a /30 succeeded")
	}
	ce := cniError(t, err)
	want := "pod CIDR 10.244.9.0/30 is exhausted: all 3 usable addresses are allocated"
	if ce.Code != CodePoolExhausted || ce.Msg != want {
		t.Errorf("error = code %d %q, want code %d %q", ce.Code, ce.Msg, CodePoolExhausted, want)
	}
	if _, err := node.ns.Handle().LinkByName(HostVethName("ctr-3", podIfName)); err == nil {
		t.Error("failed ADD left a host veth")
	}
	if err := node.del(pods[1].Path(), "ctr-1"); err != nil {
		t.Fatal(err)
	}
	res := node.mustAdd(pods[3], "ctr-3")
	if ip, _ := podAddrs(t, res); !testTinyPods4.Contains(ip) {
		t.Errorf("pod 3 got %s", ip)
	}
}

// TestNotReady: without a node state file ADD fails with "try again later" naming the file and
// STATUS reports "plugin not available"; a state without CIDRs is no better; once the agent
// writes CIDRs both work.
func TestNotReady(t *testing.T) {
	node := newTestNode(t, nil)
	pod := node.newPod("a")
	_, err := node.add(pod, "ctr-a")
	ce := cniError(t, err)
	if ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg, node.statePath) || !strings.Contains(ce.Msg, "does not exist") {
		t.Errorf("ADD without state file: code %d %q; want code 11 naming %s", ce.Code, ce.Msg, node.statePath)
	}
	ce = cniError(t, node.status())
	if ce.Code != types.ErrPluginNotAvailable || !strings.Contains(ce.Msg, node.statePath) {
		t.Errorf("STATUS without state file: code %d %q; want code 50 naming %s", ce.Code, ce.Msg, node.statePath)
	}

	node.writeState(&NodeState{NodeName: "test-node", MTU: 1450})
	_, err = node.add(pod, "ctr-a")
	if ce := cniError(t, err); ce.Code != types.ErrTryAgainLater || !strings.Contains(ce.Msg, "lists no pod CIDR") {
		t.Errorf("ADD with empty state: code %d %q", ce.Code, ce.Msg)
	}
	if ce := cniError(t, node.status()); ce.Code != types.ErrPluginNotAvailable || !strings.Contains(ce.Msg, "lists no pod CIDR") {
		t.Errorf("STATUS with empty state: code %d %q", ce.Code, ce.Msg)
	}
	if got := node.allocations(); len(got) != 0 {
		t.Errorf("failed ADDs allocated %v", got)
	}

	node.writeState(dualStackState(0))
	if err := node.status(); err != nil {
		t.Errorf("STATUS with pod CIDRs: %v", err)
	}
	node.mustAdd(pod, "ctr-a")
}

// TestBadNetns: a netns path that does not exist or is not a namespace fails with code 8 and
// allocates nothing.
func TestBadNetns(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	for _, path := range []string{t.TempDir() + "/no-such-netns", node.statePath} {
		_, err := node.addWith(node.rt, path, "ctr-x")
		ce := cniError(t, err)
		if ce.Code != types.ErrInvalidNetNS || !strings.Contains(ce.Msg, path) {
			t.Errorf("ADD with netns %s: code %d %q, want code 8 naming the path", path, ce.Code, ce.Msg)
		}
	}
	if got := node.allocations(); len(got) != 0 {
		t.Errorf("ADD with a bad netns allocated %v", got)
	}
}

// TestCheckDetectsDamage: CHECK reports a removed pod route and a removed node route.
func TestCheckDetectsDamage(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	pod := node.newPod("a")
	a4, _ := podAddrs(t, node.mustAdd(pod, "ctr-a"))

	podLink := pod.Link(t, podIfName)
	routes, err := pod.Handle().RouteList(podLink, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "::/0" {
			if err := pod.Handle().RouteDel(&r); err != nil {
				t.Fatal(err)
			}
		}
	}
	ce := cniError(t, node.check(pod, "ctr-a"))
	if ce.Code != CodeCheckFailed || !strings.Contains(ce.Msg, "default route via fe80::1 dev eth0 is missing") {
		t.Errorf("CHECK without the pod's IPv6 default route: code %d %q", ce.Code, ce.Msg)
	}

	node.mustAdd(pod, "ctr-a") // repair
	if err := node.check(pod, "ctr-a"); err != nil {
		t.Fatalf("CHECK after repairing ADD: %v", err)
	}
	hostLink := node.ns.Link(t, HostVethName("ctr-a", podIfName))
	if err := node.ns.Handle().RouteDel(&netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: hostPrefix(a4), Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	ce = cniError(t, node.check(pod, "ctr-a"))
	if ce.Code != CodeCheckFailed || !strings.Contains(ce.Msg, "node route "+a4.String()+"/32") {
		t.Errorf("CHECK without the node route: code %d %q", ce.Code, ce.Msg)
	}
}
