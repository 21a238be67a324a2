package e2e

import (
	"net/netip"
	"strings"
	"testing"
)

// TestTruthMatrixComparison checks the truth table's own logic without a lab: the loopback is
// always expected to reach, a wrong cell is counted and marked in the side-by-side print, and a
// wrong extra is flagged with the probe's reason.
func TestTruthMatrixComparison(t *testing.T) {
	var pods []*truthPod
	for n, ns := range []string{"x", "y"} {
		pods = append(pods, &truthPod{ns: ns, name: "a", node: n + 1, ips: []netip.Addr{netip.MustParseAddr("10.0.0." + string(rune('1'+n)))}})
	}
	kinds := probeKinds([]bool{false})
	want := expectedMatrix(pods, kinds, func(_, to *truthPod, _ probeKind) bool { return to.ns != "x" })
	tcp80 := probeKind{proto: "tcp", port: 80}
	if !want[tcp80][0][0] || want[tcp80][1][0] || !want[tcp80][0][1] {
		t.Fatalf("expected matrix %v: want loopback allowed, y/a -> x/a denied, x/a -> y/a allowed", want[tcp80])
	}
	got := observation{cells: expectedMatrix(pods, kinds, allowAll), extras: []bool{false}, errs: map[string]string{"node1 tcp/10.0.0.1:80": "i/o timeout"}}
	extras := []extraProbe{{from: "node1", target: "tcp/10.0.0.1:80", what: "(x/a)", want: true}}
	if n := mismatches(want, extras, got); n != len(kinds)+1 {
		t.Fatalf("mismatches = %d, want %d (y/a -> x/a in every kind, and the extra)", n, len(kinds)+1)
	}
	out := sideBySide(pods, kinds, want, extras, got)
	for _, s := range []string{"TCP/80 IPv4: 1 of 4 cells differ", "y/a    X   .    y/a    .*  . ", "* node1 -> tcp/10.0.0.1:80 (x/a): expected reaches, observed does not reach (i/o timeout)"} {
		if !strings.Contains(out, s) {
			t.Errorf("side by side print lacks %q:\n%s", s, out)
		}
	}
}
