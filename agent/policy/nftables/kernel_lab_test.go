package nftables

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// The real-kernel lab: node1 runs the enforcer and hosts pods a/x, a/y and
// c/w; node2 hosts pod b/z and, as a host, stands for any machine outside
// node1. Every endpoint serves TCP and UDP on ports 80 and 81.
var (
	klabRanges = []netip.Prefix{
		netip.MustParsePrefix("10.97.0.0/24"), netip.MustParsePrefix("fd10:97::/64"),
		netip.MustParsePrefix("10.245.0.0/16"), netip.MustParsePrefix("fd10:245::/48"),
		netip.MustParsePrefix("10.95.0.0/16"), netip.MustParsePrefix("fd10:95::/64"),
	}
	// klabAddrs are the lab's endpoints, per family.
	klabAddrs = map[string][]netip.Addr{
		"node1": {pt.IP("10.97.0.11"), pt.IP("fd10:97::11")},
		"node2": {pt.IP("10.97.0.12"), pt.IP("fd10:97::12")},
		"a/x":   {pt.IP("10.245.1.2"), pt.IP("fd10:245:1::2")},
		"a/y":   {pt.IP("10.245.1.3"), pt.IP("fd10:245:1::3")},
		"c/w":   {pt.IP("10.245.1.4"), pt.IP("fd10:245:1::4")},
		"b/z":   {pt.IP("10.245.2.2"), pt.IP("fd10:245:2::2")},
	}
	// klabVIP is a "ClusterIP" DNATed to a/x:80 by a stand-in for the
	// service proxy (TCP, port 80); klabNodePort on node1's addresses is
	// DNATed to a/x:80 as well.
	klabVIP      = []netip.Addr{pt.IP("10.95.0.10"), pt.IP("fd10:95::10")}
	klabNodePort = uint16(30080)
	// klabEndpoints is the probe order (rows and columns).
	klabEndpoints = []string{"a/x", "a/y", "c/w", "b/z", "node1", "node2"}
	klabPorts     = []uint16{80, 81}
)

const (
	probeTimeout = time.Second
	// probeParallel bounds the probes in flight (each holds an OS thread
	// in a namespace; the machine has two cores).
	probeParallel = 48
	// probeAttempts: a probe that fails is retried, so a packet lost to a
	// busy machine does not read as a deny; a real deny fails every time,
	// and an unexpected allow needs no retry to be seen.
	probeAttempts = 3
	// klabSettle bounds the first connection through a fresh lab
	// (neighbour discovery on the bridge, IPv6 DAD).
	klabSettle = 10 * time.Second
)

type klab struct {
	ns  map[string]*testnet.Netns
	enf *Enforcer
}

func newKLab(t testing.TB) *klab {
	t.Helper()
	testnet.RequireRoot(t)
	if err := testnet.CheckNoOverlap(klabRanges...); err != nil {
		t.Fatal(err)
	}
	l := &klab{ns: map[string]*testnet.Netns{}}
	ul := testnet.NewUnderlay(t)
	seg := ul.AddSegment(t, "p", netip.MustParsePrefix("10.97.0.1/24"), netip.MustParsePrefix("fd10:97::1/64"))
	for _, n := range []string{"node1", "node2"} {
		ns := testnet.NewNetns(t, n)
		ns.EnableForwarding(t)
		seg.Attach(t, ns, "eth0", netip.PrefixFrom(klabAddrs[n][0], 24), netip.PrefixFrom(klabAddrs[n][1], 64))
		l.ns[n] = ns
	}
	for i, p := range []struct{ name, node, veth string }{
		{"a/x", "node1", "vethx"}, {"a/y", "node1", "vethy"}, {"c/w", "node1", "vethw"}, {"b/z", "node2", "vethz"},
	} {
		l.ns[p.name] = testnet.AddFakePod(t, l.ns[p.node], fmt.Sprintf("p%d", i), p.veth, klabAddrs[p.name]...)
	}
	l.ns["node1"].AddRoute(t, "eth0", netip.MustParsePrefix("10.245.2.0/24"), klabAddrs["node2"][0])
	l.ns["node1"].AddRoute(t, "eth0", netip.MustParsePrefix("fd10:245:2::/64"), klabAddrs["node2"][1])
	l.ns["node2"].AddRoute(t, "eth0", netip.MustParsePrefix("10.245.1.0/24"), klabAddrs["node1"][0])
	l.ns["node2"].AddRoute(t, "eth0", netip.MustParsePrefix("fd10:245:1::/64"), klabAddrs["node1"][1])
	l.ns["node2"].AddRoute(t, "eth0", netip.MustParsePrefix("10.95.0.0/16"), klabAddrs["node1"][0])
	l.ns["node2"].AddRoute(t, "eth0", netip.MustParsePrefix("fd10:95::/64"), klabAddrs["node1"][1])
	for _, n := range klabEndpoints {
		for _, port := range klabPorts {
			serveTCP(t, l.ns[n], port)
			for _, a := range klabAddrs[n] {
				serveUDP(t, l.ns[n], netip.AddrPortFrom(a, port))
			}
		}
	}
	l.addServiceDNAT(t)
	err := l.ns["node1"].Do(func() error {
		nft, err := NewNFTables()
		if err != nil {
			return err
		}
		nl, err := NewNetlink()
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = nl.Close() })
		// Element changes go through netlink, as in the agent.
		l.enf = New(nft, WithNetlink(nl))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Everything reaches everything before any policy.
	for _, fam := range []int{0, 1} {
		if !testnet.Poll(klabSettle, 50*time.Millisecond, func() bool {
			return probe(l.ns["a/x"], netip.AddrPortFrom(klabAddrs["b/z"][fam], 80), policy.TCP) &&
				probe(l.ns["node2"], netip.AddrPortFrom(klabAddrs["c/w"][fam], 80), policy.TCP)
		}) {
			t.Fatalf("lab does not settle (family %d)", fam)
		}
	}
	return l
}

