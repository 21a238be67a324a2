package ipvs_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
)

// TestGuestMasquerade: IPVS with the mode's nftables table (real nft, real
// conntrack) on the shared topology. Which source address a backend sees
// tells whether the connection was masqueraded.
func TestGuestMasquerade(t *testing.T) {
	requireGuest(t)
	const connections = 6
	// dropTimeout is how long a dropped connection attempt is given.
	const dropTimeout = 1500 * time.Millisecond
	ctx := context.Background()
	topo := guestTopology(t)
	if err := ipvs.SetSysctls(); err != nil {
		t.Fatal(err)
	}
	nft, err := nfttable.Open(ipvs.NFTFamily, ipvs.NFTTable)
	if err != nil {
		t.Fatal(err)
	}
	nftSyncer := ipvs.NewNFTSyncer(nft)
	k, b := openKernel(t)
	syncer := ipvs.NewSyncer(k, b)
	sync := func(w webService) {
		t.Helper()
		m := w.model(topo.nodeIPs...)
		syncOK(t, syncer, ipvs.DesiredState(m, ipvs.Config{}))
		if _, err := nftSyncer.Sync(ctx, m, podCIDRs); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		syncOK(t, syncer, ipvs.State{})
		if _, err := nftSyncer.Remove(ctx); err != nil {
			t.Error(err)
		}
	})
	web := webService{nodePort: 30080, backends: []int{1, 2}}
	sync(web)
	if changed, err := nftSyncer.Sync(ctx, web.model(topo.nodeIPs...), podCIDRs); err != nil || changed {
		t.Errorf("second nftables sync against the kernel: changed %v, %v; want no write", changed, err)
	}

	// nodeSide are root's addresses towards the backends: what a backend
	// sees when the node masqueraded.
	nodeSide := []netip.Addr{ip("10.244.1.1"), ip("10.244.2.1"), ip("fd10:244:1::1"), ip("fd10:244:2::1")}
	clusterIPs := []netip.AddrPort{netip.MustParseAddrPort("10.96.0.10:80"), netip.MustParseAddrPort("[fd10:96::10]:80")}
	nodePorts := []netip.AddrPort{netip.AddrPortFrom(topo.nodeIPs[0], 30080), netip.AddrPortFrom(topo.nodeIPs[1], 30080)}

	// seen connects count times and returns the source addresses the
	// backends saw, the backends that answered, and what b1 saw.
	seen := func(t *testing.T, from *guestNS, target netip.AddrPort) (sources []netip.Addr, backends map[string]int, b1Saw []netip.Addr) {
		t.Helper()
		backends = map[string]int{}
		for range connections {
			name, src, err := from.hit(target)
			if err != nil {
				t.Fatalf("from %s to %s: %v", from.name, target, err)
			}
			backends[name]++
			if !slices.Contains(sources, src) {
				sources = append(sources, src)
			}
			if name == "b1" {
				b1Saw = append(b1Saw, src)
			}
		}
		return sources, backends, b1Saw
	}

	t.Run("pod to ClusterIP keeps the pod's address", func(t *testing.T) {
		for _, vip := range clusterIPs {
			if srcs, _, _ := seen(t, topo.client, vip); len(srcs) != 1 || !slices.Contains(topo.clientIPs, srcs[0]) {
				t.Errorf("%s: backends saw %v, want the client's own address", vip, srcs)
			}
		}
	})

	t.Run("NodePort with eTP Cluster is masqueraded", func(t *testing.T) {
		for _, vip := range nodePorts {
			srcs, backends, _ := seen(t, topo.client, vip)
			for _, src := range srcs {
				if !slices.Contains(nodeSide, src) {
					t.Errorf("%s: a backend saw %s, want the node's address", vip, src)
				}
			}
			if len(backends) != 2 {
				t.Errorf("%s: answers %v, want both backends", vip, backends)
			}
		}
	})

	t.Run("hairpin: a backend reaches itself through its ClusterIP", func(t *testing.T) {
		for _, vip := range clusterIPs {
			// Without masquerading, b1's reply to itself would skip the node
			// and never match its connection to the ClusterIP.
			_, backends, b1Saw := seen(t, topo.backends["b1"], vip)
			if backends["b1"] == 0 || backends["b2"] == 0 {
				t.Errorf("%s from b1: answers %v, want both (b1 included)", vip, backends)
			}
			for _, src := range b1Saw {
				if !slices.Contains(nodeSide, src) {
					t.Errorf("%s from b1 to itself: b1 saw %s, want the node's address", vip, src)
				}
			}
		}
	})

	t.Run("the node itself reaches a ClusterIP, masqueraded", func(t *testing.T) {
		for _, vip := range clusterIPs {
			srcs, backends, _ := seen(t, topo.root, vip)
			if len(backends) != 2 {
				t.Errorf("%s from the node: answers %v, want both backends", vip, backends)
			}
			for _, src := range srcs {
				if !slices.Contains(nodeSide, src) {
					t.Errorf("%s from the node: a backend saw %s, want the node's address towards it", vip, src)
				}
			}
		}
	})

	t.Run("eTP Local without local endpoints: NodePort drops, ClusterIP serves", func(t *testing.T) {
		sync(webService{nodePort: 30080, etpLocal: true, remote: true, backends: []int{1, 2}})
		for _, vip := range nodePorts {
			// A drop shows as a timeout; IPVS alone would refuse.
			_, _, err := topo.client.ask("tcp", vip, dropTimeout)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("%s: %v, want a timeout (dropped)", vip, err)
			}
		}
		for _, vip := range clusterIPs {
			if _, backends, _ := seen(t, topo.client, vip); len(backends) != 2 {
				t.Errorf("%s: answers %v, want both (cluster policy)", vip, backends)
			}
		}
	})

	t.Run("NodePort with eTP Local keeps the client's address", func(t *testing.T) {
		web.etpLocal = true
		sync(web)
		for _, vip := range nodePorts {
			if srcs, _, _ := seen(t, topo.client, vip); len(srcs) != 1 || !slices.Contains(topo.clientIPs, srcs[0]) {
				t.Errorf("%s: backends saw %v, want the client's own address", vip, srcs)
			}
		}
	})
}
