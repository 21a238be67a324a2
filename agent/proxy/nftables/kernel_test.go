package nftables

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/healthcheck"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// The real-kernel lab: two nodes on one underlay segment, a client pod
// and a backend pod on node1 (which runs the proxier), a backend pod on
// node2, and a host outside the cluster on the segment.
var (
	labRanges = []netip.Prefix{
		netip.MustParsePrefix("10.99.0.0/24"), netip.MustParsePrefix("fd10:99::/64"),
		netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("fd00:10:96::/112"),
		netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd10:244::/56"),
	}
	node1IPs   = []netip.Addr{ip("10.99.0.11"), ip("fd10:99::11")}
	node2IPs   = []netip.Addr{ip("10.99.0.12"), ip("fd10:99::12")}
	outsideIPs = []netip.Addr{ip("10.99.0.100"), ip("fd10:99::100")}
	clientIPs  = []netip.Addr{ip("10.244.1.2"), ip("fd10:244:0:1::2")}
	b1IPs      = []netip.Addr{ip("10.244.1.5"), ip("fd10:244:0:1::5")}
	b2IPs      = []netip.Addr{ip("10.244.2.5"), ip("fd10:244:0:2::5")}
)

const (
	// connections per balance check: the chance that 20 random picks of
	// two endpoints all land on one is 2^-19.
	balanceConns = 20
	dialTimeout  = 2 * time.Second
	// settleBound bounds the first connection through a freshly wired lab
	// (neighbour discovery on the bridge).
	settleBound = 10 * time.Second
)

type lab struct {
	node1, node2, outside *testnet.Netns
	client, b1, b2        *testnet.Netns
	port1, port2          uint16 // the backends' server ports
	p                     *Proxier
	hc                    *healthcheck.Servers
}

func newLab(t *testing.T) *lab {
	t.Helper()
	testnet.RequireRoot(t)
	if err := testnet.CheckNoOverlap(labRanges...); err != nil {
		t.Fatal(err)
	}
	l := &lab{}
	ul := testnet.NewUnderlay(t)
	seg := ul.AddSegment(t, "a", netip.MustParsePrefix("10.99.0.1/24"), netip.MustParsePrefix("fd10:99::1/64"))
	l.node1, l.node2 = testnet.NewNetns(t, "node1"), testnet.NewNetns(t, "node2")
	for i, n := range []*testnet.Netns{l.node1, l.node2} {
		ips := [][]netip.Addr{node1IPs, node2IPs}[i]
		n.EnableForwarding(t)
		seg.Attach(t, n, "eth0", netip.PrefixFrom(ips[0], 24), netip.PrefixFrom(ips[1], 64))
	}
	l.outside = testnet.NewNetns(t, "outside")
	seg.Attach(t, l.outside, "eth0", netip.PrefixFrom(outsideIPs[0], 24), netip.PrefixFrom(outsideIPs[1], 64))
	l.client = testnet.AddFakePod(t, l.node1, "client", "vethclient", clientIPs...)
	l.b1 = testnet.AddFakePod(t, l.node1, "b1", "vethb1", b1IPs...)
	l.b2 = testnet.AddFakePod(t, l.node2, "b2", "vethb2", b2IPs...)
	l.node1.AddRoute(t, "eth0", netip.MustParsePrefix("10.244.2.0/24"), node2IPs[0])
	l.node1.AddRoute(t, "eth0", netip.MustParsePrefix("fd10:244:0:2::/64"), node2IPs[1])
	l.node2.AddRoute(t, "eth0", netip.MustParsePrefix("10.244.1.0/24"), node1IPs[0])
	l.node2.AddRoute(t, "eth0", netip.MustParsePrefix("fd10:244:0:1::/64"), node1IPs[1])
	l.port1 = testnet.ServeName(t, l.b1, "b1", 0)
	l.port2 = testnet.ServeName(t, l.b2, "b2", 0)
	l.hc = healthcheck.New(func(port uint16) (net.Listener, error) {
		var ln net.Listener
		err := l.node1.Do(func() (err error) {
			ln, err = healthcheck.ListenAll(port)
			return err
		})
		return ln, err
	})
	t.Cleanup(func() { _ = l.hc.Close() })
	err := l.node1.Do(func() error {
		nft, err := nfttable.Open(TableFamily, TableName)
		if err != nil {
			return err
		}
		nl, err := NewNetlink("")
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = nl.Close() })
		// Element changes go through netlink, as in the agent.
		l.p = New(nft, WithHealthChecker(l.hc), WithConntrack(ExecConntrack{}), WithNetlink(nl))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// node1Info is node1 as the model sees it.
var node1Info = proxy.NodeInfo{Name: "node1", Addresses: node1IPs}

// sync programs w on node1; nft runs in node1's namespace.
func (l *lab) sync(t *testing.T, w *world) {
	t.Helper()
	m := proxy.Build(w.svcs, w.slices, node1Info)
	if err := l.node1.Do(func() error { return l.p.Sync(context.Background(), m) }); err != nil {
		t.Fatalf("sync on node1: %v", err)
	}
}

// backends returns per-family slices for a Service with the lab's backends
// (one slice per backend: each listens on its own port).
func (l *lab) backends(name string, fam int, withB1, withB2 bool) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	if withB1 {
		out = append(out, pt.Slice("ns", name, name+"-b1-"+strconv.Itoa(fam), "p", corev1.ProtocolTCP, int32(l.port1), pt.EP{IP: b1IPs[fam].String(), Node: "node1"}))
	}
	if withB2 {
		out = append(out, pt.Slice("ns", name, name+"-b2-"+strconv.Itoa(fam), "p", corev1.ProtocolTCP, int32(l.port2), pt.EP{IP: b2IPs[fam].String(), Node: "node2"}))
	}
	return out
}

