// Package nfttrace is a packet tracer over a knftables.Fake table: it interprets the rule text a
// Plexus table writes against the fake's sets and maps, so behaviour tests read like "a packet
// from A to VIP:port is DNATed to one of {...} and masqueraded" instead of comparing rule text.
//
// What it models: a packet's walk through a filter and a nat chain at prerouting (or output for
// Local packets), then nat postrouting once per DNAT target; jump/goto/accept/drop/reject;
// matches on ip/ip6 saddr and daddr, meta l4proto, th dport, meta mark, ct mark, ct state (always
// "new"), ct status, ct original daddr and proto-dst, meta nfproto; set and map lookups (exact
// keys, interval elements written as prefixes, "*" for numgen), verdict maps, `& mask == value`;
// `dnat to <key> map @m` (every possible target), `masquerade`, `meta mark set`, `ct mark set`,
// and `update @m { … }` entries, which Connect keeps as the kernel would.
//
// What it does not model: rule text outside that subset (it panics, so a test notices),
// priorities between tables, other hooks (Run evaluates any chain by name for those),
// counters, timeouts (ForgetDynamic drops every written entry at once), ranges, negation
// (`!=`), fragments, and the kernel's jhash (any hash of the same
// fields stands in for it; only equality between hashes matters). A real-kernel test stays the
// proof; the tracer is for fast, readable behaviour tests on the fake.
package nfttrace

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"
)

// Packet is what the tracer follows.
type Packet struct {
	// Src and Dst are the addresses.
	Src, Dst netip.Addr
	// Proto is tcp, udp or sctp.
	Proto string
	// DPort is the destination port.
	DPort uint16
	// Local says the packet is sent by the node itself (output hook)
	// rather than arriving from a pod or the network (prerouting).
	Local bool
}

// Verdict is the tracer's answer.
type Verdict struct {
	// Action is "dnat", "reject", "drop" or "accept" (untouched).
	Action string
	// Endpoints are the possible DNAT targets ("addr:port"), sorted.
	Endpoints []string
	// Masquerade lists, per target, whether it is source-NATed.
	Masquerade map[string]bool
	// AffinityTimeout is the timeout of the affinity entry recorded, "" when none.
	AffinityTimeout string
	// updates are the affinity entries the packet path writes (for
	// connect).
	updates []update
}

// update is an entry an `update` statement writes: into set, at key; the
// value is value, or, when it is a fresh random choice (randomChoice),
// whatever choice leads to the endpoint the connection got. target is the
// DNAT target whose postrouting wrote it ("" when written before DNAT).
type update struct {
	set, key, value, target string
}

// randomChoice is the value of an update that stores a fresh random
// choice; the tracer resolves it when a connection picks its endpoint.
const randomChoice = "random"

// String is the verdict as tests compare it: "dnat a:p,b:q masq=a:p affinity=60s".
func (v Verdict) String() string {
	s := v.Action
	if v.Action == "dnat" {
		s += " " + strings.Join(v.Endpoints, ",")
		var masq []string
		for _, e := range v.Endpoints {
			if v.Masquerade[e] {
				masq = append(masq, e)
			}
		}
		if len(masq) > 0 {
			s += " masq=" + strings.Join(masq, ",")
		}
		if v.AffinityTimeout != "" {
			s += " affinity=" + v.AffinityTimeout
		}
	}
	return s
}

// Layout names what the tracer needs to know of a table.
type Layout struct {
	// FilterPrerouting, FilterOutput, NATPrerouting, NATOutput and NATPostrouting are the
	// base chains of those hooks; "" means the table has none.
	FilterPrerouting, FilterOutput, NATPrerouting, NATOutput, NATPostrouting string
	// ChoiceTag and ChoiceMask mark a ct mark that holds an affinity choice (tag in the
	// masked bits, the choice in the others); Trace panics if nat postrouting leaves one set.
	// Zero when the table has no such choice.
	ChoiceTag, ChoiceMask uint32
	// EndpointMaps is the name prefix of the maps `frontend . slot` -> `addr . port`, in
	// which Connect finds the slot of the endpoint a connection got.
	EndpointMaps string
}

