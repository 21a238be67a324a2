package routing_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// benchPeers is the cluster size of the benchmarks.
	benchPeers = 5000
	// benchUplink is the uplink of the benchmark namespace.
	benchUplink = "eth0"
)

var (
	// benchUnderlay holds the 5,000 node IPs (more than the /24 the other
	// tests use); benchPods holds their /24 pod CIDRs.
	benchUnderlay = prefix("10.100.0.0/16")
	benchPods     = prefix("10.128.0.0/11")
)

// benchNode returns a namespace with an uplink on benchUnderlay and the
// Direct-mode config of a node with benchPeers peers on it.
func benchNode(b *testing.B) (*testnet.Netns, routing.Config) {
	b.Helper()
	testnet.RequireRoot(b)
	if err := testnet.CheckNoOverlap(benchUnderlay, benchPods); err != nil {
		b.Fatal(err)
	}
	ns := testnet.NewNetns(b, "bench")
	// Both ends of the uplink live in the namespace: the routes only need a
	// device with the underlay subnet on it.
	testnet.Veth(b, ns, ns, benchUplink, "peer0")
	ns.AddAddr(b, benchUplink, prefix("10.100.0.1/16"))
	cfg := routing.Config{Mode: routing.ModeDirect, Local: routing.LocalNode{
		Name:     "bench",
		NodeIPs:  []netip.Addr{ip("10.100.0.1")},
		PodCIDRs: []netip.Prefix{prefix("10.127.0.0/24")},
		Uplink:   routing.Uplink{Name: benchUplink, MTU: 1500, Subnets: []netip.Prefix{prefix("10.100.0.1/16")}},
	}}
	for i := range benchPeers {
		cfg.Peers = append(cfg.Peers, routing.Peer{
			Name:     fmt.Sprintf("node%05d", i),
			NodeIPs:  []netip.Addr{netip.AddrFrom4([4]byte{10, 100, byte(1 + i/250), byte(2 + i%250)})},
			PodCIDRs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(128 + i/256), byte(i % 256), 0}), 24)},
		})
	}
	return ns, cfg
}

// flushPlexusRoutes empties the namespace of Plexus's routes, untimed.
func flushPlexusRoutes(b *testing.B, ns *testnet.Netns) {
	b.Helper()
	ns.Exec(b, "ip", "route", "flush", "proto", fmt.Sprint(routing.RouteProtocol))
}

// batchFile writes an `ip -batch` file with one line per route.
func batchFile(b *testing.B, verb string, routes []routing.Route) string {
	b.Helper()
	var sb strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&sb, "route %s %s via %s dev %s proto %d\n", verb, r.Dst, r.Via, r.Dev, routing.RouteProtocol)
	}
	path := filepath.Join(b.TempDir(), "routes.batch")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func runBatch(b *testing.B, ns *testnet.Netns, path string) {
	b.Helper()
	if out, err := exec.Command("ip", "-n", ns.Name(), "-batch", path).CombinedOutput(); err != nil {
		b.Fatalf("ip -batch: %v: %s", err, out)
	}
}

func reportMS(b *testing.B, elapsed time.Duration, unit string) {
	b.ReportMetric(float64(elapsed.Microseconds())/1000/float64(b.N), unit)
}

// BenchmarkProgram5000Routes: a node joins a 5,000-node cluster (Direct
// mode): read the empty kernel, plan, add 5,000 routes. Target <= 100 ms.
// "nexthop-objects" is what the agent does; "inline" is the fallback for
// kernels without nexthop objects.
func BenchmarkProgram5000Routes(b *testing.B) {
	b.Run("nexthop-objects", func(b *testing.B) { benchProgram(b, false) })
	b.Run("inline", func(b *testing.B) { benchProgram(b, true) })
}

