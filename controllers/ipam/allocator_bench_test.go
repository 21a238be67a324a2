package ipam

import (
	"net/netip"
	"testing"
)

// BenchmarkAllocate5000Nodes allocates a /24 for each of 5,000 nodes. A /12 holds only 4,096 /24s,
// so the first case fills a /12 completely and the second serves 5,000 nodes from a /11.
// Target (issue): ≤ 50 ms for the whole set.
func BenchmarkAllocate5000Nodes(b *testing.B) {
	for _, c := range []struct {
		name  string
		pool  string
		nodes int
	}{
		{"fill-/12-4096-nodes", "10.240.0.0/12", 4096},
		{"from-/11-5000-nodes", "10.224.0.0/11", 5000},
	} {
		b.Run(c.name, func(b *testing.B) {
			pool := []netip.Prefix{netip.MustParsePrefix(c.pool)}
			for b.Loop() {
				a, err := New(pool, 24, 64)
				if err != nil {
					b.Fatal(err)
				}
				for n := 0; n < c.nodes; n++ {
					if _, err := a.Allocate(IPv4); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/all-nodes")
		})
	}
}

// BenchmarkRebuild5000 measures what a reconcile pays to rebuild the allocator from 5,000 existing
// NodeNetworks (Reserve each) and hand one new node a CIDR.
func BenchmarkRebuild5000(b *testing.B) {
	pool := []netip.Prefix{netip.MustParsePrefix("10.224.0.0/11")}
	a, _ := New(pool, 24, 64)
	existing := make([]netip.Prefix, 5000)
	for i := range existing {
		existing[i], _ = a.Allocate(IPv4)
	}
	for b.Loop() {
		a, _ := New(pool, 24, 64)
		for _, p := range existing {
			if err := a.Reserve(p); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := a.Allocate(IPv4); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/rebuild")
}
