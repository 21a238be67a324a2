// Package nfttable keeps one small nftables table that Plexus owns in line with its desired
// content: a few chains, rules and sets whose elements change. The masquerade table, the IPVS
// mode's table and the service proxy's removal all go through it; a new small table (the
// NetworkPolicy engine's) describes its content as a Table and calls Sync.
//
// A Sync reads the table back and compares; it writes nothing when the table matches, flushes
// and refills only the sets whose elements differ, and otherwise rebuilds the whole table in one
// transaction (no packet sees a half-built table). Rules are compared by comment: knftables
// does not return rule text, so every rule carries a comment that changes whenever its text
// does (a version suffix, for instance).
//
// The large service proxy table (agent/proxy/nftables) keeps its own incremental reconciler:
// reading tens of thousands of elements back on every sync would cost too much there.
package nfttable

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"
)

// KeySeparator joins the parts of a concatenated set key in Set.Elements (as nft prints them).
const KeySeparator = " . "

// Open returns the real nftables interface for the table family name: it runs `nft` in the
// network namespace of the calling thread.
func Open(family knftables.Family, name string) (knftables.Interface, error) {
	nft, err := knftables.New(family, name)
	if err != nil {
		return nil, fmt.Errorf("nftables for %s %s: %w", family, name, err)
	}
	return nft, nil
}

// Opener returns Open bound to family and name, for code that opens the table later (in
// another network namespace, for instance).
func Opener(family knftables.Family, name string) func() (knftables.Interface, error) {
	return func() (knftables.Interface, error) { return Open(family, name) }
}

// Table is the desired content of one table.
type Table struct {
	// Comment is the table's comment.
	Comment string
	// Chains are the table's chains, in the order they are created.
	Chains []*knftables.Chain
	// Sets are the table's sets with their elements.
	Sets []Set
	// Rules are the rules of every chain, in order within a chain. Each one needs a Comment:
	// it is how the rule is recognised when the table is read back.
	Rules []*knftables.Rule
}

// Set is one set and its elements.
type Set struct {
	// Name, Type and Flags define the set.
	Name, Type string
	Flags      []knftables.SetFlag
	// Elements are the keys, parts of a concatenation joined by KeySeparator, in any order.
	Elements []string
	// Canonical, when not nil, turns a key as nft lists it into the text Elements holds; ok
	// false marks an element this table never writes, which makes the set stale. Nil compares
	// the listed key parts joined by KeySeparator. (nft lists an interval set's single-address
	// prefix as a bare address, for instance.)
	Canonical func(key []string) (text string, ok bool)
}

// Reconciler keeps one table in line with a Table. It holds no state between calls: every
// Sync reads the kernel, so a restarted agent needs nothing to recover.
type Reconciler struct {
	nft    knftables.Interface
	family knftables.Family
	name   string
}

// New returns a Reconciler for the table family name, working through nft, which must be
// bound to that table (Open, or knftables.NewFake in tests).
func New(nft knftables.Interface, family knftables.Family, name string) *Reconciler {
	return &Reconciler{nft: nft, family: family, name: name}
}

// Sync makes the table match want in one transaction and reports whether it wrote anything.
// A matching table costs reads only; when only set elements differ just those sets are
// flushed and refilled; otherwise the table is rebuilt.
func (r *Reconciler) Sync(ctx context.Context, want Table) (bool, error) {
	structureOK, stale, err := r.compare(ctx, want)
	if err != nil {
		return false, fmt.Errorf("read nftables table %s %s: %w", r.family, r.name, err)
	}
	if structureOK && len(stale) == 0 {
		return false, nil
	}
	tx := r.nft.NewTransaction()
	if structureOK {
		for _, s := range stale {
			tx.Flush(&knftables.Set{Name: s.Name})
			addElements(tx, s)
		}
	} else {
		rebuild(tx, want)
	}
	if err := r.nft.Run(ctx, tx); err != nil {
		return false, fmt.Errorf("write nftables table %s %s: %w", r.family, r.name, err)
	}
	return true, nil
}