func benchProgram(b *testing.B, inline bool) {
	ns, cfg := benchNode(b)
	nl := openNetlink(b, ns)
	if inline {
		routing.UseInlineNextHops(nl)
	}
	b.ResetTimer()
	var elapsed time.Duration
	empty := cfg
	empty.Peers = nil
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Empty the namespace through Plexus itself: `ip route flush`
		// cannot delete routes that use nexthop objects.
		if _, err := routing.NewSyncer(nl).Sync(empty); err != nil {
			b.Fatal(err)
		}
		s := routing.NewSyncer(nl)
		b.StartTimer()
		start := time.Now()
		if _, err := s.Sync(cfg); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	reportMS(b, elapsed, "ms/sync")
	b.ReportMetric(float64(benchPeers)*float64(b.N)/elapsed.Seconds(), "routes/s")
}

// BenchmarkIPBatch5000Routes is the yardstick: the same 5,000 routes through
// `ip -batch` (process start included), next hops inline as most tools
// write them, and with one nexthop object per peer as Plexus does.
func BenchmarkIPBatch5000Routes(b *testing.B) {
	b.Run("inline", func(b *testing.B) {
		ns, cfg := benchNode(b)
		benchBatch(b, ns, batchFile(b, "add", routing.Desired(cfg).Routes), func() { flushPlexusRoutes(b, ns) })
	})
	b.Run("nexthop-objects", func(b *testing.B) {
		ns, cfg := benchNode(b)
		var sb strings.Builder
		for i, r := range routing.Desired(cfg).Routes {
			fmt.Fprintf(&sb, "nexthop add id %d via %s dev %s proto %d\n", i+1, r.Via, r.Dev, routing.RouteProtocol)
			fmt.Fprintf(&sb, "route add %s nhid %d proto %d\n", r.Dst, i+1, routing.RouteProtocol)
		}
		path := filepath.Join(b.TempDir(), "nexthops.batch")
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		// Deleting a nexthop object deletes the routes that use it.
		benchBatch(b, ns, path, func() { ns.Exec(b, "ip", "nexthop", "flush") })
	})
}

func benchBatch(b *testing.B, ns *testnet.Netns, path string, flush func()) {
	b.ResetTimer()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		flush()
		b.StartTimer()
		start := time.Now()
		runBatch(b, ns, path)
		elapsed += time.Since(start)
	}
	reportMS(b, elapsed, "ms/batch")
	b.ReportMetric(float64(benchPeers)*float64(b.N)/elapsed.Seconds(), "routes/s")
}

// BenchmarkOneChangeAt5000: one peer of 5,000 moves to another node IP.
// "incremental" is the agent's normal sync (plans against what it last
// programmed); "full" reads all 5,000 routes back from the kernel first.
// Target <= 5 ms.
func BenchmarkOneChangeAt5000(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := "incremental"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			ns, cfg := benchNode(b)
			s := routing.NewSyncer(openNetlink(b, ns))
			if _, err := s.Sync(cfg); err != nil {
				b.Fatal(err)
			}
			ips := []netip.Addr{cfg.Peers[0].NodeIPs[0], ip("10.100.250.250")}
			b.ResetTimer()
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				cfg.Peers[0].NodeIPs = []netip.Addr{ips[(i+1)%2]}
				if full {
					s.RequestFullSync()
				}
				start := time.Now()
				plan, err := s.Sync(cfg)
				elapsed += time.Since(start)
				if err != nil || plan.Changes() != 1 {
					b.Fatalf("sync: %v, plan:\n%s", err, plan)
				}
			}
			reportMS(b, elapsed, "ms/sync")
		})
	}
}

// BenchmarkIPBatchOneChange is the yardstick for one change: a one-line
// `ip -batch` replace (mostly process start).
func BenchmarkIPBatchOneChange(b *testing.B) {
	ns, cfg := benchNode(b)
	routes := routing.Desired(cfg).Routes
	runBatch(b, ns, batchFile(b, "add", routes))
	moved := routes[0]
	moved.Via = ip("10.100.250.250")
	paths := []string{batchFile(b, "replace", []routing.Route{moved}), batchFile(b, "replace", routes[:1])}
	b.ResetTimer()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		runBatch(b, ns, paths[i%2])
		elapsed += time.Since(start)
	}
	reportMS(b, elapsed, "ms/batch")
}
