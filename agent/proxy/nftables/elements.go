package nftables

import (
	"strconv"
	"strings"
	"unique"

	"github.com/plexus-net/plexus/agent/proxy"
)

// element is one set or map element the proxy writes: set (or map) name,
// key and value as nft text, concatenation fields joined by " . ". value
// is "" for a set element.
type element struct {
	set, key, value string
}

// famOf returns the spellings of a model family.
func famOf(f proxy.Family) fam {
	if f == proxy.IPv6 {
		return famV6
	}
	return famV4
}

// portElements returns every element that service port sp contributes.
// The kind of frontend decides the endpoint list and the masquerade mark;
// the model decides the action. prev are the port's elements of the last
// sync (nil when none): an endpoint keeps its numgen slot while the
// endpoint count stays the same, so replacing one endpoint rewrites one
// element, not every slot after it.
func portElements(sp *proxy.ServicePort, prev []element) []element {
	oldSlots := previousSlots(prev)
	f := famOf(sp.Key.Family)
	proto := strings.ToLower(string(sp.Protocol))
	out := make([]element, 0, len(sp.VIPs)*(2+len(sp.ClusterEndpoints)))
	for _, v := range sp.VIPs {
		key := v.Addr.String() + " . " + proto + " . " + strconv.Itoa(int(v.Port))
		switch sp.ActionFor(v.Kind) {
		case proxy.Forward:
			eps := sp.EndpointsFor(v.Kind)
			out = append(out, element{shared(f.name(mapVIPs)), key, shared("goto " + dnatChain(f, len(eps)))})
			m := shared(endpointsMap(f, len(eps)))
			values := make([]string, len(eps))
			for i, e := range eps {
				values[i] = e.Addr.String() + " . " + strconv.Itoa(int(e.Port))
			}
			if old := oldSlots[key]; old.set == m {
				values = keepSlots(values, old.slots)
			}
			for i, v := range values {
				out = append(out, element{m, key + " . " + strconv.Itoa(i), v})
			}
			if sp.MasqueradeFor(v.Kind) {
				out = append(out, element{shared(f.name(setMasquerade)), key, ""})
			}
			if sp.SessionAffinity {
				out = append(out, element{shared(f.name(mapAffinityVIPs)), key, shared("jump " + affinityChain(sp.AffinityTimeoutSeconds))})
			}
		case proxy.Reject:
			out = append(out, element{shared(f.name(mapNoEndpoints)), key, shared("goto " + chainReject)})
		case proxy.Drop:
			drop := "drop"
			if v.Kind.External() && len(sp.FromNodeEndpoints) > 0 {
				drop = shared("goto " + chainDropExternal)
			}
			out = append(out, element{shared(f.name(mapNoEndpoints)), key, drop})
		}
		if v.Kind.External() && len(sp.FromNodeEndpoints) > 0 {
			out = fromNodeElements(out, f, key, sp.FromNodeEndpoints, oldSlots[key+fromNodeSlots])
		}
	}
	for _, e := range sp.Endpoints {
		if e.Local {
			a := e.Addr.String()
			out = append(out, element{shared(f.name(setHairpin)), a + " . " + a, ""})
		}
	}
	return out
}

// fromNodeSlots tells previousSlots' assignments of from-node slots from
// those of the frontend's own endpoints.
const fromNodeSlots = " from-node"

// fromNodeElements appends the elements that send the node's own
// connections to frontend key to eps: the from-node dispatch and the
// endpoints at slots fromNodeSlotOffset+i of endpoints-f-len(eps), keeping
// the slots of old (the previous sync's) while the count stays.
func fromNodeElements(out []element, f fam, key string, eps []proxy.Endpoint, old slotAssignment) []element {
	out = append(out, element{shared(f.name(mapFromNode)), key, shared("goto " + dnatChain(f, len(eps)))})
	m := shared(endpointsMap(f, len(eps)))
	values := make([]string, len(eps))
	for i, e := range eps {
		values[i] = e.Addr.String() + " . " + strconv.Itoa(int(e.Port))
	}
	if old.set == m {
		values = keepSlots(values, old.slots)
	}
	for i, v := range values {
		out = append(out, element{m, key + " . " + strconv.Itoa(fromNodeSlotOffset+i), v})
	}
	return out
}

// shared returns the one copy of s kept for every element: set names and
// verdicts repeat in every element (110k times at 10k Services), and the
// Proxier keeps each element for its life.
func shared(s string) string { return unique.Make(s).Value() }

// slotAssignment is the endpoints map of one frontend and, per endpoint
// value, its slot.
type slotAssignment struct {
	set   string
	slots map[string]int
}