// Tracer interprets one fake table; affinity holds entries the packet
// path added to dynamic maps (map name -> key -> value).
type Tracer struct {
	table    *knftables.FakeTable
	layout   Layout
	affinity map[string]map[string]string
}

// New returns a Tracer over fake's table as it is when each packet is traced.
func New(fake *knftables.Fake, layout Layout) *Tracer {
	return &Tracer{table: fake.Table, layout: layout, affinity: map[string]map[string]string{}}
}

// ForgetDynamic drops every entry the packet path wrote (as if they expired).
func (t *Tracer) ForgetDynamic() { t.affinity = map[string]map[string]string{} }

// state is a packet while it moves through the hooks.
type state struct {
	p              Packet
	dst            netip.Addr // current destination (after DNAT)
	dport          uint16
	dnat           bool
	mark           uint32
	targets        []string // DNAT choices
	masquerade     bool
	affinityUpdate string // timeout of an update statement's entry
	updates        []update
	// ctMark is the conntrack mark; ctMarkRandom says its low 24 bits
	// are a fresh random choice (any value).
	ctMark       uint32
	ctMarkRandom bool
}

// result of a chain: "" (fell through), "accept", "drop", "reject", "dnat",
// "masquerade".
type result string

// Trace follows p through filter, nat and (per DNAT target) postrouting.
func (t *Tracer) Trace(p Packet) Verdict {
	filter, nat := t.layout.FilterPrerouting, t.layout.NATPrerouting
	if p.Local {
		filter, nat = t.layout.FilterOutput, t.layout.NATOutput
	}
	s := &state{p: p, dst: p.Dst, dport: p.DPort}
	switch r := t.run(filter, s); r {
	case "drop", "reject":
		return Verdict{Action: string(r)}
	}
	if r := t.run(nat, s); r != "dnat" {
		return Verdict{Action: "accept"}
	}
	v := Verdict{Action: "dnat", Masquerade: map[string]bool{}, AffinityTimeout: s.affinityUpdate, updates: s.updates}
	for _, target := range s.targets {
		ap := netip.MustParseAddrPort(target)
		post := &state{p: p, dst: ap.Addr(), dport: ap.Port(), dnat: true, mark: s.mark, ctMark: s.ctMark, ctMarkRandom: s.ctMarkRandom}
		if t.run(t.layout.NATPostrouting, post) == "masquerade" {
			v.Masquerade[target] = true
		}
		if post.affinityUpdate != "" {
			v.AffinityTimeout = post.affinityUpdate
		}
		for _, u := range post.updates {
			u.target = target
			v.updates = append(v.updates, u)
		}
		if t.layout.ChoiceMask != 0 && post.ctMark&t.layout.ChoiceMask == t.layout.ChoiceTag {
			panic("tracer: nat-postrouting left the affinity ct mark on " + target)
		}
	}
	v.Endpoints = slices.Sorted(slices.Values(s.targets))
	return v
}

// Connect is Trace plus what the kernel would remember: the connection
// goes to choose(targets), and an affinity update records that choice. It
// returns the endpoint, or the action when the packet is not DNATed.
func (t *Tracer) Connect(p Packet, choose func([]string) string) string {
	v := t.Trace(p)
	if v.Action != "dnat" {
		return v.Action
	}
	ep := choose(v.Endpoints)
	for _, u := range v.updates {
		if u.target != "" && u.target != ep {
			continue
		}
		if u.value == randomChoice {
			// The choice whose slot (see jhashOfMark) is ep's.
			u.value = strconv.Itoa(int(t.layout.ChoiceTag) + t.slotOf(p, ep))
		}
		if t.affinity[u.set] == nil {
			t.affinity[u.set] = map[string]string{}
		}
		t.affinity[u.set][u.key] = u.value
	}
	return ep
}

func mustUint32(s string) uint32 {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		panic(err)
	}
	return uint32(v)
}

