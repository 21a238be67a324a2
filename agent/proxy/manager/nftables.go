package manager

import (
	"context"
	"errors"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/nftables"
)

// NFTables is the nftables backend: the nftables Proxier and, when set, the eTP Local health
// check servers (which the Proxier starts and stops; Remove stops them).
type NFTables struct {
	nft  knftables.Interface
	opts []nftables.Option
	hc   interface{ Close() error }
	p    *nftables.Proxier
	// Errors receives failures that did not fail a sync (conntrack flush, health check
	// servers); nil drops them.
	Errors func(error)
}

var _ Backend = &NFTables{}

// NewNFTables returns the backend on nft (bound to nftables.TableFamily and TableName).
// hc, when not nil, also passed with nftables.WithHealthChecker, is closed by Remove.
func NewNFTables(nft knftables.Interface, hc interface{ Close() error }, opts ...nftables.Option) *NFTables {
	return &NFTables{nft: nft, hc: hc, opts: opts}
}

// Features implements Backend.
func (b *NFTables) Features() proxy.FeatureTable { return nftables.Features }

// Sync implements Backend.
func (b *NFTables) Sync(ctx context.Context, m proxy.Model, _ Config) (bool, error) {
	if b.p == nil {
		b.p = nftables.New(b.nft, b.opts...)
	}
	err := b.p.Sync(ctx, m)
	st := b.p.Stats()
	if b.Errors != nil {
		for _, e := range st.Errors {
			b.Errors(e)
		}
	}
	return st.Wrote, err
}

// RequestFullSync implements Backend.
func (b *NFTables) RequestFullSync() {
	if b.p != nil {
		b.p.RequestFullSync()
	}
}

// Remove implements Backend: it deletes the table and stops the health check servers.
func (b *NFTables) Remove(ctx context.Context, _ proxy.NodeInfo) (bool, error) {
	b.p = nil
	var hcErr error
	if b.hc != nil {
		hcErr = b.hc.Close()
	}
	wrote, err := nfttable.New(b.nft, nftables.TableFamily, nftables.TableName).Remove(ctx)
	return wrote, errors.Join(err, hcErr)
}
