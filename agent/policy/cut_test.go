package policy

import (
	"slices"
	"testing"
)

func TestFlowsToCut(t *testing.T) {
	open := mustCompile(t, testInput(np("a", "web", "x", ingressOnly, ingressRules(in(nil, port(tcp, 80), port(tcp, 81))), nil)))
	narrowed := mustCompile(t, testInput(np("a", "web", "x", ingressOnly, ingressRules(in(nil, port(tcp, 80))), nil)))
	denyAll := mustCompile(t, testInput(np("a", "web", "x", ingressOnly, nil, nil)))
	for fam := range families {
		f := func(src, dst string, port uint16) Flow {
			return Flow{Src: addrOf(fam, src), Dst: addrOf(fam, dst), Protocol: TCP, Port: port}
		}
		flows := []Flow{
			f("c/w", "a/x", 80), f("c/w", "a/x", 81), f("c/w", "a/x", 82), // 82 was never allowed
			f("node", "a/x", 81), // the node is always allowed
			f("c/w", "a/y", 81),  // a/y is not selected
			f("a/x", "ext", 443), // egress of a/x is not isolated
		}
		cases := []struct {
			name       string
			prev, next *Model
			want       []Flow
		}{
			{"allow narrowed: the lost port only", open, narrowed, []Flow{f("c/w", "a/x", 81)}},
			{"allow removed", narrowed, denyAll, []Flow{f("c/w", "a/x", 80)}},
			{"allow widened: nothing", denyAll, open, nil},
			{"unchanged: nothing", open, open, nil},
			{"first enforcement: everything now denied", nil, narrowed, []Flow{f("c/w", "a/x", 81), f("c/w", "a/x", 82)}},
		}
		for _, tc := range cases {
			if got := FlowsToCut(tc.prev, tc.next, flows); !slices.Equal(got, tc.want) {
				t.Errorf("%s/%s: got %v, want %v", families[fam].Name, tc.name, got, tc.want)
			}
		}
	}
}