// Remove deletes the table and reports whether it wrote anything: a missing table costs no
// write and is no error.
func (r *Reconciler) Remove(ctx context.Context) (bool, error) {
	if _, err := r.nft.List(ctx, "chains"); knftables.IsNotFound(err) {
		return false, nil
	}
	tx := r.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := r.nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		return false, fmt.Errorf("delete nftables table %s %s: %w", r.family, r.name, err)
	}
	return true, nil
}

// rebuild replaces whatever the table holds with want.
func rebuild(tx *knftables.Transaction, want Table) {
	// Add first so that Delete cannot fail on a missing table, then start from empty: stale
	// chains, sets or rules of any earlier version go.
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{Comment: knftables.PtrTo(want.Comment)})
	for _, c := range want.Chains {
		tx.Add(c)
	}
	for _, s := range want.Sets {
		tx.Add(&knftables.Set{Name: s.Name, Type: s.Type, Flags: s.Flags})
		addElements(tx, s)
	}
	for _, rule := range want.Rules {
		tx.Add(rule)
	}
}

func addElements(tx *knftables.Transaction, s Set) {
	for _, e := range s.Elements {
		tx.Add(&knftables.Element{Set: s.Name, Key: strings.Split(e, KeySeparator)})
	}
}

// compare reads the table: structureOK says chains, sets and rule comments are as wanted;
// stale lists the sets whose elements differ.
func (r *Reconciler) compare(ctx context.Context, want Table) (structureOK bool, stale []Set, err error) {
	chains, err := r.nft.List(ctx, "chains")
	if knftables.IsNotFound(err) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	sets, err := r.nft.List(ctx, "sets")
	if err != nil {
		return false, nil, err
	}
	if !sameNames(chains, want.Chains, func(c *knftables.Chain) string { return c.Name }) ||
		!sameNames(sets, want.Sets, func(s Set) string { return s.Name }) {
		return false, nil, nil
	}
	for _, c := range want.Chains {
		ok, err := r.sameRules(ctx, c.Name, want.Rules)
		if err != nil || !ok {
			return false, nil, err
		}
	}
	for _, s := range want.Sets {
		elems, err := r.nft.ListElements(ctx, "set", s.Name)
		if err != nil {
			return false, nil, err
		}
		if !sameElements(elems, s) {
			stale = append(stale, s)
		}
	}
	return true, stale, nil
}

// sameRules says whether chain holds the rules of want that belong to it, in order, told
// apart by comment.
func (r *Reconciler) sameRules(ctx context.Context, chain string, want []*knftables.Rule) (bool, error) {
	got, err := r.nft.ListRules(ctx, chain)
	if err != nil {
		return false, err
	}
	var mine []*knftables.Rule
	for _, w := range want {
		if w.Chain == chain {
			mine = append(mine, w)
		}
	}
	return slices.EqualFunc(got, mine, func(g, w *knftables.Rule) bool {
		return g.Comment != nil && w.Comment != nil && *g.Comment == *w.Comment
	}), nil
}

// sameNames says whether listed holds exactly the names of want, in any order.
func sameNames[T any](listed []string, want []T, name func(T) string) bool {
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = name(w)
	}
	listed = slices.Clone(listed)
	slices.Sort(listed)
	slices.Sort(names)
	return slices.Equal(listed, names)
}

// sameElements says whether the listed elements are exactly s.Elements, in any order.
func sameElements(listed []*knftables.Element, s Set) bool {
	got := make([]string, 0, len(listed))
	for _, e := range listed {
		text, ok := strings.Join(e.Key, KeySeparator), true
		if s.Canonical != nil {
			text, ok = s.Canonical(e.Key)
		}
		if !ok {
			return false
		}
		got = append(got, text)
	}
	want := slices.Clone(s.Elements)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}
