package hostport

import (
	"context"
	"net/netip"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttrace"
)

// TestTracer follows packets through the table written for testMappings. The base chains'
// `fib daddr type local` gate is outside the tracer's subset: the tracer starts at the dispatch
// chain (as for a packet to a local address); the real-kernel tests prove the gate.
func TestTracer(t *testing.T) {
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	if err := Sync(context.Background(), fake, testMappings(t)); err != nil {
		t.Fatal(err)
	}
	tr := nfttrace.New(fake, nfttrace.Layout{NATPrerouting: Layout.DNAT, NATOutput: Layout.DNAT, NATPostrouting: Layout.Postrouting})
	a := netip.MustParseAddr
	remote4, remote6 := a("10.99.0.12"), a("fd10:99::12")
	for _, c := range []struct {
		name string
		p    nfttrace.Packet
		want string
	}{
		{"tcp to 127.0.0.1 reaches pod1", nfttrace.Packet{Src: a("10.99.0.11"), Dst: a("127.0.0.1"), Proto: "tcp", DPort: 54321, Local: true}, "dnat 10.244.0.5:8080"},
		{"tcp to the node address reaches pod2", nfttrace.Packet{Src: remote4, Dst: a("10.99.0.11"), Proto: "tcp", DPort: 54321}, "dnat 10.244.0.6:8080"},
		{"udp to the node address reaches pod3", nfttrace.Packet{Src: remote4, Dst: a("10.99.0.11"), Proto: "udp", DPort: 54321}, "dnat 10.244.0.7:8080"},
		{"udp to 127.0.0.1 is nobody's", nfttrace.Packet{Src: a("127.0.0.1"), Dst: a("127.0.0.1"), Proto: "udp", DPort: 54321, Local: true}, "accept"},
		{"tcp to another node address is nobody's", nfttrace.Packet{Src: remote4, Dst: a("10.99.1.11"), Proto: "tcp", DPort: 54321}, "accept"},
		{"sctp on the port of tcp and udp is nobody's", nfttrace.Packet{Src: remote4, Dst: a("10.99.0.11"), Proto: "sctp", DPort: 54321}, "accept"},
		{"other port", nfttrace.Packet{Src: remote4, Dst: a("10.99.0.11"), Proto: "tcp", DPort: 54322}, "accept"},
		{"wildcard IPv4 on any local address", nfttrace.Packet{Src: remote4, Dst: a("10.99.0.11"), Proto: "tcp", DPort: 8443}, "dnat 10.244.0.8:443"},
		{"wildcard IPv4 from the node to loopback", nfttrace.Packet{Src: a("10.99.0.11"), Dst: a("127.0.0.1"), Proto: "tcp", DPort: 8443, Local: true}, "dnat 10.244.0.8:443"},
		{"wildcard IPv6", nfttrace.Packet{Src: remote6, Dst: a("fd10:99::11"), Proto: "tcp", DPort: 8443}, "dnat [fd10:244::8]:443"},
		{"wildcard is tcp only", nfttrace.Packet{Src: remote6, Dst: a("fd10:99::11"), Proto: "udp", DPort: 8443}, "accept"},
		{"sctp IPv6 host port", nfttrace.Packet{Src: remote6, Dst: a("fd10:99::11"), Proto: "sctp", DPort: 9132}, "dnat [fd10:244::8]:9132"},
		{"sctp IPv6 host port is not IPv4's", nfttrace.Packet{Src: remote4, Dst: a("10.99.0.11"), Proto: "sctp", DPort: 9132}, "accept"},
		{"sctp IPv6 host port only on its address", nfttrace.Packet{Src: remote6, Dst: a("fd10:99::12"), Proto: "sctp", DPort: 9132}, "accept"},
		{"hairpin IPv4: the pod to its own host port is masqueraded", nfttrace.Packet{Src: a("10.244.0.8"), Dst: a("10.99.0.11"), Proto: "tcp", DPort: 8443}, "dnat 10.244.0.8:443 masq=10.244.0.8:443"},
		{"hairpin IPv6", nfttrace.Packet{Src: a("fd10:244::8"), Dst: a("fd10:99::11"), Proto: "tcp", DPort: 8443}, "dnat [fd10:244::8]:443 masq=[fd10:244::8]:443"},
		{"another pod keeps its address", nfttrace.Packet{Src: a("10.244.0.6"), Dst: a("10.99.0.11"), Proto: "tcp", DPort: 8443}, "dnat 10.244.0.8:443"},
	} {
		if got := tr.Trace(c.p).String(); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