// call connects from ns to target once: the answering backend and the
// client address it saw.
func call(ns *testnet.Netns, target netip.AddrPort) (name, peer string, err error) {
	var c net.Conn
	if err := ns.Do(func() (err error) { c, err = net.DialTimeout("tcp", target.String(), dialTimeout); return err }); err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(dialTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", "", fmt.Errorf("read from %s: %w", target, err)
	}
	name, peer, _ = strings.Cut(strings.TrimSpace(line), " ")
	return name, peer, nil
}

// calls makes n connections (the first one retried within settleBound)
// and counts backends and peers.
func calls(t *testing.T, ns *testnet.Netns, target netip.AddrPort, n int) (names, peers map[string]int) {
	t.Helper()
	names, peers = map[string]int{}, map[string]int{}
	for i := 0; i < n; i++ {
		name, peer, err := call(ns, target)
		if i == 0 && err != nil {
			testnet.Poll(settleBound, 50*time.Millisecond, func() bool {
				name, peer, err = call(ns, target)
				return err == nil
			})
		}
		if err != nil {
			t.Fatalf("from %s to %s (connection %d): %v", ns, target, i+1, err)
		}
		names[name]++
		peers[peer]++
	}
	return names, peers
}

func vip(s string, port uint16) netip.AddrPort { return netip.AddrPortFrom(ip(s), port) }

// TestKernelClusterIPAndDualStack: a dual-stack ClusterIP is balanced over
// backends on both nodes in each family, pods see the client's own
// address, and resyncs of the same model write nothing to the kernel.
func TestKernelClusterIPAndDualStack(t *testing.T) {
	l := newLab(t)
	w := &world{}
	w.add(pt.Service("ns", "web", []string{"10.96.0.10", "fd00:10:96::10"}, pt.Port("p", corev1.ProtocolTCP, 80)))
	w.slices = append(l.backends("web", 0, true, true), l.backends("web", 1, true, true)...)
	l.sync(t, w)
	for fam, target := range []netip.AddrPort{vip("10.96.0.10", 80), vip("fd00:10:96::10", 80)} {
		names, peers := calls(t, l.client, target, balanceConns)
		if names["b1"] == 0 || names["b2"] == 0 {
			t.Errorf("%s: backends hit %v, want both", target, names)
		}
		if want := clientIPs[fam].String(); peers[want] != balanceConns {
			t.Errorf("%s: backends saw clients %v, want only the pod %s (no SNAT)", target, peers, want)
		}
	}
	l.sync(t, w)
	if s := l.p.Stats(); s.Wrote {
		t.Errorf("no-op resync wrote %d operations", s.Operations)
	}
	restarted := New(l.p.nft)
	m := proxy.Build(w.svcs, w.slices, node1Info)
	if err := l.node1.Do(func() error { return restarted.Sync(context.Background(), m) }); err != nil {
		t.Fatal(err)
	}
	if s := restarted.Stats(); s.Wrote || !s.Full {
		t.Errorf("full resync of an unchanged table after a restart wrote %d operations", s.Operations)
	}
}

