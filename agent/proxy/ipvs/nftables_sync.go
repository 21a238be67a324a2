package ipvs

import (
	"context"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/proxy"
)

// NFTSyncer keeps the IPVS mode's nftables table in line with the model.
type NFTSyncer struct {
	table *nfttable.Reconciler
}

// NewNFTSyncer returns an NFTSyncer working through nft, bound to NFTFamily
// and NFTTable (nfttable.Open, or knftables.NewFake in tests).
func NewNFTSyncer(nft knftables.Interface) *NFTSyncer {
	return &NFTSyncer{table: nfttable.New(nft, NFTFamily, NFTTable)}
}

// Sync makes the table match m in one transaction and reports whether it
// wrote anything. A matching table costs reads only; when only set
// contents differ just those sets are rewritten; otherwise the table is
// rebuilt (atomically).
func (s *NFTSyncer) Sync(ctx context.Context, m proxy.Model, cfg NFTConfig) (bool, error) {
	return s.table.Sync(ctx, desiredNFT(m, cfg))
}

// Remove deletes the table (the IPVS mode turned off) and reports whether
// it wrote anything; a missing table costs no write.
func (s *NFTSyncer) Remove(ctx context.Context) (bool, error) {
	return s.table.Remove(ctx)
}
