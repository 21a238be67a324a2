package nftables

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/healthcheck"
)

// HealthChecker serves the eTP Local health check node ports. Sync gets
// the wanted ports with their local endpoint counts, starts and stops
// servers to match, and must be cheap when nothing changed.
type HealthChecker interface {
	Sync(localEndpoints map[uint16]int) error
}

// Conntrack removes conntrack entries.
type Conntrack interface {
	// ClearUDP deletes the UDP entries whose original destination is
	// frontend and that were DNATed to endpoint. No matching entry is not
	// an error.
	ClearUDP(ctx context.Context, frontend netip.AddrPort, endpoint netip.Addr) error
}

// SyncStats describes the last sync, for status and logs.
type SyncStats struct {
	// Full says the sync compared with (or rebuilt) the whole table.
	Full bool
	// Wrote says a transaction ran.
	Wrote bool
	// Operations counts the transaction's commands.
	Operations int
	// Netlink says the transaction went through the lasting netlink
	// socket rather than nft.
	Netlink bool
	// Changed is the number of service ports added, removed or changed.
	Changed int
	// Elements is the number of set and map elements the table holds.
	Elements int
	// Duration is the sync's wall time.
	Duration time.Duration
	// Errors lists failures that did not fail the sync (conntrack flush,
	// health check servers, affinity cleanup), for logs.
	Errors []error
}

// Proxier programs the model into the table. It is safe for concurrent
// use, but syncs are serialised.
type Proxier struct {
	nft   knftables.Interface
	ct    Conntrack
	hc    HealthChecker
	nl    *Netlink    // element-only writes, when set
	batch bool        // write elements in batches (real nft only)
	read  tableReader // cheap reads for the full sync's comparison

	mu       sync.Mutex
	needFull bool
	trusted  bool // the in-memory copy is what the last successful sync wrote
	prev     proxy.Model
	ports    map[proxy.Key][]element
	st       *store
	chains   map[string]bool // dynamic chains (dnat-*, affinity-*) in the table
	stamps   []string        // sync-stamp elements in the table, oldest first
	seq      uint32          // write number of the newest stamp
	digest   uint64          // digest of prev, which the newest stamp carries
	stats    SyncStats

	// UDP endpoints whose conntrack flush waits for their drain (cleanup.go),
	// the flushes' failures for the next sync's stats, and the timer that
	// runs a drain's end (time.AfterFunc; tests run it by hand).
	draining  map[drainKey]bool
	drainErrs []error
	after     func(time.Duration, func())
}

var _ proxy.FeatureTable = &Proxier{}

// Option configures a Proxier.
type Option func(*Proxier)

// WithConntrack sets the conntrack cleaner (default: none, no flushing).
func WithConntrack(c Conntrack) Option { return func(p *Proxier) { p.ct = c } }

// WithHealthChecker sets the health check server manager (default: none).
func WithHealthChecker(h HealthChecker) Option { return func(p *Proxier) { p.hc = h } }

// WithNetlink makes partial syncs that change only elements write them
// through n's lasting socket instead of running nft (see Netlink). n must
// be open in the namespace of the table nft writes.
func WithNetlink(n *Netlink) Option { return func(p *Proxier) { p.nl = n } }