// addServiceDNAT stands in for the service proxy on node1: a nat table
// at the dstnat priority in prerouting, as agent/proxy/nftables has it,
// that DNATs the VIP:80 and the NodePort to a/x:80. Its table goes with
// node1's namespace.
func (l *klab) addServiceDNAT(t testing.TB) {
	t.Helper()
	x := klabAddrs["a/x"]
	rules := fmt.Sprintf(`table inet plexus-test-dnat {
	chain prerouting {
		type nat hook prerouting priority dstnat;
		ip daddr %s tcp dport 80 dnat ip to %s:80
		ip6 daddr %s tcp dport 80 dnat ip6 to [%s]:80
		ip daddr %s tcp dport %d dnat ip to %s:80
		ip6 daddr %s tcp dport %d dnat ip6 to [%s]:80
	}
}
`, klabVIP[0], x[0], klabVIP[1], x[1], klabAddrs["node1"][0], klabNodePort, x[0], klabAddrs["node1"][1], klabNodePort, x[1])
	l.ns["node1"].Exec(t, "sh", "-c", "printf '%s' \""+rules+"\" | nft -f -")
}

// input compiles the lab's cluster as node1 sees it.
func (l *klab) input(policies ...*networkingv1.NetworkPolicy) policy.Input {
	return l.inputRelabelled(nil, policies...)
}

// inputRelabelled is input with the app labels of some pods replaced
// (by namespace/name).
func (l *klab) inputRelabelled(apps map[string]string, policies ...*networkingv1.NetworkPolicy) policy.Input {
	pod := func(ns, name, node, app string, ports ...corev1.ContainerPort) *corev1.Pod {
		if a, ok := apps[ns+"/"+name]; ok {
			app = a
		}
		return pt.Pod(ns, name, node, map[string]string{"app": app}, klabAddrs[ns+"/"+name], ports...)
	}
	return policy.Input{
		NodeName: "node1",
		NodeIPs:  klabAddrs["node1"],
		Policies: policies,
		Pods: []*corev1.Pod{
			pod("a", "x", "node1", "x", pt.CPort("http", 80, corev1.ProtocolTCP), pt.CPort("dns", 81, corev1.ProtocolUDP)),
			pod("a", "y", "node1", "y", pt.CPort("http", 81, corev1.ProtocolTCP)),
			pod("c", "w", "node1", "w"),
			pod("b", "z", "node2", "z", pt.CPort("http", 81, corev1.ProtocolTCP)),
		},
		Namespaces: pt.Namespaces(),
	}
}