// TestKernelNodePortAndLocalPolicies: NodePort from outside is balanced
// and masqueraded; with externalTrafficPolicy Local it reaches only the
// local backend, which sees the real client address, and the health check
// node port says so; internalTrafficPolicy Local never leaves the node.
func TestKernelNodePortAndLocalPolicies(t *testing.T) {
	l := newLab(t)
	w := &world{}
	np := pt.Service("ns", "np", []string{"10.96.0.20"}, pt.NodePortPort("p", corev1.ProtocolTCP, 80, 30080))
	np.Spec.Type = corev1.ServiceTypeNodePort
	w.add(np, l.backends("np", 0, true, true)...)
	lb := pt.Service("ns", "lb", []string{"10.96.0.30"}, pt.NodePortPort("p", corev1.ProtocolTCP, 80, 30081))
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	lb.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	lb.Spec.HealthCheckNodePort = 32001
	w.add(lb, l.backends("lb", 0, true, true)...)
	itp := pt.Service("ns", "itp", []string{"10.96.0.40"}, pt.Port("p", corev1.ProtocolTCP, 80))
	itp.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	w.add(itp, l.backends("itp", 0, true, true)...)
	l.sync(t, w)

	names, peers := calls(t, l.outside, vip(node1IPs[0].String(), 30080), balanceConns)
	if names["b1"] == 0 || names["b2"] == 0 {
		t.Errorf("NodePort: backends hit %v, want both", names)
	}
	if peers[outsideIPs[0].String()] != 0 {
		t.Errorf("NodePort: backends saw the outside client %v, want it masqueraded", peers)
	}
	names, peers = calls(t, l.outside, vip(node1IPs[0].String(), 30081), balanceConns)
	if names["b1"] != balanceConns || peers[outsideIPs[0].String()] != balanceConns {
		t.Errorf("eTP Local NodePort: backends %v, clients %v; want only b1 (local), seeing %s", names, peers, outsideIPs[0])
	}
	if code := httpStatus(t, l.outside, vip(node1IPs[0].String(), 32001)); code != http.StatusOK {
		t.Errorf("health check node port answered %d with a local endpoint, want 200", code)
	}
	names, _ = calls(t, l.client, vip("10.96.0.40", 80), balanceConns)
	if names["b1"] != balanceConns {
		t.Errorf("iTP Local: backends hit %v, want only b1 (on this node)", names)
	}

	// Without the local backend: eTP Local drops, health check says 503.
	w.slices = nil
	w.slices = append(w.slices, l.backends("np", 0, true, true)...)
	w.slices = append(w.slices, l.backends("lb", 0, false, true)...)
	w.slices = append(w.slices, l.backends("itp", 0, true, true)...)
	l.sync(t, w)
	if code := httpStatus(t, l.outside, vip(node1IPs[0].String(), 32001)); code != http.StatusServiceUnavailable {
		t.Errorf("health check node port answered %d without local endpoints, want 503", code)
	}
}

func httpStatus(t *testing.T, ns *testnet.Netns, target netip.AddrPort) int {
	t.Helper()
	var c net.Conn
	var err error
	testnet.Poll(settleBound, 50*time.Millisecond, func() bool {
		err = ns.Do(func() (err error) { c, err = net.DialTimeout("tcp", target.String(), dialTimeout); return err })
		return err == nil
	})
	if err != nil {
		t.Fatalf("health check %s: %v", target, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(dialTimeout))
	_, _ = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("health check %s: %v", target, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestKernelAffinityRejectRemovalHairpin: ClientIP affinity sticks; a
// Service without endpoints refuses at once; a removed endpoint gets no
// new connections; a pod reaches itself through its own Service.
func TestKernelAffinityRejectRemovalHairpin(t *testing.T) {
	l := newLab(t)
	w := &world{}
	aff := pt.Service("ns", "aff", []string{"10.96.0.50"}, pt.Port("p", corev1.ProtocolTCP, 80))
	aff.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	w.add(aff, l.backends("aff", 0, true, true)...)
	w.add(pt.Service("ns", "empty", []string{"10.96.0.60", "fd00:10:96::60"}, pt.Port("p", corev1.ProtocolTCP, 80)))
	w.add(pt.Service("ns", "web", []string{"10.96.0.10"}, pt.Port("p", corev1.ProtocolTCP, 80)), l.backends("web", 0, true, true)...)
	w.add(pt.Service("ns", "self", []string{"10.96.0.70"}, pt.Port("p", corev1.ProtocolTCP, 80)), l.backends("self", 0, true, false)...)
	l.sync(t, w)

	names, _ := calls(t, l.client, vip("10.96.0.50", 80), balanceConns)
	if len(names) != 1 {
		t.Errorf("affinity: backends hit %v, want one", names)
	}

	for _, target := range []netip.AddrPort{vip("10.96.0.60", 80), vip("fd00:10:96::60", 80)} {
		for _, from := range []*testnet.Netns{l.client, l.node1} { // a pod (prerouting), the node (output)
			_, _, err := call(from, target)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("no endpoints %s from %s: %v, want connection refused at once", target, from, err)
			}
		}
	}

	// Losing an endpoint of the affinity Service empties the affinity map
	// (in the kernel's transaction) and new connections still work.
	w.slices = slicesWithout(w.slices, "aff-b2-0")
	l.sync(t, w)
	if names, _ := calls(t, l.client, vip("10.96.0.50", 80), 3); names["b1"] != 3 {
		t.Errorf("affinity after removing b2: %v, want b1", names)
	}

	names, _ = calls(t, l.client, vip("10.96.0.10", 80), balanceConns)
	if names["b2"] == 0 {
		t.Fatalf("web before removal: %v, want b2 hit", names)
	}
	w.slices = slicesWithout(w.slices, "web-b2-0")
	l.sync(t, w)
	names, _ = calls(t, l.client, vip("10.96.0.10", 80), balanceConns)
	if names["b1"] != balanceConns {
		t.Errorf("after removing b2: backends hit %v, want only b1", names)
	}

	names, peers := calls(t, l.b1, vip("10.96.0.70", 80), 3)
	if names["b1"] != 3 {
		t.Errorf("hairpin: %v %v, want b1 reaching itself", names, peers)
	}
}

func slicesWithout(in []*discoveryv1.EndpointSlice, name string) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, s := range in {
		if s.Name != name {
			out = append(out, s)
		}
	}
	return out
}
