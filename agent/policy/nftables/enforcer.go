package nftables

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/policy"
)

// Enforcer programs policy models into the table TableName.
type Enforcer struct {
	nft knftables.Interface
	nl  *Netlink // nil: every write goes through nft
	// builder computes the desired state, reusing the previous one's
	// unchanged parts.
	builder *builder
	// prev is what the last successful write left in the table; nil
	// forces a full rebuild (start-up, after a failure).
	prev *state
	// netlinkWrites counts the writes that went through nl, and
	// structureWrites those of them that changed more than elements
	// (for tests).
	netlinkWrites, structureWrites int
}

var _ policy.Enforcer = &Enforcer{}

// Option configures an Enforcer.
type Option func(*Enforcer)

// WithNetlink writes incremental changes through nl (see Netlink and
// structureDiff); nft writes full syncs, the cold build's structure and
// what netlink cannot encode.
func WithNetlink(nl *Netlink) Option { return func(e *Enforcer) { e.nl = nl } }

// maxNetlinkChanges bounds the element changes of one element-only
// netlink transaction (and of each of buildFresh's): it goes to the kernel
// in one sendmsg, which must fit the socket's send buffer (a verdict map
// element with its chain name takes ≈100 bytes); larger element-only
// changes go through structureDiff, within its own bounds.
const maxNetlinkChanges = 1024

// New returns an Enforcer writing through nft (knftables.New(TableFamily,
// TableName) in the agent, knftables.NewFake in tests).
func New(nft knftables.Interface, opts ...Option) *Enforcer {
	e := &Enforcer{nft: nft, builder: newBuilder()}
	for _, o := range opts {
		o(e)
	}
	return e
}

// NewNFTables returns the real knftables interface for the policy table.
func NewNFTables() (knftables.Interface, error) {
	nft, err := knftables.New(TableFamily, TableName)
	if err != nil {
		return nil, fmt.Errorf("nftables for %s: %w", TableName, err)
	}
	return nft, nil
}

// Sync implements policy.Enforcer.
func (e *Enforcer) Sync(ctx context.Context, m *policy.Model, fullSync bool) (policy.SyncResult, error) {
	next := e.builder.build(m)
	var res policy.SyncResult
	res.Objects, res.Rules, res.Elements = next.counts()
	if !fullSync && e.prev != nil && e.nl != nil {
		send, ok := e.netlinkWrite(next)
		if ok {
			if send == nil {
				// The kernel holds next already; the next diff is
				// from it (the builder may have changed the last
				// state's maps in place, see set.lent).
				e.prev = next
				return res, nil
			}
			if err := send(); err != nil {
				e.prev = nil
				return res, fmt.Errorf("program NetworkPolicy table %s: %w", TableName, err)
			}
			e.prev = next
			e.netlinkWrites++
			res.Wrote = true
			return res, nil
		}
	}
	if fullSync || e.prev == nil {
		holds, absent := e.kernelHolds(ctx, next)
		if holds {
			// Restart or periodic full sync over an intact table.
			e.prev = next
			return res, nil
		}
		if absent && e.nl != nil {
			return e.buildFresh(ctx, next, res)
		}
	}
	tx := e.nft.NewTransaction()
	if fullSync || e.prev == nil {
		writeFull(tx, next)
	} else {
		writeDiff(tx, e.prev, next)
	}
	if tx.NumOperations() == 0 {
		e.prev = next
		return res, nil
	}
	if err := e.nft.Run(ctx, tx); err != nil {
		e.prev = nil
		return res, fmt.Errorf("program NetworkPolicy table %s: %w", TableName, err)
	}
	e.prev = next
	res.Wrote = true
	return res, nil
}

// netlinkWrite returns the write of the diff from e.prev to next through
// netlink (nil when there is nothing to write); ok false when nft must
// write it. Element-only diffs take the element writer; anything else
// (a policy added, changed or deleted) one structural transaction.
func (e *Enforcer) netlinkWrite(next *state) (send func() error, ok bool) {
	if msgs, ok := netlinkDiff(e.prev, next); ok {
		if len(msgs) == 0 {
			return nil, true
		}
		return func() error { return e.nl.send(msgs) }, true
	}
	ops, ok := structureDiff(e.prev, next)
	if !ok {
		return nil, false
	}
	e.structureWrites++
	return func() error { return e.nl.apply(ops) }, true
}

