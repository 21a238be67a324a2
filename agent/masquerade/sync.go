package masquerade

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"sigs.k8s.io/knftables"
)

// Masquerader keeps the masquerade table in line with the config.
type Masquerader struct {
	nft knftables.Interface
}

// New returns a Masquerader working through nft, which must be bound to
// TableFamily and TableName (NewNFTables, or knftables.NewFake in tests).
func New(nft knftables.Interface) *Masquerader { return &Masquerader{nft: nft} }

// NewNFTables returns the real nftables interface for the table. It runs
// `nft`, in the network namespace of the calling thread.
func NewNFTables() (knftables.Interface, error) {
	nft, err := knftables.New(TableFamily, TableName)
	if err != nil {
		return nil, fmt.Errorf("nftables for %s %s: %w", TableFamily, TableName, err)
	}
	return nft, nil
}

// Sync makes the table match cfg in one transaction and reports whether it
// wrote anything. When the table already matches it writes nothing; when
// only set contents differ it rewrites just those sets; otherwise it
// rebuilds the whole table (atomically: no packet sees a half-built table).
func (m *Masquerader) Sync(ctx context.Context, cfg Config) (bool, error) {
	want := desired(cfg)
	structureOK, staleSets, err := m.compare(ctx, want)
	if err != nil {
		return false, fmt.Errorf("read nftables table %s %s: %w", TableFamily, TableName, err)
	}
	if structureOK && len(staleSets) == 0 {
		return false, nil
	}
	tx := m.nft.NewTransaction()
	if structureOK {
		for _, name := range staleSets {
			set := &knftables.Set{Name: name}
			tx.Flush(set)
			addElements(tx, name, want.sets[name])
		}
	} else {
		rebuild(tx, want)
	}
	if err := m.nft.Run(ctx, tx); err != nil {
		return false, fmt.Errorf("write nftables table %s %s: %w", TableFamily, TableName, err)
	}
	return true, nil
}

// Remove deletes the table (masquerading turned off); a missing table is
// fine and costs no write.
func (m *Masquerader) Remove(ctx context.Context) error {
	if _, err := m.nft.List(ctx, "chains"); knftables.IsNotFound(err) {
		return nil
	}
	tx := m.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := m.nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		return fmt.Errorf("delete nftables table %s %s: %w", TableFamily, TableName, err)
	}
	return nil
}

// rebuild replaces whatever the table holds with want.
func rebuild(tx *knftables.Transaction, want state) {
	// Add first so that Delete cannot fail on a missing table, then start
	// from empty: stale chains, sets or rules of any earlier version go.
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("Plexus: masquerade pod traffic leaving the cluster")})
	tx.Add(&knftables.Chain{
		Name:     chainPostrouting,
		Type:     knftables.PtrTo(knftables.NATType),
		Hook:     knftables.PtrTo(knftables.PostroutingHook),
		Priority: knftables.PtrTo(knftables.SNATPriority),
	})
	for _, name := range sortedKeys(want.sets) {
		tx.Add(&knftables.Set{Name: name, Type: setTypes[name], Flags: []knftables.SetFlag{knftables.IntervalFlag}})
		addElements(tx, name, want.sets[name])
	}
	for _, r := range want.rules {
		tx.Add(r)
	}
}

func addElements(tx *knftables.Transaction, set string, elems []string) {
	for _, e := range elems {
		tx.Add(&knftables.Element{Set: set, Key: []string{e}})
	}
}

// compare reads the table: structureOK says chains, sets and rules are as
// wanted; staleSets lists the sets whose elements differ.
func (m *Masquerader) compare(ctx context.Context, want state) (structureOK bool, staleSets []string, err error) {
	chains, err := m.nft.List(ctx, "chains")
	if knftables.IsNotFound(err) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	sets, err := m.nft.List(ctx, "sets")
	if err != nil {
		return false, nil, err
	}
	slices.Sort(sets)
	if !slices.Equal(chains, []string{chainPostrouting}) || !slices.Equal(sets, sortedKeys(want.sets)) {
		return false, nil, nil
	}
	rules, err := m.nft.ListRules(ctx, chainPostrouting)
	if err != nil {
		return false, nil, err
	}
	if len(rules) != len(want.rules) {
		return false, nil, nil
	}
	for i, r := range rules {
		if r.Comment == nil || *r.Comment != *want.rules[i].Comment {
			return false, nil, nil
		}
	}
	for _, name := range sortedKeys(want.sets) {
		elems, err := m.nft.ListElements(ctx, "set", name)
		if err != nil {
			return false, nil, err
		}
		if !slices.Equal(normalise(elems), want.sets[name]) {
			staleSets = append(staleSets, name)
		}
	}
	return true, staleSets, nil
}

// normalise turns listed elements into sorted prefix strings: nft prints a
// single-address interval as a bare address.
func normalise(elems []*knftables.Element) []string {
	var ps []netip.Prefix
	for _, e := range elems {
		if len(e.Key) != 1 {
			return nil // not an element this package writes: forces a rewrite
		}
		if p, err := netip.ParsePrefix(e.Key[0]); err == nil {
			ps = append(ps, p.Masked())
		} else if a, err := netip.ParseAddr(e.Key[0]); err == nil {
			ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
		} else {
			return nil // e.g. a range: not ours
		}
	}
	slices.SortFunc(ps, comparePrefix)
	out := []string{}
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
