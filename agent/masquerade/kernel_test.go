package masquerade_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/masquerade"
	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/internal/testnet"
)

var (
	ip     = netip.MustParseAddr
	prefix = netip.MustParsePrefix
)

// kernelConfig is the cluster of the real-kernel test. The service CIDR is
// a /16, not Kubernetes' usual 10.96.0.0/12: that one contains the test
// underlay 10.99.0.0/24, and traffic to it is (rightly) never masqueraded.
var kernelConfig = masquerade.Config{
	PodCIDRs:     []netip.Prefix{prefix("10.244.0.0/16"), prefix("fd10:244::/56")},
	ServiceCIDRs: []netip.Prefix{prefix("10.96.0.0/16"), prefix("fd10:96::/112")},
}

// syncIn runs a sync inside ns: the real knftables runs `nft`, which
// inherits the namespace of the calling thread.
func syncIn(t *testing.T, ns *testnet.Netns, cfg masquerade.Config) bool {
	t.Helper()
	var changed bool
	err := ns.Do(func() error {
		nft, err := nfttable.Open(masquerade.TableFamily, masquerade.TableName)
		if err != nil {
			return err
		}
		changed, err = masquerade.New(nft).Sync(context.Background(), cfg)
		return err
	})
	if err != nil {
		t.Fatalf("%s: masquerade sync: %v", ns, err)
	}
	return changed
}

// TestKernelMasquerade: two nodes on one segment with routes between their
// pod CIDRs, and an "outside" host on the same segment that knows no pod
// route. Pod -> outside is masqueraded to the node's IP (both families);
// pod -> pod keeps the pod IP.
func TestKernelMasquerade(t *testing.T) {
	testnet.RequireRoot(t)
	if err := testnet.CheckNoOverlap(append([]netip.Prefix{prefix("10.99.0.0/24"), prefix("fd10:99::/64")},
		append(kernelConfig.PodCIDRs, kernelConfig.ServiceCIDRs...)...)...); err != nil {
		t.Fatal(err)
	}
	ul := testnet.NewUnderlay(t)
	seg := ul.AddSegment(t, "a", prefix("10.99.0.1/24"), prefix("fd10:99::1/64"))
	type node struct {
		ns     *testnet.Netns
		ips    []netip.Addr
		pod    *testnet.Netns
		podIPs []netip.Addr
	}
	nodes := []*node{
		{ips: []netip.Addr{ip("10.99.0.11"), ip("fd10:99::11")}, podIPs: []netip.Addr{ip("10.244.1.5"), ip("fd10:244:0:1::5")}},
		{ips: []netip.Addr{ip("10.99.0.12"), ip("fd10:99::12")}, podIPs: []netip.Addr{ip("10.244.2.5"), ip("fd10:244:0:2::5")}},
	}
	for i, n := range nodes {
		name := []string{"node1", "node2"}[i]
		n.ns = testnet.NewNetns(t, name)
		n.ns.EnableForwarding(t)
		seg.Attach(t, n.ns, "eth0", netip.PrefixFrom(n.ips[0], 24), netip.PrefixFrom(n.ips[1], 64))
		n.pod = testnet.AddFakePod(t, n.ns, name, "vethpod", n.podIPs...)
	}
	// Pod routes between the two nodes (the routing package's job, done by
	// hand here to test masquerading alone).
	nodes[0].ns.AddRoute(t, "eth0", prefix("10.244.2.0/24"), nodes[1].ips[0])
	nodes[0].ns.AddRoute(t, "eth0", prefix("fd10:244:0:2::/64"), nodes[1].ips[1])
	nodes[1].ns.AddRoute(t, "eth0", prefix("10.244.1.0/24"), nodes[0].ips[0])
	nodes[1].ns.AddRoute(t, "eth0", prefix("fd10:244:0:1::/64"), nodes[0].ips[1])
	outside := testnet.NewNetns(t, "outside")
	seg.Attach(t, outside, "eth0", prefix("10.99.0.100/24"), prefix("fd10:99::100/64"))

	for _, n := range nodes {
		if !syncIn(t, n.ns, kernelConfig) {
			t.Fatalf("%s: first sync wrote nothing", n.ns)
		}
		if syncIn(t, n.ns, kernelConfig) {
			t.Errorf("%s: no-op resync against the real kernel wrote the table again:\n%s",
				n.ns, n.ns.Exec(t, "nft", "list", "table", "inet", masquerade.TableName))
		}
	}

	outsideEcho := testnet.StartEchoServer(t, outside)
	podEcho := testnet.StartEchoServer(t, nodes[1].pod)
	for fam, dst := range []netip.Addr{ip("10.99.0.100"), ip("fd10:99::100")} {
		peer, err := testnet.PollEcho(nodes[0].pod, netip.AddrPortFrom(dst, outsideEcho.Port()), 10*time.Second)
		if err != nil {
			t.Errorf("pod -> outside %s: %v", dst, err)
		} else if peer != nodes[0].ips[fam] {
			t.Errorf("pod -> outside %s: outside saw %s, want the node IP %s (masquerade)", dst, peer, nodes[0].ips[fam])
		}
		target := netip.AddrPortFrom(nodes[1].podIPs[fam], podEcho.Port())
		peer, err = testnet.PollEcho(nodes[0].pod, target, 10*time.Second)
		if err != nil {
			t.Errorf("pod -> pod %s: %v", target, err)
		} else if peer != nodes[0].podIPs[fam] {
			t.Errorf("pod -> pod %s: receiver saw %s, want the sender's pod IP %s (no NAT between pods)", target, peer, nodes[0].podIPs[fam])
		}
	}
}