// kernelHolds reports whether the table in the kernel carries next's stamp
// and exactly next's chains (any failure to read says no: rebuild), and
// whether there is no table at all.
func (e *Enforcer) kernelHolds(ctx context.Context, next *state) (holds, absent bool) {
	chains, err := e.nft.List(ctx, "chains")
	if err != nil {
		return false, knftables.IsNotFound(err)
	}
	want := append(sortedKeys(next.chains), chainForwardEgress, chainForwardIngress, chainInputEgress)
	slices.Sort(want)
	slices.Sort(chains)
	if !slices.Equal(chains, want) {
		return false, false
	}
	elems, err := e.nft.ListElements(ctx, "set", setStamp)
	return err == nil && len(elems) == 1 && strings.Join(elems[0].Key, " . ") == next.stampValue(), false
}

// buildFresh builds the table where there is none, in two steps: nft
// writes the structure with the single-field interval sets' elements (none
// in the current layout), then netlink the
// other elements in transactions of at most maxNetlinkMessages and
// maxNetlinkChanges, the stamp last. nft parses every element it
// writes (≈30k commands at 10k pods); netlink does not. Why two steps are
// safe here only: without a table nothing was enforced, and it stays so
// until the pod maps fill. A table that exists is always replaced in one
// transaction. On failure the stamp is missing, so the next sync rebuilds.
func (e *Enforcer) buildFresh(ctx context.Context, next *state, res policy.SyncResult) (policy.SyncResult, error) {
	structure := newState()
	structure.order, structure.chains, structure.counters = next.order, next.chains, next.counters
	var changes []elementChange
	var stamp elementChange
	for _, name := range sortedKeys(next.sets) {
		x := next.sets[name]
		if x.interval && !isConcat(x) {
			structure.sets[name] = x
			continue
		}
		structure.sets[name] = &set{isMap: x.isMap, typ: x.typ, typeOf: x.typeOf, interval: x.interval, elements: map[string]string{}}
		for _, k := range sortedKeys(x.elements) {
			c := changeOf(name, x, k)
			if name == setStamp {
				stamp = c
				continue
			}
			changes = append(changes, c)
		}
	}
	tx := e.nft.NewTransaction()
	writeFull(tx, structure)
	if err := e.nft.Run(ctx, tx); err != nil {
		e.prev = nil
		return res, fmt.Errorf("program NetworkPolicy table %s: %w", TableName, err)
	}
	// The pod maps last: a pod's element sends its packets to a chain
	// whose sets are then full (and until then nothing is isolated).
	slices.SortStableFunc(changes, func(a, b elementChange) int {
		return cmp.Compare(b2i(a.isMap && isStaticSet(a.set)), b2i(b.isMap && isStaticSet(b.set)))
	})
	msgs, err := encodeMessages(nil, append(changes, stamp))
	for err == nil && len(msgs) > 0 {
		n, elems := 0, 0
		for n < len(msgs) && n < maxNetlinkMessages && elems+len(msgs[n].elems) <= maxNetlinkChanges {
			elems += len(msgs[n].elems)
			n++
		}
		err = e.nl.send(msgs[:n])
		msgs = msgs[n:]
	}
	if err != nil {
		e.prev = nil
		return res, fmt.Errorf("program NetworkPolicy table %s: %w", TableName, err)
	}
	e.prev = next
	res.Wrote = true
	return res, nil
}

// Remove implements policy.Enforcer.
func (e *Enforcer) Remove(ctx context.Context) error {
	tx := e.nft.NewTransaction()
	// Adding first makes the delete succeed whether or not it exists.
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	e.prev = nil
	if err := e.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("remove NetworkPolicy table %s: %w", TableName, err)
	}
	return nil
}

// writeFull replaces the whole table in one transaction: the kernel swaps
// old for new atomically, so no packet sees a table without policies.
func writeFull(tx *knftables.Transaction, next *state) {
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	for _, o := range staticObjects() {
		tx.Add(o)
	}
	writeDiff(tx, newState(), next)
}

// writeDiff writes what turns prev into next. Order: declare new counters,
// sets and chains; delete then add elements (interval sets refuse an
// overlap, and a map key changes value by delete + add); rewrite changed
// chains; then delete chains (set chains before the policy chains they
// jump to), sets and counters nothing refers to any more.
func writeDiff(tx *knftables.Transaction, prev, next *state) {
	for _, name := range keysNotIn(next.counters, prev.counters) {
		tx.Add(&knftables.Counter{Name: name})
	}
	changed := changedSets(prev, next)
	for _, name := range changed {
		if _, ok := prev.sets[name]; !ok && !isStaticSet(name) {
			tx.Add(setObject(name, next.sets[name]))
		}
	}
	for _, name := range next.order {
		if _, ok := prev.chains[name]; !ok {
			tx.Add(&knftables.Chain{Name: name})
		}
	}
	for _, name := range changed {
		writeElements(tx, name, prev.sets[name], next.sets[name])
	}
	for _, name := range next.order {
		old, existed := prev.chains[name]
		rules := next.chains[name]
		if existed && equalRules(old, rules) {
			continue
		}
		if existed {
			tx.Flush(&knftables.Chain{Name: name})
		}
		for _, r := range rules {
			tx.Add(&knftables.Rule{Chain: name, Rule: r})
		}
	}
	for _, name := range prev.order {
		if _, ok := next.chains[name]; !ok {
			tx.Delete(&knftables.Chain{Name: name})
		}
	}
	for _, name := range keysNotIn(prev.sets, next.sets) {
		tx.Delete(setObject(name, prev.sets[name]))
	}
	for _, name := range keysNotIn(prev.counters, next.counters) {
		tx.Delete(&knftables.Counter{Name: name})
	}
}

