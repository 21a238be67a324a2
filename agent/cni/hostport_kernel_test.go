package cni

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/hostport"
	"github.com/plexus-net/plexus/internal/testnet"
)

// Real-kernel host-port tests: the real plugin through libcni with the portMappings capability,
// real nft, real TCP and UDP. SCTP cannot be tried here (this kernel has no SCTP); its rules are
// proven by agent/hostport's exact-rule and tracer tests.

const hostPort = 54321

// TestHostPorts: the conformance spec's three pods (one port on 127.0.0.1 and ::1 over TCP, on the node
// address over TCP, on the node address over UDP) coexist and each is reached; a dual-stack
// wildcard host port is reached over both families and protocols, from another node, from the
// node itself and from pods (hairpin to itself included); a proxy table that DNATs the same
// port does not take it over; a wildcard catches no traffic that only passes through the node;
// DEL removes exactly the pod's ports.
func TestHostPorts(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	remote := node.addRemote()
	pm := func(host, cont int, proto, hostIP string) hostport.RuntimePortMapping {
		return hostport.RuntimePortMapping{HostPort: host, ContainerPort: cont, Protocol: proto, HostIP: hostIP}
	}
	pods := map[string]*testnet.Netns{}
	for _, name := range []string{"pod1", "pod2", "pod3", "pod4", "pod5"} {
		pods[name] = node.newPod(name)
		testnet.ServeName(t, pods[name], name, 8080)
	}
	testnet.ServeName(t, pods["pod2"], "pod2", 8443) // on the wildcard's port, reached only directly
	node.mustAddWithPorts(pods["pod1"], "ctr-1", pm(hostPort, 8080, "TCP", "127.0.0.1"), pm(hostPort, 8080, "TCP", "::1"))
	pod2v4, _ := node.mustAddWithPorts(pods["pod2"], "ctr-2", pm(hostPort, 8080, "TCP", testNodeIP4.String()))
	node.mustAddWithPorts(pods["pod3"], "ctr-3", pm(hostPort, 8080, "UDP", testNodeIP4.String()), pm(hostPort, 8080, "TCP", testNodeIP6.String()))
	pod4v4, pod4v6 := node.mustAddWithPorts(pods["pod4"], "ctr-4", pm(8443, 8080, "TCP", ""), pm(8443, 8080, "UDP", ""))
	p5v4, _ := podAddrs(t, node.mustAdd(pods["pod5"], "ctr-5"))

	// A service-proxy-like table that DNATs the same node address and port elsewhere at dstnat,
	// as inet plexus-proxy does for a NodePort: the host port's chain (dstnat - 1) binds first.
	node.ns.Exec(t, "nft", "add table inet hostport-test-proxy; "+
		"add chain inet hostport-test-proxy pre { type nat hook prerouting priority dstnat ; }; "+
		"add chain inet hostport-test-proxy out { type nat hook output priority -100 ; }; "+
		"add rule inet hostport-test-proxy pre ip daddr 10.250.0.1 tcp dport 54321 dnat ip to 10.244.1.250:80; "+
		"add rule inet hostport-test-proxy out ip daddr 10.250.0.1 tcp dport 54321 dnat ip to 10.244.1.250:80")
	t.Cleanup(func() { _, _ = node.ns.TryExec("nft", "delete table inet hostport-test-proxy") })

	at := func(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }
	none := netip.Addr{}
	for _, c := range []struct {
		what  string
		from  *testnet.Netns
		proto string
		src   netip.Addr
		to    netip.AddrPort
		want  string
	}{
		{"remote, tcp, node address -> pod2", remote, "tcp", none, at(testNodeIP4, hostPort), "pod2 " + remoteIP4.String()},
		{"remote, udp, node address -> pod3", remote, "udp", none, at(testNodeIP4, hostPort), "pod3 " + remoteIP4.String()},
		{"remote, tcp, node IPv6 address -> pod3", remote, "tcp", none, at(testNodeIP6, hostPort), "pod3 " + remoteIP6.String()},
		{"node from its address to 127.0.0.1 -> pod1", node.ns, "tcp", testNodeIP4, at(netip.MustParseAddr("127.0.0.1"), hostPort), "pod1 " + testNodeIP4.String()},
		{"node from its address to ::1 -> pod1", node.ns, "tcp", testNodeIP6, at(netip.MustParseAddr("::1"), hostPort), "pod1 " + testNodeIP6.String()},
		{"node, tcp, its own address -> pod2", node.ns, "tcp", none, at(testNodeIP4, hostPort), "pod2 " + testNodeIP4.String()},
		{"node, udp, its own address -> pod3", node.ns, "udp", none, at(testNodeIP4, hostPort), "pod3 " + testNodeIP4.String()},
		{"remote, wildcard tcp IPv4", remote, "tcp", none, at(testNodeIP4, 8443), "pod4 " + remoteIP4.String()},
		{"remote, wildcard udp IPv4", remote, "udp", none, at(testNodeIP4, 8443), "pod4 " + remoteIP4.String()},
		{"remote, wildcard tcp IPv6", remote, "tcp", none, at(testNodeIP6, 8443), "pod4 " + remoteIP6.String()},
		{"remote, wildcard udp IPv6", remote, "udp", none, at(testNodeIP6, 8443), "pod4 " + remoteIP6.String()},
		{"node, wildcard IPv6", node.ns, "tcp", none, at(testNodeIP6, 8443), "pod4 " + testNodeIP6.String()},
		{"other pod on the node, wildcard", pods["pod5"], "tcp", none, at(testNodeIP4, 8443), "pod4 " + p5v4.String()},
		{"remote to pod2 directly on the wildcard's port: not caught", remote, "tcp", none, at(pod2v4, 8443), "pod2 " + remoteIP4.String()},
	} {
		got, err := askNameEventually(c.from, c.proto, c.src, c.to)
		if err != nil || got != c.want {
			t.Errorf("%s: %q (%v), want %q", c.what, got, err, c.want)
		}
	}

	// A repeated ADD of pod4 (the runtime retrying) keeps its ports and is no conflict with itself.
	node.mustAddWithPorts(pods["pod4"], "ctr-4", pm(8443, 8080, "TCP", ""), pm(8443, 8080, "UDP", ""))
	if got, err := askNameEventually(remote, "tcp", none, at(testNodeIP4, 8443)); err != nil || !strings.HasPrefix(got, "pod4 ") {
		t.Errorf("after a repeated ADD of pod4: %q (%v)", got, err)
	}

	// CHECK sees the ports in place, and a lost element.
	pod4Ports := []hostport.RuntimePortMapping{pm(8443, 8080, "TCP", ""), pm(8443, 8080, "UDP", "")}
	if err := node.checkWithPorts(pods["pod4"], "ctr-4", pod4Ports...); err != nil {
		t.Errorf("CHECK of pod4 with its host ports: %v", err)
	}
	node.ns.Exec(t, "nft", "delete element inet "+hostport.TableName+" anyip-v6 { udp . 8443 }")
	if err := node.checkWithPorts(pods["pod4"], "ctr-4", pod4Ports...); err == nil || cniError(t, err).Code != CodeCheckFailed {
		t.Errorf("CHECK after losing an element: %v, want code %d", err, CodeCheckFailed)
	}
	node.mustAddWithPorts(pods["pod4"], "ctr-4", pod4Ports...) // a repeated ADD repairs it

	// Hairpin: pod4 reaches itself through its own host port, over both families; it sees the
	// connection come from an address other than its own (masqueraded), or its answer would
	// never reach the connection it opened.
	for _, c := range []struct {
		to  netip.AddrPort
		own netip.Addr
	}{{at(testNodeIP4, 8443), pod4v4}, {at(testNodeIP6, 8443), pod4v6}} {
		for _, proto := range []string{"tcp", "udp"} {
			got, err := askNameEventually(pods["pod4"], proto, none, c.to)
			if err != nil || !strings.HasPrefix(got, "pod4 ") || got == "pod4 "+c.own.String() {
				t.Errorf("hairpin %s to %s: %q (%v), want pod4 answering a masqueraded peer", proto, c.to, got, err)
			}
		}
	}

	// DEL of pod2 removes its port and nothing else.
	if err := node.del(pods["pod2"].Path(), "ctr-2"); err != nil {
		t.Fatalf("DEL pod2: %v", err)
	}
	if got, err := askName(remote, "tcp", none, at(testNodeIP4, hostPort)); err == nil {
		t.Errorf("pod2's host port still answers after DEL: %q", got)
	}
	if strings.Contains(node.hostPortTable(), pod2v4.String()) {
		t.Errorf("table still names pod2 after DEL:\n%s", node.hostPortTable())
	}
	if got, err := askNameEventually(remote, "udp", none, at(testNodeIP4, hostPort)); err != nil || !strings.HasPrefix(got, "pod3 ") {
		t.Errorf("pod3 after pod2's DEL: %q (%v)", got, err)
	}
	for _, id := range []string{"ctr-1", "ctr-3", "ctr-4", "ctr-5"} {
		if err := node.del("", id); err != nil {
			t.Fatalf("DEL %s: %v", id, err)
		}
	}
	if table := node.hostPortTable(); table != "" {
		t.Errorf("host-port table left after every pod went:\n%s", table)
	}
}