// sync programs the model on node1.
func (l *klab) sync(t testing.TB, m *policy.Model) {
	t.Helper()
	if len(m.Errors) > 0 {
		t.Fatalf("compile: %v", m.Errors)
	}
	err := l.ns["node1"].Do(func() error {
		_, err := l.enf.Sync(context.Background(), m, false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// This table is about first packets: a UDP probe whose ephemeral port
	// repeats one of a previous case would ride that case's conntrack
	// entry (TestKernelConntrackCut covers established flows).
	if err := l.ns["node1"].Do(func() error { return netlink.ConntrackTableFlush(netlink.ConntrackTable) }); err != nil {
		t.Fatal(err)
	}
	// Cold neighbour caches: an isolated pod must still resolve its
	// gateway (IPv6 neighbour discovery goes through the input hook).
	for _, p := range []string{"a/x", "a/y", "c/w"} {
		l.ns[p].Exec(t, "ip", "neigh", "flush", "all")
		l.ns[p].Exec(t, "ip", "-6", "neigh", "flush", "all")
	}
}

// cell is one probe of the truth table.
type cell struct {
	from, to string
	dst      netip.AddrPort
	proto    policy.Protocol
	// flow is what node1's data plane sees (after DNAT).
	flow policy.Flow
}

// cells returns every probe of family fam: each endpoint to each other
// endpoint on TCP/UDP 80/81, plus TCP to the VIP and the NodePort.
func cells(fam int) []cell {
	var out []cell
	for _, from := range klabEndpoints {
		for _, to := range klabEndpoints {
			if from == to {
				continue
			}
			for _, proto := range []policy.Protocol{policy.TCP, policy.UDP} {
				for _, port := range klabPorts {
					dst := netip.AddrPortFrom(klabAddrs[to][fam], port)
					out = append(out, cell{from: from, to: to, dst: dst, proto: proto,
						flow: policy.Flow{Src: klabAddrs[from][fam], Dst: dst.Addr(), Protocol: proto, Port: port}})
				}
			}
		}
		if from == "a/x" || from == "node1" {
			continue // hairpin and node-local Service traffic are not this test's subject
		}
		x := policy.Flow{Src: klabAddrs[from][fam], Dst: klabAddrs["a/x"][fam], Protocol: policy.TCP, Port: 80}
		out = append(out,
			cell{from: from, to: "vip→a/x", dst: netip.AddrPortFrom(klabVIP[fam], 80), proto: policy.TCP, flow: x})
		if from == "node2" {
			out = append(out, cell{from: from, to: "nodeport→a/x", dst: netip.AddrPortFrom(klabAddrs["node1"][fam], klabNodePort), proto: policy.TCP, flow: x})
		}
	}
	return out
}

// checkMatrix probes every cell of both families at once and fails with
// expected (the model's Evaluate) and observed side by side if any differ.
func (l *klab) checkMatrix(t *testing.T, m *policy.Model) {
	t.Helper()
	type outcome struct {
		c         cell
		want, got bool
	}
	var all []*outcome
	for _, fam := range []int{0, 1} {
		for _, c := range cells(fam) {
			all = append(all, &outcome{c: c, want: m.Evaluate(c.flow).Verdict == policy.Allow})
		}
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, probeParallel)
	for _, o := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			attempts := 1
			if o.want {
				attempts = probeAttempts
			}
			for i := 0; i < attempts && !o.got; i++ {
				o.got = probe(l.ns[o.c.from], o.c.dst, o.c.proto)
			}
		}()
	}
	wg.Wait()
	var bad []string
	allowed := 0
	for _, o := range all {
		if o.got {
			allowed++
		}
		if o.got != o.want {
			bad = append(bad, fmt.Sprintf("%-6s -> %-13s %-28s %s: expected %s, observed %s  [%s]",
				o.c.from, o.c.to, o.c.dst, o.c.proto, yes(o.want), yes(o.got), m.Evaluate(o.c.flow)))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d probes differ from the model:\n%s", len(bad), len(all), strings.Join(bad, "\n"))
	} else {
		t.Logf("%d probes match the model (%d allowed, %d denied)", len(all), allowed, len(all)-allowed)
	}
}

func yes(b bool) string {
	if b {
		return "allow"
	}
	return "DENY"
}

// probe reports whether a TCP connection (with a reply) or a UDP datagram
// and its reply gets from ns to dst within probeTimeout.
func probe(ns *testnet.Netns, dst netip.AddrPort, proto policy.Protocol) bool {
	network := "tcp"
	if proto == policy.UDP {
		network = "udp"
	}
	var c net.Conn
	if err := ns.Do(func() (err error) { c, err = net.DialTimeout(network, dst.String(), probeTimeout); return err }); err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	return err == nil && string(buf[:n]) == "pong\n"
}

// serveTCP answers "pong" to each connection's first line.
func serveTCP(t testing.TB, ns *testnet.Netns, port uint16) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); return err }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 64)
				for {
					_ = c.SetDeadline(time.Now().Add(30 * time.Second))
					if _, err := c.Read(buf); err != nil {
						return
					}
					if _, err := c.Write([]byte("pong\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
}

// serveUDP answers "pong" to every datagram. It binds one address: an
// unbound socket would answer from the address routing picks (a node's
// pod-facing link-local gateway), which the client's connected socket
// would not accept.
func serveUDP(t testing.TB, ns *testnet.Netns, at netip.AddrPort) {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Do(func() (err error) { pc, err = net.ListenPacket("udp", at.String()); return err }); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte("pong\n"), from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
}
