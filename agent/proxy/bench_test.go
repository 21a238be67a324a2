package proxy_test

import (
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
