package proxy_test

import (
	"fmt"
	"testing"

	"github.com/plexus-net/plexus/agent/proxy"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

// BenchmarkBuild10k measures a full model build of 10,000 Services × 10
// endpoints (the model part of a cold sync).
func BenchmarkBuild10k(b *testing.B) {
	svcs, sl := pt.Scale(10000, 10)
	b.ReportAllocs()
	for b.Loop() {
		proxy.Build(svcs, sl, node)
	}
}

// BenchmarkTrackerOneChange10k measures one incremental model update at
// 10k Services: one slice replaced, then Model and Diff, as a sync does.
func BenchmarkTrackerOneChange10k(b *testing.B) {
	svcs, sls := pt.Scale(10000, 10)
	tr := proxy.NewTracker(proxy.NodeInfo{Name: "bench-node"})
	for _, s := range svcs {
		tr.SetService(s)
	}
	for _, s := range sls {
		tr.SetSlice(s)
	}
	prev := tr.Model()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s := sls[(i*7919)%len(sls)].DeepCopy()
		s.Endpoints[0].Addresses = []string{fmt.Sprintf("10.247.%d.%d", i/200%250, i%200+1)}
		tr.SetSlice(s)
		next := tr.Model()
		if c := proxy.Diff(prev, next); len(c.Changed) != 1 {
			b.Fatalf("diff %+v, want one change", c)
		}
		prev = next
	}
}
