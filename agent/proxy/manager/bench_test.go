package manager

import (
	"context"
	"fmt"
	"testing"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/nftables"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// modelOnly is a backend that programs nothing: the benchmark measures what the Manager and the
// Feed cost around a backend.
type modelOnly struct{}

func (modelOnly) Features() proxy.FeatureTable { return nftables.Features }
func (modelOnly) Sync(context.Context, proxy.Model, Config) (bool, error) {
	return true, nil
}
func (modelOnly) Remove(context.Context, proxy.NodeInfo) (bool, error) { return false, nil }
func (modelOnly) RequestFullSync()                                     {}

// BenchmarkManagerOneChange10k measures one incremental service sync of the agent at 10k
// Services × 10 endpoints, without the backend's own work: one EndpointSlice replaced, then
// Manager.Sync (Feed snapshot, model update, Events of the changed Service).
func BenchmarkManagerOneChange10k(b *testing.B) {
	svcs, sls := proxytest.Scale(10000, 10)
	feed := NewFeed()
	for _, s := range svcs {
		feed.SetService(s)
	}
	for _, s := range sls {
		feed.SetSlice(s)
	}
	m := NewManager(feed, map[v1.ServiceProxyMode]Backend{v1.ServiceProxyNFTables: modelOnly{}}, nil)
	ctx := context.Background()
	d := Desired{Mode: v1.ServiceProxyNFTables, Node: proxy.NodeInfo{Name: "bench-node"}}
	if r := m.Sync(ctx, d, true); r.Err != nil {
		b.Fatal(r.Err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s := sls[(i*7919)%len(sls)].DeepCopy()
		s.Endpoints[0].Addresses = []string{fmt.Sprintf("10.247.%d.%d", i/200%250, i%200+1)}
		feed.SetSlice(s)
		if r := m.Sync(ctx, d, false); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}