// slotOf returns the slot of endpoint ep ("addr:port") in the endpoints
// map of p's frontend.
func (t *Tracer) slotOf(p Packet, ep string) int {
	ap := netip.MustParseAddrPort(ep)
	prefix := []string{p.Dst.String(), p.Proto, strconv.Itoa(int(p.DPort))}
	want := join(ap.Addr().String(), strconv.Itoa(int(ap.Port())))
	for name, m := range t.table.Maps {
		if t.layout.EndpointMaps == "" || !strings.HasPrefix(name, t.layout.EndpointMaps) {
			continue
		}
		for _, e := range m.Elements {
			key := strings.Split(strings.Join(e.Key, " . "), " . ")
			if len(key) == 4 && slices.Equal(key[:3], prefix) && strings.Join(e.Value, " . ") == want {
				slot, _ := strconv.Atoi(key[3])
				return slot
			}
		}
	}
	panic("tracer: no slot for " + ep)
}

func join(parts ...string) string { return strings.Join(parts, " . ") }

// Run evaluates chain alone for p, for hooks Trace does not follow (a forward
// filter, say). It returns "accept", "drop", "reject", "dnat" or
// "masquerade", or "" when the packet falls through.
func (t *Tracer) Run(chain string, p Packet) string {
	return string(t.run(chain, &state{p: p, dst: p.Dst, dport: p.DPort}))
}

// run evaluates a chain; goto/jump semantics as nft's. No chain ("") falls
// through.
func (t *Tracer) run(chain string, s *state) result {
	if chain == "" {
		return ""
	}
	c := t.table.Chains[chain]
	if c == nil {
		panic("tracer: no chain " + chain)
	}
	for _, r := range c.Rules {
		if res, stop := t.rule(r.Rule, s); stop {
			return res
		}
	}
	return ""
}

// rule evaluates one rule; stop says the chain ends with res.
func (t *Tracer) rule(text string, s *state) (result, bool) {
	toks := strings.Fields(text)
	if !familyMatches(toks, s.p) {
		return "", false
	}
	for len(toks) > 0 {
		switch toks[0] {
		case "jump", "goto":
			res := t.run(toks[1], s)
			if toks[0] == "goto" || res != "" {
				return res, true
			}
			toks = toks[2:]
			continue
		case "drop", "accept":
			return result(toks[0]), true
		case "reject":
			return "reject", true
		case "masquerade":
			return "masquerade", true
		case "dnat":
			// dnat <ip|ip6> to <expr> map @m
			i := slices.Index(toks, "map")
			vals := t.lookupAll(strings.TrimPrefix(toks[i+1], "@"), t.expr(toks[3:i], s))
			if len(vals) == 0 {
				return "", false // a failed map lookup ends the rule, not the chain
			}
			s.targets = nil
			for _, v := range vals {
				parts := strings.Split(v, " . ")
				port, _ := strconv.Atoi(parts[1])
				s.targets = append(s.targets, netip.AddrPortFrom(netip.MustParseAddr(parts[0]), uint16(port)).String())
			}
			return "dnat", true
		case "update":
			// update @m { <key> timeout Ns : <value> }
			to, colon, end := slices.Index(toks, "timeout"), slices.Index(toks, ":"), slices.Index(toks, "}")
			s.affinityUpdate = toks[to+1]
			u := update{set: strings.TrimPrefix(toks[1], "@"), key: join(t.expr(toks[3:to], s)...)}
			if val := toks[colon+1 : end]; strings.Join(val, " ") == "ct mark" && s.ctMarkRandom {
				u.value = randomChoice
			} else {
				u.value = join(t.expr(val, s)...)
			}
			s.updates = append(s.updates, u)
			return "", false
		case "ct":
			if len(toks) >= 4 && toks[1] == "mark" && toks[2] == "set" {
				return t.setCtMark(toks[3:], s)
			}
		case "meta":
			if len(toks) >= 6 && toks[1] == "mark" && toks[2] == "set" {
				// meta mark set meta mark or X
				v, _ := strconv.ParseUint(toks[6], 0, 32)
				s.mark |= uint32(v)
				toks = toks[7:]
				continue
			}
		}
		// A match: <expr> then @set | vmap @m | & mask == value | value.
		n := exprLen(toks)
		key := t.expr(toks[:n], s)
		toks = toks[n:]
		switch {
		case strings.HasPrefix(toks[0], "@"):
			if !t.has(toks[0][1:], key) {
				return "", false
			}
			toks = toks[1:]
		case toks[0] == "vmap":
			vals := t.lookupAll(toks[1][1:], key)
			if len(vals) == 0 {
				return "", false
			}
			toks = append(strings.Fields(vals[0]), toks[2:]...)
		case toks[0] == "&":
			mask, _ := strconv.ParseUint(toks[1], 0, 32)
			want, _ := strconv.ParseUint(toks[3], 0, 32)
			got, _ := strconv.ParseUint(key[0], 0, 32)
			if got&mask != want {
				return "", false
			}
			toks = toks[4:]
		default:
			if key[0] != toks[0] {
				return "", false
			}
			toks = toks[1:]
		}
	}
	return "", false
}