// previousSlots reads the slot assignments of prev's endpoints elements,
// per frontend key.
func previousSlots(prev []element) map[string]slotAssignment {
	var out map[string]slotAssignment
	for _, e := range prev {
		if !strings.HasPrefix(e.set, mapEndpoints+"-") {
			continue
		}
		cut := strings.LastIndex(e.key, " . ")
		idx, err := strconv.Atoi(e.key[cut+3:])
		if cut < 0 || err != nil {
			continue
		}
		if out == nil {
			out = map[string]slotAssignment{}
		}
		key := e.key[:cut]
		if idx >= fromNodeSlotOffset {
			key, idx = key+fromNodeSlots, idx-fromNodeSlotOffset
		}
		a, ok := out[key]
		if !ok {
			a = slotAssignment{set: e.set, slots: map[string]int{}}
			out[key] = a
		}
		a.slots[e.value] = idx
	}
	return out
}

// keepSlots orders values so that each one in old keeps its slot, and the
// others fill the free slots in their given order.
func keepSlots(values []string, old map[string]int) []string {
	out := make([]string, len(values))
	taken := make([]bool, len(values))
	var rest []string
	for _, v := range values {
		if i, ok := old[v]; ok && i < len(out) && !taken[i] {
			out[i], taken[i] = v, true
		} else {
			rest = append(rest, v)
		}
	}
	for i := range out {
		if !taken[i] {
			out[i], rest = rest[0], rest[1:]
		}
	}
	return out
}

// isSet says whether name is a set (no values) rather than a map.
func isSet(name string) bool {
	return name == setStamp || strings.HasPrefix(name, setMasquerade+"-") || strings.HasPrefix(name, setHairpin+"-")
}

// dynamicChainOf returns the per-count or per-timeout chain an element's
// value refers to, or "".
func dynamicChainOf(value string) string {
	for _, verb := range []string{"goto ", "jump "} {
		if c, ok := strings.CutPrefix(value, verb); ok && c != chainReject && c != chainDropExternal {
			return c
		}
	}
	return ""
}

// entryKey identifies an element in the table.
type entryKey struct{ set, key string }

// entry is an element in the table with the number of service ports that
// want it (hairpin pairs and, with misconfigured Services, frontends can
// be wanted by several).
type entry struct {
	value string
	refs  int32
}

// store is the proxy's in-memory copy of the elements it wrote, with
// reference counts, and of the dynamic chains they need.
type store struct {
	entries   map[entryKey]entry
	chainRefs map[string]int
}

func newStore(sizeHint int) *store {
	return &store{entries: make(map[entryKey]entry, sizeHint), chainRefs: map[string]int{}}
}

// elements lists every element in the store.
func (s *store) elements() []element {
	out := make([]element, 0, len(s.entries))
	for k, en := range s.entries {
		out = append(out, element{k.set, k.key, en.value})
	}
	return out
}

// ops collects the element operations of one sync.
type ops struct {
	adds, deletes []element
}

// acquire records that a port wants e; a new element becomes an add. When
// two ports want the same key with different values the first one wins.
func (s *store) acquire(e element, o *ops) {
	k := entryKey{e.set, e.key}
	if en, ok := s.entries[k]; ok {
		en.refs++
		s.entries[k] = en
		return
	}
	s.entries[k] = entry{value: e.value, refs: 1}
	if c := dynamicChainOf(e.value); c != "" {
		s.chainRefs[c]++
	}
	if o != nil {
		o.adds = append(o.adds, e)
	}
}

// release records that a port no longer wants e; an element nobody wants
// becomes a delete.
func (s *store) release(e element, o *ops) {
	k := entryKey{e.set, e.key}
	en, ok := s.entries[k]
	if !ok {
		return
	}
	if en.refs--; en.refs > 0 {
		s.entries[k] = en
		return
	}
	delete(s.entries, k)
	if c := dynamicChainOf(en.value); c != "" {
		if s.chainRefs[c]--; s.chainRefs[c] <= 0 {
			delete(s.chainRefs, c)
		}
	}
	if o != nil {
		o.deletes = append(o.deletes, element{e.set, e.key, en.value})
	}
}

// replace moves a port from old to next elements: elements in both stay
// untouched, the rest are released, then acquired (so a key whose value
// changes is deleted before it is added again).
func (s *store) replace(old, next []element, o *ops) {
	if len(old) == 0 {
		for _, e := range next {
			s.acquire(e, o)
		}
		return
	}
	keep := make(map[element]bool, len(old))
	for _, e := range old {
		keep[e] = false
	}
	for _, e := range next {
		if _, ok := keep[e]; ok {
			keep[e] = true
		}
	}
	for _, e := range old {
		if !keep[e] {
			s.release(e, o)
		}
	}
	for _, e := range next {
		if seen, ok := keep[e]; !ok || !seen {
			s.acquire(e, o)
		}
	}
}
