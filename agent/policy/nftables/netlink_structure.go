package nftables

import (
	"fmt"
	"strings"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
)

// A structural netlink transaction: what writeDiff writes through nft for
// a policy added, changed or deleted (counters, sets with their elements,
// chains and their rules), encoded for one nf_tables netlink batch. nft
// 1.0.6 spends ≈230 ms at 10k pods on any transaction that adds a rule or
// element (it loads and re-evaluates its cache of the whole table); the
// kernel applies the same batch in about a millisecond.

// Bounds of one structural transaction: the batch goes to the kernel in
// one sendmsg and every message is acknowledged, so both socket buffers
// (see netlinkBufferBytes) must hold it. Larger diffs go through nft.
const (
	maxStructureMessages = 2048
	maxStructureElements = 16384
)

// opKind is one kind of netlink request.
type opKind int

const (
	opAddCounter opKind = iota
	opAddSet
	opAddElements
	opDelElements
	opAddChain
	opFlushChain
	opAddRule
	opDelChain
	opDelSet
	opDelCounter
)

// netlinkOp is one request of a structural transaction.
type netlinkOp struct {
	kind  opKind
	name  string    // counter, set or chain
	set   *gnft.Set // opAddSet
	elems []gnft.SetElement
	exprs []expr.Any
}

// structureDiff returns the requests that turn prev into next, in
// writeDiff's order; ok false when something is not encodable here (an
// element change in an existing interval set, a rule outside ruleExprs'
// grammar) or the diff is too large: nft writes it then.
func structureDiff(prev, next *state) (ops []netlinkOp, ok bool) {
	elements := 0
	for _, name := range keysNotIn(next.counters, prev.counters) {
		ops = append(ops, netlinkOp{kind: opAddCounter, name: name})
	}
	// Only the sets the states do not share changed (at 1k policies a
	// policy changes a few of ~4,700): sort those alone.
	changed := changedSets(prev, next)
	for _, name := range changed {
		x := next.sets[name]
		p, existed := prev.sets[name]
		if existed && !p.sameShape(x) {
			return nil, false // redeclared: nft replaces it
		}
		if !existed {
			if isStaticSet(name) {
				return nil, false
			}
			s, err := netlinkSet(name, x)
			if err != nil {
				return nil, false
			}
			ops = append(ops, netlinkOp{kind: opAddSet, name: name, set: s})
		}
	}
	for _, name := range next.order {
		if _, ok := prev.chains[name]; !ok {
			ops = append(ops, netlinkOp{kind: opAddChain, name: name})
		}
	}
	for _, name := range changed {
		x, p := next.sets[name], prev.sets[name]
		var gone, come []string
		if p == nil {
			come = sortedKeys(x.elements)
		} else {
			gone, come = setChanges(p, x)
			if x.interval && !isConcat(x) && len(gone)+len(come) > 0 {
				// Changing an existing single-field interval set
				// means splitting and merging ranges: nft does it.
				return nil, false
			}
		}
		dels, err := setElements(name, p, gone, false)
		if err != nil {
			return nil, false
		}
		adds, err := setElements(name, x, come, true)
		if err != nil {
			return nil, false
		}
		elements += len(dels) + len(adds)
		ops = appendElementOps(ops, opDelElements, name, dels)
		ops = appendElementOps(ops, opAddElements, name, adds)
	}
	interval := func(set string) bool { x := next.sets[set]; return x != nil && x.interval }
	for _, name := range next.order {
		old, existed := prev.chains[name]
		rules := next.chains[name]
		if existed && equalRules(old, rules) {
			continue
		}
		if existed {
			ops = append(ops, netlinkOp{kind: opFlushChain, name: name})
		}
		for _, r := range rules {
			exprs, err := ruleExprs(r, interval)
			if err != nil {
				return nil, false
			}
			ops = append(ops, netlinkOp{kind: opAddRule, name: name, exprs: exprs})
		}
	}
	for _, name := range prev.order {
		if _, ok := next.chains[name]; !ok {
			ops = append(ops, netlinkOp{kind: opDelChain, name: name})
		}
	}
	for _, name := range keysNotIn(prev.sets, next.sets) {
		ops = append(ops, netlinkOp{kind: opDelSet, name: name})
	}
	for _, name := range keysNotIn(prev.counters, next.counters) {
		ops = append(ops, netlinkOp{kind: opDelCounter, name: name})
	}
	if len(ops) > maxStructureMessages || elements > maxStructureElements {
		return nil, false
	}
	return ops, true
}

// appendElementOps adds elems in messages of at most
// netlinkElementsPerMessage (an interval's start and end stay together:
// the limit is even and ranges take two elements).
func appendElementOps(ops []netlinkOp, kind opKind, name string, elems []gnft.SetElement) []netlinkOp {
	for len(elems) > 0 {
		n := min(len(elems), netlinkElementsPerMessage)
		ops = append(ops, netlinkOp{kind: kind, name: name, elems: elems[:n]})
		elems = elems[n:]
	}
	return ops
}

// setElements encodes keys of x (x may be nil when keys is empty).
func setElements(name string, x *set, keys []string, withValue bool) ([]gnft.SetElement, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if x.interval {
		return intervalElements(name, x, keys)
	}
	out := make([]gnft.SetElement, 0, len(keys))
	for _, k := range keys {
		el, err := encodeElement(changeOf(name, x, k), withValue)
		if err != nil {
			return nil, err
		}
		out = append(out, el)
	}
	return out, nil
}

// setKeyTypes are the set key types the layout declares, as netlink
// datatypes.
var setKeyTypes = func() map[string]gnft.SetDatatype {
	concat := func(ts ...gnft.SetDatatype) gnft.SetDatatype {
		t, err := gnft.ConcatSetType(ts...)
		if err != nil {
			panic(err) // three fields fit: a programming error
		}
		return t
	}
	return map[string]gnft.SetDatatype{
		famV4.addr:          gnft.TypeIPAddr,
		famV6.addr:          gnft.TypeIP6Addr,
		anySetType(famV4):   concat(gnft.TypeIPAddr, gnft.TypeInetProto),
		anySetType(famV6):   concat(gnft.TypeIP6Addr, gnft.TypeInetProto),
		portsSetType(famV4): concat(gnft.TypeIPAddr, gnft.TypeInetProto, gnft.TypeInetService),
		portsSetType(famV6): concat(gnft.TypeIP6Addr, gnft.TypeInetProto, gnft.TypeInetService),
	}
}()

// netlinkSet declares x as nft does for its `type`: the key type (a
// concatenation's field lengths too, which the kernel needs for an
// interval concatenation), the interval flag and big-endian keys.
func netlinkSet(name string, x *set) (*gnft.Set, error) {
	t, ok := setKeyTypes[x.typ]
	if x.isMap || x.typeOf || !ok {
		return nil, fmt.Errorf("set %s of type %q is not declared through netlink", name, x.typ)
	}
	concat := len(gnft.ConcatSetTypeElements(t)) > 1
	return &gnft.Set{
		Name:     name,
		KeyType:  t,
		Interval: x.interval,
		// nft flags only an interval concatenation as one (it needs
		// the pipapo backend).
		Concatenation: concat && x.interval,
		KeyByteOrder:  binaryutil.BigEndian,
	}, nil
}

// isConcat reports whether x's key is a concatenation: as an interval set
// (pipapo) its elements are independent ranges, each with a key and a key
// end, which netlink adds and deletes one by one.
func isConcat(x *set) bool { return strings.Contains(x.typ, " . ") }