// TestHostPortConflict: a pod asking for a frontend another pod holds is refused with the
// plugin's conflict code and leaves nothing behind; the first pod keeps its port.
func TestHostPortConflict(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	remote := node.addRemote()
	first, second := node.newPod("first"), node.newPod("second")
	testnet.ServeName(t, first, "first", 8080)
	pm := hostport.RuntimePortMapping{HostPort: hostPort, ContainerPort: 8080, Protocol: "TCP", HostIP: testNodeIP4.String()}
	node.mustAddWithPorts(first, "ctr-first", pm)
	_, err := node.addWithPorts(second, "ctr-second", pm)
	if err == nil {
		t.Fatal("ADD of a second pod on the same host port succeeded")
	}
	if ce := cniError(t, err); ce.Code != CodeHostPortConflict {
		t.Errorf("error code %d (%v), want %d", ce.Code, ce, CodeHostPortConflict)
	}
	if got := node.allocations(); len(got) != 2 {
		t.Errorf("allocations after the refused ADD: %v, want the first pod's 2", got)
	}
	if _, err := node.ns.Handle().LinkByName(HostVethName("ctr-second", podIfName)); err == nil {
		t.Error("the refused pod's host veth is left")
	}
	if got, err := askNameEventually(remote, "tcp", netip.Addr{}, netip.AddrPortFrom(testNodeIP4, hostPort)); err != nil || !strings.HasPrefix(got, "first ") {
		t.Errorf("first pod after the refused ADD: %q (%v)", got, err)
	}
}