// New returns a Proxier working through nft, which must be bound to
// TableFamily and TableName (nfttable.Open, or knftables.NewFake in tests).
// Its first Sync is a full one.
func New(nft knftables.Interface, opts ...Option) *Proxier {
	p := &Proxier{nft: nft, needFull: true, batch: true, read: execReader(),
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
	if _, isFake := nft.(*knftables.Fake); isFake {
		p.batch, p.read = false, fakeReader(nft)
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Name is the backend's serviceProxy.mode.
func (p *Proxier) Name() string { return Features.Mode }

// Supports reports the nftables backend's feature table.
func (p *Proxier) Supports(f proxy.Feature) bool { return Features.Supports(f) }

// Stats returns figures of the last sync.
func (p *Proxier) Stats() SyncStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// RequestFullSync makes the next Sync compare with the kernel instead of
// trusting the in-memory copy (e.g. periodically, or after the agent
// suspects someone else touched the table).
func (p *Proxier) RequestFullSync() {
	p.mu.Lock()
	p.needFull = true
	p.mu.Unlock()
}

// Sync makes the table match m. Normally it writes only the elements that
// changed since the last successful Sync, in one transaction, and nothing
// when nothing changed. The first Sync, and any after a failure, is full:
// it writes nothing when the table already holds m (same digest and
// objects), and otherwise rebuilds the table in one transaction.
func (p *Proxier) Sync(ctx context.Context, m proxy.Model) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	var err error
	if p.needFull {
		err = p.fullSync(ctx, m)
	} else {
		err = p.partialSync(ctx, m)
	}
	p.stats.Duration = time.Since(start)
	if err != nil {
		// A failed write may have left the in-memory copy ahead of the
		// kernel: the next sync compares with the kernel and trusts
		// nothing it remembers.
		p.needFull, p.trusted = true, false
		return err
	}
	p.needFull, p.trusted = false, true
	p.stats.Elements = len(p.st.entries)
	p.stats.Errors = append(p.stats.Errors, p.drainErrs...)
	p.drainErrs = nil
	if p.hc != nil {
		if err := p.hc.Sync(healthcheck.Ports(m)); err != nil {
			p.stats.Errors = append(p.stats.Errors, fmt.Errorf("health check servers: %w", err))
		}
	}
	return nil
}

// partialSync writes the element-level difference between p.prev and m.
func (p *Proxier) partialSync(ctx context.Context, m proxy.Model) error {
	changes := proxy.Diff(p.prev, m)
	p.stats = SyncStats{Changed: len(changes.Added) + len(changes.Removed) + len(changes.Changed)}
	if changes.Empty() {
		p.prev = m
		return nil
	}
	var o ops
	for _, k := range changes.Removed {
		p.st.replace(p.ports[k], nil, &o)
		delete(p.ports, k)
	}
	for _, list := range [][]proxy.Key{changes.Changed, changes.Added} {
		for _, k := range list {
			next := portElements(m.Ports[k], p.ports[k])
			p.st.replace(p.ports[k], next, &o)
			p.ports[k] = next
		}
	}
	addChains, delChains := p.chainChanges()
	var flushes []string
	for _, f := range affinityFlushes(p.prev, m, changes) {
		flushes = append(flushes, f.name(mapAffinity))
	}
	newDigest := updateDigest(p.digest, p.prev, m, changes)
	newStamp := element{set: setStamp, key: stampElement(p.seq+1, newDigest)}
	// Elements alone go through the lasting netlink socket when there is
	// one; new or unused chains (a new endpoint count, a new affinity
	// timeout) and very large changes go through nft in one transaction.
	fast := p.nl != nil && len(addChains) == 0 && len(delChains) == 0 &&
		len(o.adds)+len(o.deletes) < netlinkMaxElements
	// Older stamps go with writes that delete anyway, with every netlink
	// write (deleting costs it nothing), or every stampPruneEvery writes.
	pruned := fast || len(o.deletes) > 0 || len(p.stamps) >= stampPruneEvery
	var stale []element
	if pruned {
		for _, old := range p.stamps {
			stale = append(stale, element{set: setStamp, key: old})
		}
	}
	var err error
	if fast {
		b := elementBatch{flushes: flushes, deletes: append(o.deletes, stale...), adds: append(o.adds, newStamp)}
		err = p.nl.write(b)
		p.stats.Operations = len(flushes) + b.size()
	} else {
		tx := p.nft.NewTransaction()
		for _, c := range addChains {
			addDynamic(tx, c)
		}
		writeElements(tx, false, o.deletes, p.batch)
		writeElements(tx, true, o.adds, p.batch)
		for _, c := range delChains {
			deleteDynamic(tx, c)
		}
		for _, name := range flushes {
			tx.Flush(&knftables.Map{Name: name})
		}
		tx.Add(elementObj(newStamp))
		for _, e := range stale {
			tx.Delete(elementObj(e))
		}
		err = p.nft.Run(ctx, tx)
		p.stats.Operations = tx.NumOperations()
	}
	if err != nil {
		return fmt.Errorf("write nftables table %s %s (%d service ports changed): %w", TableFamily, TableName, p.stats.Changed, err)
	}
	if pruned {
		p.stamps = p.stamps[:0]
	}
	p.stamps = append(p.stamps, newStamp.key)
	p.seq, p.digest = p.seq+1, newDigest
	for _, c := range addChains {
		p.chains[c] = true
	}
	for _, c := range delChains {
		delete(p.chains, c)
	}
	p.stats.Wrote, p.stats.Netlink = true, fast
	p.afterWrite(ctx, m, changes)
	p.prev = m
	return nil
}

// chainChanges compares the dynamic chains the elements need with those in
// the table.
func (p *Proxier) chainChanges() (add, del []string) {
	for c := range p.st.chainRefs {
		if !p.chains[c] {
			add = append(add, c)
		}
	}
	for c := range p.chains {
		if p.st.chainRefs[c] == 0 {
			del = append(del, c)
		}
	}
	slices.Sort(add)
	slices.Sort(del)
	return add, del
}

// addDynamic adds the objects behind a per-count or per-timeout chain.
func addDynamic(tx *knftables.Transaction, chain string) {
	f, n, t, _ := parseDynamicChain(chain)
	objs := affinityObjects(t)
	if n > 0 {
		objs = dnatObjects(f, n)
	}
	for _, o := range objs {
		tx.Add(o)
	}
}

// deleteDynamic removes them again (chain flushed first: a chain with
// rules cannot be deleted; its map only once no rule refers to it).
func deleteDynamic(tx *knftables.Transaction, chain string) {
	f, n, _, _ := parseDynamicChain(chain)
	tx.Flush(&knftables.Chain{Name: chain})
	tx.Delete(&knftables.Chain{Name: chain})
	if n > 0 {
		tx.Delete(&knftables.Map{Name: endpointsMap(f, n)})
	}
}

func elementObj(e element) *knftables.Element {
	el := &knftables.Element{Key: []string{e.key}}
	if isSet(e.set) {
		el.Set = e.set
	} else {
		el.Map = e.set
		el.Value = []string{e.value}
	}
	return el
}

// fullSync compares the table with m through its object names and digest
// stamp, adopts it when equal, and rebuilds it otherwise.
func (p *Proxier) fullSync(ctx context.Context, m proxy.Model) error {
	// A periodic full sync of a running agent: if the kernel still holds
	// what this Proxier last wrote, the model's changes since are written
	// as in any sync, not by rewriting the table (2.4 s at 10k Services).
	if p.trusted {
		same, err := p.kernelHoldsMemory(ctx)
		if err != nil {
			return fmt.Errorf("read nftables table %s %s: %w", TableFamily, TableName, err)
		}
		if same {
			err := p.partialSync(ctx, m)
			p.stats.Full = true
			return err
		}
	}
	p.stats = SyncStats{Full: true, Changed: len(m.Ports)}
	st := newStore(len(m.Ports) * 12)
	ports := make(map[proxy.Key][]element, len(m.Ports))
	for k, sp := range m.Ports {
		els := portElements(sp, nil)
		ports[k] = els
		for _, e := range els {
			st.acquire(e, nil)
		}
	}
	chains := map[string]bool{}
	for c := range st.chainRefs {
		chains[c] = true
	}
	d := digest(m)
	same, exists, stamps, seq, err := p.tableMatches(ctx, chains, d)
	if err != nil {
		return fmt.Errorf("read nftables table %s %s: %w", TableFamily, TableName, err)
	}
	if !same {
		seq++
		stamps = []string{stampElement(seq, d)}
		if !exists && p.nl != nil {
			err = p.load(ctx, st, chains, stamps[0])
		} else {
			tx := p.nft.NewTransaction()
			rebuild(tx, st, chains, stamps[0], p.batch)
			err = p.nft.Run(ctx, tx)
			p.stats.Operations = tx.NumOperations()
		}
		if err != nil {
			return fmt.Errorf("rebuild nftables table %s %s (%d service ports): %w", TableFamily, TableName, len(m.Ports), err)
		}
		p.stats.Wrote = true
	}
	var changes proxy.Changes
	if p.prev.Ports != nil {
		changes = proxy.Diff(p.prev, m)
	}
	p.st, p.ports, p.chains, p.stamps, p.seq, p.digest = st, ports, chains, stamps, seq, d
	p.afterWrite(ctx, m, changes)
	p.prev = m
	return nil
}

// rebuild replaces whatever the table holds, in one transaction.
func rebuild(tx *knftables.Transaction, st *store, chains map[string]bool, stamp string, batch bool) {
	structure(tx, chains)
	tx.Add(elementObj(element{set: setStamp, key: stamp}))
	writeElements(tx, true, st.elements(), batch)
}

// structure replaces the table with an empty one of the layout: base and
// regular chains, rules, sets and maps, and the dynamic chains named.
func structure(tx *knftables.Transaction, chains map[string]bool) {
	// Add first so that Delete cannot fail on a missing table; the whole
	// transaction is atomic, so no packet sees the table half built.
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	for _, o := range staticObjects() {
		tx.Add(o)
	}
	names := make([]string, 0, len(chains))
	for c := range chains {
		names = append(names, c)
	}
	slices.Sort(names)
	for _, c := range names {
		addDynamic(tx, c)
	}
}

// load fills a table that does not exist yet (a node's first agent, or
// after `none`): its structure in one nft transaction, then its elements
// through netlink in transactions of netlinkMaxElements, the stamp last.
// nft spends ≈ 1.5 s parsing 110k elements at 10k Services; netlink needs
// a fraction of that. It is not atomic, which matters only where there was
// a table before (rebuild stays one nft transaction there): here Services
// become reachable while the load runs, and a failure leaves a table
// without the current stamp, which the next (full) sync rebuilds.
func (p *Proxier) load(ctx context.Context, st *store, chains map[string]bool, stamp string) error {
	tx := p.nft.NewTransaction()
	structure(tx, chains)
	if err := p.nft.Run(ctx, tx); err != nil {
		return err
	}
	elems := st.elements()
	ops := tx.NumOperations()
	for start := 0; start < len(elems); start += netlinkMaxElements {
		chunk := elems[start:min(start+netlinkMaxElements, len(elems))]
		if err := p.nl.write(elementBatch{adds: chunk}); err != nil {
			return err
		}
		ops += len(chunk)
	}
	if err := p.nl.write(elementBatch{adds: []element{{set: setStamp, key: stamp}}}); err != nil {
		return err
	}
	p.stats.Operations, p.stats.Netlink = ops+1, true
	return nil
}

// tableMatches compares the table's chain names with those a table
// holding the model has, and its newest stamp with the model's digest d.
// It returns whether the table exists, the stamps found and the newest
// write number (0 when none).
// Chain names and one small set are all nft can list without fetching
// every set element (seconds at 10k Services; see execReader). Stamps are
// written in the same transaction as the elements they summarise, and
// every set and map is referenced by a rule of an expected chain, so a
// match means the table holds the model unless someone else edited our
// elements (a rebuild, e.g. after RequestFullSync with a changed model,
// repairs that).
func (p *Proxier) tableMatches(ctx context.Context, chains map[string]bool, d uint64) (same, exists bool, stamps []string, seq uint32, err error) {
	have, exists, err := p.read.chains(ctx)
	if err != nil || !exists {
		return false, exists, nil, 0, err
	}
	stamps, err = p.read.stamp(ctx)
	if err != nil {
		return false, true, nil, 0, err
	}
	seq, digest, ok := latestStamp(stamps)
	same = ok && digest == d && equalNames(have, expectedChains(chains))
	return same, true, stamps, seq, nil
}

// kernelHoldsMemory says whether the table has the chains and newest stamp
// of the Proxier's last write.
func (p *Proxier) kernelHoldsMemory(ctx context.Context) (bool, error) {
	have, exists, err := p.read.chains(ctx)
	if err != nil || !exists {
		return false, err
	}
	stamps, err := p.read.stamp(ctx)
	if err != nil {
		return false, err
	}
	seq, digest, ok := latestStamp(stamps)
	return ok && seq == p.seq && digest == p.digest && equalNames(have, expectedChains(p.chains)), nil
}

// expectedChains lists the chain names of a table holding the dynamic
// chains.
func expectedChains(chains map[string]bool) []string {
	var cs []string
	for _, o := range staticObjects() {
		if c, ok := o.(*knftables.Chain); ok {
			cs = append(cs, c.Name)
		}
	}
	for c := range chains {
		cs = append(cs, c)
	}
	return cs
}

func equalNames(got, want []string) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

// digest summarises m and the layout version: a sum over ports, so a
// partial sync updates it from the changed ports alone (updateDigest).
func digest(m proxy.Model) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, layoutVersion)
	sum := h.Sum64()
	for _, sp := range m.Ports {
		sum += portDigest(sp)
	}
	return sum
}

// updateDigest moves d from prev to next over the changed ports.
func updateDigest(d uint64, prev, next proxy.Model, c proxy.Changes) uint64 {
	for _, k := range c.Removed {
		d -= portDigest(prev.Ports[k])
	}
	for _, k := range c.Changed {
		d += portDigest(next.Ports[k]) - portDigest(prev.Ports[k])
	}
	for _, k := range c.Added {
		d += portDigest(next.Ports[k])
	}
	return d
}

func portDigest(sp *proxy.ServicePort) uint64 {
	kh := fnv.New64a()
	_, _ = io.WriteString(kh, sp.Key.String())
	return mix(kh.Sum64() ^ sp.Hash())
}

// mix is splitmix64's finaliser: spreads bits so that the sum of mixed
// values does not cancel out for similar inputs.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