// familyMatches says whether a rule can match p's family: as in nft, an
// `ip`/`ip6` field or DNAT implies the family (in an inet table the
// kernel's rule first checks meta nfproto).
func familyMatches(toks []string, p Packet) bool {
	for i := 0; i+1 < len(toks); i++ {
		switch toks[i+1] {
		case "saddr", "daddr", "to":
		default:
			continue
		}
		if toks[i] == "ip" && !p.Src.Is4() || toks[i] == "ip6" && p.Src.Is4() {
			return false
		}
	}
	return true
}

// setCtMark runs `ct mark set <toks>`, the last statement of its rule: a
// constant, `numgen random mod M offset O`, or `<key> map @m` (a failed
// lookup leaves the mark as it was).
func (t *Tracer) setCtMark(toks []string, s *state) (result, bool) {
	switch {
	case toks[0] == "numgen":
		// numgen random mod M offset O
		off, _ := strconv.ParseUint(toks[5], 0, 32)
		s.ctMark, s.ctMarkRandom = uint32(off), true
		return "", false
	case slices.Contains(toks, "map"):
		i := slices.Index(toks, "map")
		vals := t.lookupAll(strings.TrimPrefix(toks[i+1], "@"), t.expr(toks[:i], s))
		if len(vals) == 0 {
			return "", false
		}
		s.ctMark, s.ctMarkRandom = mustUint32(vals[0]), false
		return "", false
	default:
		s.ctMark, s.ctMarkRandom = mustUint32(toks[0]), false
		return "", false
	}
}

// has says whether set (or map) name holds key.
func (t *Tracer) has(name string, key []string) bool {
	return len(t.lookupAll(name, key)) > 0
}

// lookupAll returns the values of every element of name matching key, "*"
// matching any field (numgen); a set element's value is "".
func (t *Tracer) lookupAll(name string, key []string) []string {
	var elems []*knftables.Element
	if s := t.table.Sets[name]; s != nil {
		elems = s.Elements
	} else if m := t.table.Maps[name]; m != nil {
		elems = m.Elements
	} else {
		panic("tracer: no set or map " + name)
	}
	var out []string
	for _, e := range elems {
		if matchKey(strings.Split(strings.Join(e.Key, " . "), " . "), key) {
			out = append(out, strings.Join(e.Value, " . "))
		}
	}
	for k, v := range t.affinity[name] {
		if matchKey(strings.Split(k, " . "), key) {
			out = append(out, v)
		}
	}
	return out
}

// matchKey says whether an element's key have matches the looked-up key
// want: "*" in want matches anything, and an interval element written as a
// prefix matches the addresses inside it.
func matchKey(have, want []string) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		if want[i] != "*" && have[i] != want[i] && !prefixHolds(have[i], want[i]) {
			return false
		}
	}
	return true
}

// prefixHolds says whether element is a prefix containing the address addr.
func prefixHolds(element, addr string) bool {
	p, err := netip.ParsePrefix(element)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(addr)
	return err == nil && p.Contains(a)
}