// TestGCRemovesHostPorts: GC removes the host ports of attachments the runtime no longer lists
// and elements no record explains, and keeps the valid pod's.
func TestGCRemovesHostPorts(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	remote := node.addRemote()
	kept, leaked := node.newPod("kept"), node.newPod("leaked")
	testnet.ServeName(t, kept, "kept", 8080)
	testnet.ServeName(t, leaked, "leaked", 8080)
	node.mustAddWithPorts(kept, "ctr-kept", hostport.RuntimePortMapping{HostPort: 8081, ContainerPort: 8080})
	leakedV4, _ := node.mustAddWithPorts(leaked, "ctr-leaked", hostport.RuntimePortMapping{HostPort: 8082, ContainerPort: 8080})
	// A stray element, as a plugin that died between its nft write and its record leaves.
	node.ns.Exec(t, "nft", "add element inet "+hostport.TableName+" anyip-v4 { tcp . 9999 : 10.244.1.200 . 80 }")

	if err := node.gcWith(node.rt, "ctr-kept"); err != nil {
		t.Fatalf("GC: %v", err)
	}
	table := node.hostPortTable()
	if strings.Contains(table, leakedV4.String()) || strings.Contains(table, "9999") || !strings.Contains(table, "8081") {
		t.Errorf("table after GC:\n%s", table)
	}
	if got, err := askName(remote, "tcp", netip.Addr{}, netip.AddrPortFrom(testNodeIP4, 8082)); err == nil {
		t.Errorf("the collected pod's host port still answers: %q", got)
	}
	if got, err := askNameEventually(remote, "tcp", netip.Addr{}, netip.AddrPortFrom(testNodeIP4, 8081)); err != nil || !strings.HasPrefix(got, "kept ") {
		t.Errorf("kept pod after GC: %q (%v)", got, err)
	}
	if err := node.gcWith(node.rt); err != nil {
		t.Fatalf("GC of everything: %v", err)
	}
	if table := node.hostPortTable(); table != "" {
		t.Errorf("table left after GC of every pod:\n%s", table)
	}
}

// TestHostPortUDPMovesToNewPod: a UDP client that keeps one socket (one conntrack entry) follows
// its host port to the pod that takes it over after the first one is deleted: DEL and ADD flush
// the port's UDP conntrack entries, which would otherwise still point at the deleted pod.
func TestHostPortUDPMovesToNewPod(t *testing.T) {
	node := newTestNode(t, dualStackState(0))
	remote := node.addRemote()
	oldPod, newPod := node.newPod("old"), node.newPod("new")
	testnet.ServeName(t, oldPod, "old", 8080)
	testnet.ServeName(t, newPod, "new", 8080)
	pm := hostport.RuntimePortMapping{HostPort: 5353, ContainerPort: 8080, Protocol: "UDP"}
	node.mustAddWithPorts(oldPod, "ctr-old", pm)

	var conn net.Conn
	if err := remote.Do(func() (err error) {
		conn, err = net.Dial("udp", netip.AddrPortFrom(testNodeIP4, 5353).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func() string {
		var got string
		testnet.Poll(echoBound, 50*time.Millisecond, func() bool {
			_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := conn.Write([]byte("who\n")); err != nil {
				return false
			}
			buf := make([]byte, 64)
			n, err := conn.Read(buf)
			got = strings.Fields(string(buf[:n]) + " ?")[0]
			return err == nil
		})
		return got
	}
	if got := ask(); got != "old" {
		t.Fatalf("first answer from %q, want old", got)
	}
	if err := node.del(oldPod.Path(), "ctr-old"); err != nil {
		t.Fatal(err)
	}
	node.mustAddWithPorts(newPod, "ctr-new", pm)
	if got := ask(); got != "new" {
		t.Errorf("after the host port moved, the same client socket reached %q, want new", got)
	}
}
