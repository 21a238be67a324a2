package masquerade

import (
	"context"
	"net/netip"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttable"
)

// Masquerader keeps the masquerade table in line with the config.
type Masquerader struct {
	table *nfttable.Reconciler
}

// New returns a Masquerader working through nft, which must be bound to
// TableFamily and TableName (nfttable.Open, or knftables.NewFake in tests).
func New(nft knftables.Interface) *Masquerader {
	return &Masquerader{table: nfttable.New(nft, TableFamily, TableName)}
}

// Sync makes the table match cfg in one transaction and reports whether it
// wrote anything. When the table already matches it writes nothing; when
// only set contents differ it rewrites just those sets; otherwise it
// rebuilds the whole table (atomically: no packet sees a half-built table).
func (m *Masquerader) Sync(ctx context.Context, cfg Config) (bool, error) {
	return m.table.Sync(ctx, desired(cfg))
}

// Remove deletes the table (masquerading turned off); a missing table is
// fine and costs no write.
func (m *Masquerader) Remove(ctx context.Context) error {
	_, err := m.table.Remove(ctx)
	return err
}

// canonical turns a listed element into a prefix string: nft prints a
// single-address interval as a bare address. Anything else (a range, a
// concatenation) is not an element this package writes.
func canonical(key []string) (string, bool) {
	if len(key) != 1 {
		return "", false
	}
	if p, err := netip.ParsePrefix(key[0]); err == nil {
		return p.Masked().String(), true
	}
	if a, err := netip.ParseAddr(key[0]); err == nil {
		return netip.PrefixFrom(a, a.BitLen()).String(), true
	}
	return "", false
}
