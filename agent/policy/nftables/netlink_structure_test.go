package nftables

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	gnft "github.com/google/nftables"
)

// Every rule the layout writes outside the static chains is encodable;
// static rules are not (they are only ever written by nft).
func TestRuleExprsCoversTheLayout(t *testing.T) {
	m := testModel(t, everyShape(80)...)
	s := desired(m)
	interval := func(set string) bool { x := s.sets[set]; return x != nil && x.interval }
	shapes := map[string]bool{}
	for _, name := range s.order {
		for _, r := range s.chains[name] {
			if _, err := ruleExprs(r, interval); err != nil {
				t.Errorf("chain %s: %v", name, err)
			}
			shapes[hashedName.ReplaceAllString(r, "$1/#")] = true
		}
	}
	for _, want := range []string{
		"ip saddr . meta l4proto @any/#-v4 counter name ingress-set/#/allow accept",
		"ip saddr @any-pods/#-v4 counter name ingress-set/#/allow accept",
		"ip6 saddr . meta l4proto . th dport @ports-pods/#-v6 counter name ingress-set/#/allow accept",
		"ip daddr . meta l4proto . th dport @ports-pods/#-v4 counter name egress-set/#/allow accept",
		"ip6 saddr . meta l4proto . th dport @ports/#-v6 counter name ingress-set/#/allow accept",
		"ip daddr . meta l4proto . th dport @ports/#-v4 counter name egress-set/#/allow accept",
		"ip6 daddr . meta l4proto . th dport @ports/#-v6 counter name egress-set/#/allow accept",
		"counter name ingress-set/#/drop drop",
	} {
		if !shapes[want] {
			t.Errorf("the fixture makes no rule %q; it makes %v", want, slices.Sorted(maps.Keys(shapes)))
		}
	}
	for _, r := range []string{"ct state established,related accept", "ip saddr vmap @egress-pods-v4", "icmpv6 type " + ndTypes + " accept"} {
		if _, err := ruleExprs(r, interval); err == nil {
			t.Errorf("%q encoded; it is nft's only", r)
		}
	}
}

// An rbtree interval set is written as nft writes it: an interval end at
// zero unless the first range starts there, a start per range, an end one
// past each range's last address unless it is the family's last.
func TestIntervalElements(t *testing.T) {
	x := &set{typ: famV4.addr, interval: true}
	got, err := intervalElements("b", x, []string{"192.168.1.0/24", "0.0.0.0-9.255.255.255", "11.0.0.0-255.255.255.255", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	want := []gnft.SetElement{
		{Key: ip4("0.0.0.0")}, {Key: ip4("10.0.0.0"), IntervalEnd: true},
		{Key: ip4("10.1.2.3")}, {Key: ip4("10.1.2.4"), IntervalEnd: true},
		{Key: ip4("11.0.0.0")},
		{Key: ip4("192.168.1.0")}, {Key: ip4("192.168.2.0"), IntervalEnd: true},
	}
	if !slices.EqualFunc(got, want, sameElement) {
		t.Errorf("got %v, want %v", got, want)
	}
	got, _ = intervalElements("b", x, []string{"10.0.0.0/8"})
	want = []gnft.SetElement{{Key: ip4("0.0.0.0"), IntervalEnd: true}, {Key: ip4("10.0.0.0")}, {Key: ip4("11.0.0.0"), IntervalEnd: true}}
	if !slices.EqualFunc(got, want, sameElement) {
		t.Errorf("got %v, want %v", got, want)
	}
	ports := &set{typ: portsSetType(famV4), interval: true}
	got, _ = intervalElements("p", ports, []string{"10.0.0.0-10.0.0.255 . udp . 53-60", "10.1.2.3 . tcp . 80"})
	want = []gnft.SetElement{
		{Key: []byte{10, 0, 0, 0, 17, 0, 0, 0, 0, 53, 0, 0}, KeyEnd: []byte{10, 0, 0, 255, 17, 0, 0, 0, 0, 60, 0, 0}},
		{Key: []byte{10, 1, 2, 3, 6, 0, 0, 0, 0, 80, 0, 0}, KeyEnd: []byte{10, 1, 2, 3, 6, 0, 0, 0, 0, 80, 0, 0}},
	}
	if !slices.EqualFunc(got, want, sameElement) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A protocol range is one byte per bound, not a port's two.
	anyPort := &set{typ: anySetType(famV4), interval: true}
	got, _ = intervalElements("a", anyPort, []string{"10.1.2.3 . 0-255"})
	want = []gnft.SetElement{{Key: []byte{10, 1, 2, 3, 0, 0, 0, 0}, KeyEnd: []byte{10, 1, 2, 3, 255, 0, 0, 0}}}
	if !slices.EqualFunc(got, want, sameElement) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// A merged set's elements (a concatenation: independent ranges with a key
// end each) change through netlink.
func TestStructureDiffWritesConcatIntervalChanges(t *testing.T) {
	prev, next := newState(), newState()
	typ := portsSetType(famV4)
	prev.addSet("ports/x-v4", &set{typ: typ, interval: true})
	prev.element("ports/x-v4", []string{"10.0.0.1 . tcp . 80"}, "")
	next.addSet("ports/x-v4", &set{typ: typ, interval: true})
	next.element("ports/x-v4", []string{"10.0.0.2 . tcp . 80"}, "")
	ops, ok := structureDiff(prev, next)
	if !ok || len(ops) != 2 || ops[0].kind != opDelElements || ops[1].kind != opAddElements {
		t.Errorf("a merged set's element changed: %+v (ok %v)", ops, ok)
	}
}

// Changing the elements of a single-field interval set that exists is
// left to nft.
func TestStructureDiffLeavesIntervalChangesToNFT(t *testing.T) {
	prev, next := newState(), newState()
	prev.addSet("blocks/x-v4", &set{typ: famV4.addr, interval: true})
	prev.element("blocks/x-v4", []string{"10.0.0.0/8"}, "")
	next.addSet("blocks/x-v4", &set{typ: famV4.addr, interval: true})
	next.element("blocks/x-v4", []string{"10.0.0.0/16"}, "")
	if _, ok := structureDiff(prev, next); ok {
		t.Error("an interval set's elements changed through netlink")
	}
	next.sets["blocks/x-v4"] = prev.sets["blocks/x-v4"]
	next.addChain("np/a/p/ingress", []string{"ip saddr @blocks/x-v4 accept"})
	ops, ok := structureDiff(prev, next)
	if !ok || len(ops) != 2 || ops[0].kind != opAddChain || ops[1].kind != opAddRule {
		t.Errorf("a chain added: %+v (ok %v)", ops, ok)
	}
}

func ip4(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func sameElement(a, b gnft.SetElement) bool {
	return slices.Equal(a.Key, b.Key) && slices.Equal(a.KeyEnd, b.KeyEnd) && a.IntervalEnd == b.IntervalEnd
}