// writeElements deletes the elements of prev that next lacks or maps to
// another value, then adds the rest of next's. Only changed keys are
// sorted (for a deterministic transaction): most syncs change a handful
// of a set's elements.
func writeElements(tx *knftables.Transaction, name string, prev, next *set) {
	if prev == next {
		return // shared between the states: unchanged
	}
	var dels, adds []string
	if prev == nil {
		adds = sortedKeys(next.elements)
	} else {
		dels, adds = setChanges(prev, next)
	}
	for _, k := range dels {
		tx.Delete(elementObject(name, prev, k))
	}
	for _, k := range adds {
		tx.Add(elementObject(name, next, k))
	}
}

// changedKeys returns, sorted, the keys of a that b lacks or maps to
// another value.
func changedKeys(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func elementObject(name string, s *set, key string) *knftables.Element {
	e := &knftables.Element{Key: splitKey(key)}
	if s.isMap {
		e.Map = name
		e.Value = []string{s.elements[key]}
	} else {
		e.Set = name
	}
	return e
}

func setObject(name string, s *set) knftables.Object {
	var flags []knftables.SetFlag
	if s.interval {
		flags = []knftables.SetFlag{knftables.IntervalFlag}
	}
	if s.isMap {
		m := &knftables.Map{Name: name, Flags: flags}
		if s.typeOf {
			m.TypeOf = s.typ
		} else {
			m.Type = s.typ
		}
		return m
	}
	x := &knftables.Set{Name: name, Flags: flags}
	if s.typeOf {
		x.TypeOf = s.typ
	} else {
		x.Type = s.typ
	}
	return x
}

// isStaticSet tells the maps and sets staticObjects creates.
func isStaticSet(name string) bool {
	for _, f := range fams {
		switch name {
		case f.name(mapEgressPods), f.name(mapIngressPods), f.name(setNodeIPs):
			return true
		}
	}
	return false
}

func equalRules(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true // the same rules, shared between states
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// netlinkDiff returns the messages of one netlink transaction that turn
// prev into next; ok false when nft must write it (not only elements, an
// single-field interval set's elements, or too much for one netlink
// transaction).
func netlinkDiff(prev, next *state) ([]netlinkMessage, bool) {
	dels, adds, ok := elementOnlyDiff(prev, next)
	if !ok || len(dels)+len(adds) > maxNetlinkChanges {
		return nil, false
	}
	msgs, err := encodeMessages(dels, adds)
	if err != nil || len(msgs) > maxNetlinkMessages {
		return nil, false
	}
	return msgs, true
}

// elementOnlyDiff returns the element changes from prev to next when
// nothing else differs and no changed element is in a single-field
// interval set (ok
// false otherwise: nft must write it).
func elementOnlyDiff(prev, next *state) (dels, adds []elementChange, ok bool) {
	if len(prev.sets) != len(next.sets) || len(prev.chains) != len(next.chains) || len(prev.counters) != len(next.counters) {
		return nil, nil, false
	}
	if prev.chainsID == nil || prev.chainsID != next.chainsID {
		for name := range next.counters {
			if _, ok := prev.counters[name]; !ok {
				return nil, nil, false
			}
		}
		for name, rules := range next.chains {
			if old, ok := prev.chains[name]; !ok || !equalRules(old, rules) {
				return nil, nil, false
			}
		}
	}
	// Only the sets that are not shared between the states changed;
	// those are sorted, for a deterministic transaction.
	var changed []string
	for name, n := range next.sets {
		p := prev.sets[name]
		if p == nil || !n.sameShape(p) {
			return nil, nil, false
		}
		if p != n {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	for _, name := range changed {
		n, p := next.sets[name], prev.sets[name]
		gone, come := setChanges(p, n)
		if n.interval && !isConcat(n) && len(gone)+len(come) > 0 {
			return nil, nil, false
		}
		for _, k := range gone {
			c := changeOf(name, p, k)
			c.value = ""
			dels = append(dels, c)
		}
		for _, k := range come {
			adds = append(adds, changeOf(name, n, k))
		}
	}
	return dels, adds, true
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
