package nftables

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/plexus-net/plexus/agent/policy"
)

// set is a named set or map as the table should hold it. For a set every
// element's value is "".
type set struct {
	name     string // set by addSet; the digest includes it
	isMap    bool
	typ      string // `type` (typeOf false) or `typeof` expression
	typeOf   bool
	interval bool
	elements map[string]string // key (fields joined by " . ") → value
	// sum is the digest of the set once summed (see digest).
	sum    digest
	summed bool
	// base is the set this one was made from by changing the elements
	// of the keys in touched (see setChanges); nil when built anew.
	base    *set
	touched []string
	// was, when not nil, says that this set took over base's elements
	// map and changed it in place: it holds each changed key's element
	// in base (the keys are the touched ones). base is then lent: its
	// elements are this set's, and only a diff from base to this set
	// may read what base held.
	was  map[string]prior
	lent bool
}

// prior is a key's element before a set changed it in place.
type prior struct {
	value string
	in    bool // false: the key was not in the set
}

// remember records key's current element in was, once, before the set
// changes it in place.
func (s *set) remember(key string) {
	if _, ok := s.was[key]; !ok {
		v, in := s.elements[key]
		s.was[key] = prior{value: v, in: in}
	}
}

// undo restores what the set's base held and gives it its elements back.
func (s *set) undo() {
	for k, p := range s.was {
		if p.in {
			s.elements[k] = p.value
		} else {
			delete(s.elements, k)
		}
	}
	if s.base != nil {
		s.base.lent = false
	}
	s.was, s.base = nil, nil
}

func (s *set) sameShape(o *set) bool {
	return s.isMap == o.isMap && s.typ == o.typ && s.typeOf == o.typeOf && s.interval == o.interval
}

// state is everything the table holds besides its static objects: the
// whole desired state of one model, or what the last write left.
type state struct {
	sets     map[string]*set
	chains   map[string][]string // regular chain → its rules in order
	counters map[string]counterID
	// order lists chains in the order they are declared.
	order []string
	// chainsID is the same for states that share chains, counters and
	// order (see builder.build); nil when unknown.
	chainsID *int
}

func newState() *state {
	return &state{sets: map[string]*set{}, chains: map[string][]string{}, counters: map[string]counterID{}}
}

func (s *state) addChain(name string, rules []string) {
	if _, ok := s.chains[name]; !ok {
		s.order = append(s.order, name)
	}
	s.chains[name] = rules
}

func (s *state) addSet(name string, x *set) {
	if x.elements == nil {
		x.elements = map[string]string{}
	}
	x.name = name
	s.sets[name] = x
}

func (s *state) element(setName string, key []string, value string) {
	s.sets[setName].elements[strings.Join(key, " . ")] = value
}

// counts returns the number of objects, rules and elements (static ones
// included).
func (s *state) counts() (objects, rules, elements int) {
	objects = len(s.sets) + len(s.chains) + len(s.counters) + staticObjectCount
	rules = staticRuleCount
	for _, r := range s.chains {
		rules += len(r)
	}
	for _, x := range s.sets {
		elements += len(x.elements)
	}
	return objects, rules, elements
}

// stampValue returns the digest s carries ("" before stamp).
func (s *state) stampValue() string {
	if x := s.sets[setStamp]; x != nil {
		for k := range x.elements {
			return k
		}
	}
	return ""
}

// counterID says whose a named counter is: a policy-set chain's, i.e.
// the policies isolating its pods in one direction.
type counterID struct {
	policies  []policy.PolicyKey
	direction policy.Direction
	verdict   string // "allow" or "drop"
}

// sortedKeys returns m's keys in order, for deterministic transactions.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// keysNotIn returns, sorted, the keys of a that b lacks.
func keysNotIn[V, W any](a map[string]V, b map[string]W) []string {
	var out []string
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// changedSets returns, sorted, the names of next's sets that prev does
// not share (new or rebuilt ones).
func changedSets(prev, next *state) []string {
	var out []string
	for name, x := range next.sets {
		if prev.sets[name] != x {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// splitKey undoes the join of element fields.
func splitKey(k string) []string { return strings.Split(k, " . ") }

func itoa(n int) string { return strconv.Itoa(n) }
