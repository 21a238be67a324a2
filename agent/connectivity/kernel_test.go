package connectivity

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/internal/testnet"
)

// Ranges of the kernel test: two nodes on one link (direct routes), each with a pod CIDR per family.
var (
	kNodeA4, kNodeB4 = netip.MustParsePrefix("10.97.61.1/24"), netip.MustParsePrefix("10.97.61.2/24")
	kNodeA6, kNodeB6 = netip.MustParsePrefix("fd10:97:61::1/64"), netip.MustParsePrefix("fd10:97:61::2/64")
	kPodsA4, kPodsB4 = netip.MustParsePrefix("10.97.62.0/24"), netip.MustParsePrefix("10.97.63.0/24")
	kPodsA6, kPodsB6 = netip.MustParsePrefix("fd10:97:62::/64"), netip.MustParsePrefix("fd10:97:63::/64")
	kCluster         = []netip.Prefix{netip.MustParsePrefix("10.97.60.0/22"), netip.MustParsePrefix("fd10:97:60::/46")}
)

// kernelNode is one node of the test: its namespace, probe addresses and transport.
type kernelNode struct {
	ns    *testnet.Netns
	addrs []netip.Addr
	udp   *UDP
}

func newKernelNode(t *testing.T, ns *testnet.Netns, pods ...netip.Prefix) *kernelNode {
	t.Helper()
	la, err := NewLoopbackAddresses(ns.NsHandle())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(la.Close)
	n := &kernelNode{ns: ns}
	for _, p := range pods {
		n.addrs = append(n.addrs, ProbeAddr(p))
	}
	// An old probe address (a pod CIDR the node had before) must go; lo's own must stay.
	ns.AddAddr(t, "lo", netip.MustParsePrefix("10.97.60.0/32"))
	if err := la.Ensure(n.addrs, kCluster); err != nil {
		t.Fatal(err)
	}
	if err := la.Ensure(n.addrs, kCluster); err != nil {
		t.Fatalf("a second Ensure (nothing to do) failed: %v", err)
	}
	out := ns.Exec(t, "ip", "-o", "addr", "show", "dev", "lo")
	for _, a := range n.addrs {
		if !strings.Contains(out, a.String()+"/") {
			t.Fatalf("probe address %s not on lo:\n%s", a, out)
		}
	}
	if strings.Contains(out, "10.97.60.0/32") || !strings.Contains(out, "127.0.0.1/8") {
		t.Fatalf("lo after Ensure: want the old probe address gone and 127.0.0.1 kept:\n%s", out)
	}
	n.udp = &UDP{Port: DefaultPort, ListenUDP: func(network string, laddr *net.UDPAddr) (c *net.UDPConn, err error) {
		err = ns.Do(func() error { c, err = net.ListenUDP(network, laddr); return err })
		return c, err
	}}
	if err := n.udp.Listen(n.addrs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.udp.Close() })
	return n
}

func (n *kernelNode) probe(dst netip.Addr) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	src := n.addrs[0]
	if dst.Is6() {
		src = n.addrs[1]
	}
	_, err := n.udp.Probe(ctx, src, dst)
	return err
}

// TestProbeOverARealLink: two nodes on an underlay bridge route each other's pod CIDRs directly; a
// probe from one probe address to the other's is answered in both families, fails while B's link
// into the underlay is down (cut at the bridge, as the lab e2e cuts a node), and is answered again
// once it is up.
func TestProbeOverARealLink(t *testing.T) {
	testnet.RequireRoot(t)
	if err := testnet.CheckNoOverlap(append([]netip.Prefix{kNodeA4, kNodeA6, kPodsA4, kPodsB4, kPodsA6, kPodsB6}, kCluster...)...); err != nil {
		t.Fatal(err)
	}
	ul := testnet.NewUnderlay(t)
	seg := ul.AddSegment(t, "conn", netip.MustParsePrefix("10.97.61.254/24"), netip.MustParsePrefix("fd10:97:61::fe/64"))
	nsA, nsB := testnet.NewNetns(t, "conna"), testnet.NewNetns(t, "connb")
	seg.Attach(t, nsA, "eth0", kNodeA4, kNodeA6) // underlay port up1
	seg.Attach(t, nsB, "eth0", kNodeB4, kNodeB6) // underlay port up2
	nsA.AddRoute(t, "eth0", kPodsB4, kNodeB4.Addr())
	nsA.AddRoute(t, "eth0", kPodsB6, kNodeB6.Addr())
	nsB.AddRoute(t, "eth0", kPodsA4, kNodeA4.Addr())
	nsB.AddRoute(t, "eth0", kPodsA6, kNodeA6.Addr())
	a := newKernelNode(t, nsA, kPodsA4, kPodsA6)
	b := newKernelNode(t, nsB, kPodsB4, kPodsB6)

	for _, dst := range b.addrs {
		// The first IPv6 probe may wait for neighbour discovery; allow a few.
		if !testnet.Poll(5*time.Second, 100*time.Millisecond, func() bool { return a.probe(dst) == nil }) {
			t.Fatalf("probe a -> %s: %v", dst, a.probe(dst))
		}
	}
	for _, dst := range a.addrs {
		if err := b.probe(dst); err != nil {
			t.Fatalf("probe b -> %s: %v", dst, err)
		}
	}

	ul.NS.Exec(t, "ip", "link", "set", "up2", "down")
	for _, dst := range b.addrs {
		if err := a.probe(dst); err == nil || err.Error() != "no answer to the UDP probe" {
			t.Fatalf("probe a -> %s with the link down: %v, want no answer", dst, err)
		}
	}
	ul.NS.Exec(t, "ip", "link", "set", "up2", "up")
	for _, dst := range b.addrs {
		if !testnet.Poll(10*time.Second, 200*time.Millisecond, func() bool { return a.probe(dst) == nil }) {
			t.Fatalf("probe a -> %s after the link came back: %v", dst, a.probe(dst))
		}
	}
}
