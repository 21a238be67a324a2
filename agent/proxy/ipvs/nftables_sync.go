package ipvs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/plexus-net/plexus/agent/proxy"
	"sigs.k8s.io/knftables"
)

// NFTSyncer keeps the IPVS mode's nftables table in line with the model.
type NFTSyncer struct {
	nft knftables.Interface
}

// NewNFTSyncer returns an NFTSyncer working through nft, bound to NFTFamily
// and NFTTable (NewNFTables, or knftables.NewFake in tests).
func NewNFTSyncer(nft knftables.Interface) *NFTSyncer { return &NFTSyncer{nft: nft} }

// NewNFTables returns the real nftables interface for the table. It runs
// `nft` in the network namespace of the calling thread.
func NewNFTables() (knftables.Interface, error) {
	nft, err := knftables.New(NFTFamily, NFTTable)
	if err != nil {
		return nil, fmt.Errorf("nftables for %s %s: %w", NFTFamily, NFTTable, err)
	}
	return nft, nil
}

// Sync makes the table match m in one transaction and reports whether it
// wrote anything. A matching table costs reads only; when only set
// contents differ just those sets are rewritten; otherwise the table is
// rebuilt (atomically).
func (s *NFTSyncer) Sync(ctx context.Context, m proxy.Model, cfg NFTConfig) (bool, error) {
	want := desiredNFT(m, cfg)
	structureOK, stale, err := s.compare(ctx, want)
	if err != nil {
		return false, fmt.Errorf("read nftables table %s %s: %w", NFTFamily, NFTTable, err)
	}
	if structureOK && len(stale) == 0 {
		return false, nil
	}
	tx := s.nft.NewTransaction()
	if structureOK {
		for _, name := range stale {
			tx.Flush(&knftables.Set{Name: name})
			addNFTElements(tx, name, want.sets[name])
		}
	} else {
		rebuildNFT(tx, want)
	}
	if err := s.nft.Run(ctx, tx); err != nil {
		return false, fmt.Errorf("write nftables table %s %s: %w", NFTFamily, NFTTable, err)
	}
	return true, nil
}

// Remove deletes the table (the IPVS mode turned off); a missing table
// costs no write.
func (s *NFTSyncer) Remove(ctx context.Context) error {
	if _, err := s.nft.List(ctx, "chains"); knftables.IsNotFound(err) {
		return nil
	}
	tx := s.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := s.nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		return fmt.Errorf("delete nftables table %s %s: %w", NFTFamily, NFTTable, err)
	}
	return nil
}

// rebuildNFT replaces whatever the table holds with want.
func rebuildNFT(tx *knftables.Transaction, want nftState) {
	// Add first so that Delete cannot fail on a missing table.
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("Plexus: masquerading for the IPVS service proxy")})
	for _, c := range nftChains {
		tx.Add(c)
	}
	for _, name := range sortedNames(want.sets) {
		typ, flags := nftSetType(name)
		tx.Add(&knftables.Set{Name: name, Type: typ, Flags: flags})
		addNFTElements(tx, name, want.sets[name])
	}
	for _, c := range nftChains {
		for _, r := range want.rules[c.Name] {
			tx.Add(r)
		}
	}
}

func addNFTElements(tx *knftables.Transaction, set string, els []string) {
	for _, e := range els {
		tx.Add(&knftables.Element{Set: set, Key: strings.Split(e, " . ")})
	}
}

// compare reads the table: structureOK says chains, sets and rule comments
// are as wanted; stale lists the sets whose elements differ.
func (s *NFTSyncer) compare(ctx context.Context, want nftState) (structureOK bool, stale []string, err error) {
	chains, err := s.nft.List(ctx, "chains")
	if knftables.IsNotFound(err) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	sets, err := s.nft.List(ctx, "sets")
	if err != nil {
		return false, nil, err
	}
	slices.Sort(chains)
	slices.Sort(sets)
	if !slices.Equal(chains, sortedNames(want.rules)) || !slices.Equal(sets, sortedNames(want.sets)) {
		return false, nil, nil
	}
	for _, c := range nftChains {
		rules, err := s.nft.ListRules(ctx, c.Name)
		if err != nil {
			return false, nil, err
		}
		if !slices.EqualFunc(rules, want.rules[c.Name], func(a, b *knftables.Rule) bool {
			return a.Comment != nil && *a.Comment == *b.Comment
		}) {
			return false, nil, nil
		}
	}
	for _, name := range sortedNames(want.sets) {
		elems, err := s.nft.ListElements(ctx, "set", name)
		if err != nil {
			return false, nil, err
		}
		var got []string
		for _, e := range elems {
			got = append(got, strings.Join(e.Key, " . "))
		}
		slices.Sort(got)
		if !slices.Equal(got, want.sets[name]) {
			stale = append(stale, name)
		}
	}
	return true, stale, nil
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
