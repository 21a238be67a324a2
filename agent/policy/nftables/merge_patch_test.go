package nftables

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plexus-net/plexus/agent/policy"
)

// TestPatchExactMatchesRebuild: an exact set patched from the terms it was
// built from to new ones holds what a set built from the new terms holds,
// and records exactly the elements that changed; terms that differ in
// more than their points, or unsorted points, are refused (rebuilt).
func TestPatchExactMatchesRebuild(t *testing.T) {
	a := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, x := range s {
			out = append(out, netip.MustParseAddr(x))
		}
		return out
	}
	tcp := func(first, last uint16) policy.PortRange {
		return policy.PortRange{Protocol: policy.TCP, First: first, Last: last}
	}
	tm := func(points []netip.Addr, ports ...policy.PortRange) term {
		return term{peers: peers{points: points}, ports: ports}
	}
	cases := []struct {
		name      string
		kind      exactKind
		old, next []term
		refused   bool
	}{
		{"a point comes", exactPorts,
			[]term{tm(a("10.0.0.1", "10.0.0.3"), tcp(80, 80), tcp(8000, 8000))},
			[]term{tm(a("10.0.0.1", "10.0.0.2", "10.0.0.3"), tcp(80, 80), tcp(8000, 8000))}, false},
		{"a point goes", exactPorts,
			[]term{tm(a("10.0.0.1", "10.0.0.2"), tcp(80, 80))},
			[]term{tm(a("10.0.0.2"), tcp(80, 80))}, false},
		{"a point goes from one term, another term keeps its element", exactPorts,
			[]term{tm(a("10.0.0.1", "10.0.0.2"), tcp(80, 80)), tm(a("10.0.0.1"), tcp(80, 80), tcp(81, 81))},
			[]term{tm(a("10.0.0.2"), tcp(80, 80)), tm(a("10.0.0.1"), tcp(80, 80), tcp(81, 81))}, false},
		{"a point moves between terms", exactPorts,
			[]term{tm(a("10.0.0.1", "10.0.0.2"), tcp(80, 80)), tm(a("10.0.0.3"), tcp(81, 81))},
			[]term{tm(a("10.0.0.2"), tcp(80, 80)), tm(a("10.0.0.1", "10.0.0.3"), tcp(81, 81))}, false},
		{"port ranges make no exact elements", exactPorts,
			[]term{tm(a("10.0.0.1"), tcp(80, 80), tcp(1000, 2000))},
			[]term{tm(a("10.0.0.1", "10.0.0.9"), tcp(80, 80), tcp(1000, 2000))}, false},
		{"any-port points", exactAny,
			[]term{tm(a("fd00::1", "fd00::3")), tm(a("fd00::3"))},
			[]term{tm(a("fd00::2", "fd00::3")), tm(nil)}, false},
		{"ports changed: refused", exactPorts,
			[]term{tm(a("10.0.0.1"), tcp(80, 80))},
			[]term{tm(a("10.0.0.1"), tcp(81, 81))}, true},
		{"a term more: refused", exactPorts,
			[]term{tm(a("10.0.0.1"), tcp(80, 80))},
			[]term{tm(a("10.0.0.1"), tcp(80, 80)), tm(a("10.0.0.2"), tcp(80, 80))}, true},
		{"unsorted points: refused", exactPorts,
			[]term{tm(a("10.0.0.1", "10.0.0.2"), tcp(80, 80))},
			[]term{tm(a("10.0.0.3", "10.0.0.2"), tcp(80, 80))}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder()
			elements := func(ts []term) []string {
				if tc.kind == exactAny {
					return exactAnyElements(ts)
				}
				return b.text.exactPortElements(ts)
			}
			typ := portsSetType(fams[0])
			if tc.kind == exactAny {
				typ = fams[0].addr
			}
			old := b.mergedSet("s", typ, false, elements(tc.old), nil)
			before := setKeys(old)
			got := b.patchExact("s", typ, tc.kind, old, tc.old, tc.next)
			if tc.refused {
				if got != nil {
					t.Fatalf("patched, want refused")
				}
				return
			}
			if got == nil {
				t.Fatal("refused, want patched")
			}
			want := b.mergedSet("s", typ, false, elements(tc.next), nil)
			if d := cmp.Diff(setKeys(want), setKeys(got)); d != "" {
				t.Fatalf("patched set differs from a rebuilt one (-rebuilt +patched):\n%s", d)
			}
			if got.digest() != want.digest() {
				t.Fatal("patched digest differs from the rebuilt set's")
			}
			gone, come := setChanges(old, got)
			wantGone, wantCome := changedKeys(toMap(before), got.elements), changedKeys(got.elements, toMap(before))
			if d := cmp.Diff([][]string{wantGone, wantCome}, [][]string{gone, come}); d != "" {
				t.Fatalf("tracked changes differ (-compared +tracked):\n%s", d)
			}
		})
	}
}

func setKeys(s *set) []string {
	var out []string
	for k := range s.elements {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func toMap(keys []string) map[string]string {
	m := map[string]string{}
	for _, k := range keys {
		m[k] = ""
	}
	return m
}
