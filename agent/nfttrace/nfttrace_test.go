package nfttrace_test

import (
	"context"
	"net/netip"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttrace"
)

// TestRunFilter: a filter chain of the kind a policy table holds (an interval set of allowed
// sources, a verdict map per port) evaluated with Run.
func TestRunFilter(t *testing.T) {
	fake := knftables.NewFake(knftables.InetFamily, "trace-test")
	tx := fake.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Chain{Name: "forward"})
	tx.Add(&knftables.Chain{Name: "allow-web"})
	tx.Add(&knftables.Set{Name: "web-peers", Type: "ipv4_addr", Flags: []knftables.SetFlag{knftables.IntervalFlag}})
	tx.Add(&knftables.Element{Set: "web-peers", Key: []string{"10.244.1.0/24"}})
	tx.Add(&knftables.Map{Name: "ports", Type: "inet_proto . inet_service : verdict"})
	tx.Add(&knftables.Element{Map: "ports", Key: []string{"tcp", "80"}, Value: []string{"jump allow-web"}})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: "meta l4proto . th dport vmap @ports"})
	tx.Add(&knftables.Rule{Chain: "forward", Rule: "drop"})
	tx.Add(&knftables.Rule{Chain: "allow-web", Rule: "ip saddr @web-peers accept"})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	tr := nfttrace.New(fake, nfttrace.Layout{})
	for _, c := range []struct {
		name string
		p    nfttrace.Packet
		want string
	}{
		{"allowed peer", nfttrace.Packet{Src: netip.MustParseAddr("10.244.1.7"), Dst: netip.MustParseAddr("10.244.2.5"), Proto: "tcp", DPort: 80}, "accept"},
		{"peer outside the set", nfttrace.Packet{Src: netip.MustParseAddr("10.244.3.7"), Dst: netip.MustParseAddr("10.244.2.5"), Proto: "tcp", DPort: 80}, "drop"},
		{"other port", nfttrace.Packet{Src: netip.MustParseAddr("10.244.1.7"), Dst: netip.MustParseAddr("10.244.2.5"), Proto: "tcp", DPort: 443}, "drop"},
	} {
		if got := tr.Run("forward", c.p); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	// No nat chains in the layout: Trace leaves the packet alone.
	if got := tr.Trace(nfttrace.Packet{Src: netip.MustParseAddr("10.244.1.7"), Dst: netip.MustParseAddr("10.244.2.5"), Proto: "tcp", DPort: 80}).String(); got != "accept" {
		t.Errorf("trace without hooks: %s", got)
	}
}
