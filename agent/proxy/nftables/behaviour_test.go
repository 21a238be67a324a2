package nftables

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttrace"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
)

// traceWorld syncs w into a fresh fake and returns a tracer over it.
func traceWorld(t *testing.T, w *world) *nfttrace.Tracer {
	t.Helper()
	fake := knftables.NewFake(TableFamily, TableName)
	syncFake(t, New(fake), w.model())
	return newTracer(fake)
}

const (
	podA   = "10.244.1.20" // a client pod on this node
	podA6  = "fd10:244:0:1::20"
	remote = "10.99.0.100" // a client outside the cluster
	nodeIP = "10.99.0.11"  // this node
)

// TestBehaviour traces packets through the scenario's table.
func TestBehaviour(t *testing.T) {
	tr := traceWorld(t, scenario())
	cases := []struct {
		name string
		p    packet
		want string
	}{
		{"ClusterIP balances over both endpoints, no SNAT",
			packet{Src: ip(podA), Dst: ip("10.96.0.10"), Proto: "tcp", DPort: 80}, "dnat 10.244.1.5:8080,10.244.2.5:8080"},
		{"IPv6 ClusterIP of the dual-stack Service",
			packet{Src: ip(podA6), Dst: ip("fd00:10:96::10"), Proto: "tcp", DPort: 80}, "dnat [fd10:244:0:1::5]:8080,[fd10:244:0:2::5]:8080"},
		{"from the node itself (output hook)",
			packet{Src: ip(nodeIP), Dst: ip("10.96.0.10"), Proto: "tcp", DPort: 80, Local: true}, "dnat 10.244.1.5:8080,10.244.2.5:8080"},
		{"hairpin: an endpoint reaching itself is masqueraded",
			packet{Src: ip("10.244.1.5"), Dst: ip("10.96.0.10"), Proto: "tcp", DPort: 80}, "dnat 10.244.1.5:8080,10.244.2.5:8080 masq=10.244.1.5:8080"},
		{"NodePort from outside: masqueraded, affinity recorded",
			packet{Src: ip(remote), Dst: ip(nodeIP), Proto: "tcp", DPort: 30080}, "dnat 10.244.2.6:8080,10.244.2.7:8080 masq=10.244.2.6:8080,10.244.2.7:8080 affinity=60s"},
		{"ClusterIP of the affinity Service records affinity, no SNAT",
			packet{Src: ip(podA), Dst: ip("10.96.0.20"), Proto: "tcp", DPort: 80}, "dnat 10.244.2.6:8080,10.244.2.7:8080 affinity=60s"},
		{"eTP Local NodePort: local endpoint only, client source kept",
			packet{Src: ip(remote), Dst: ip(nodeIP), Proto: "tcp", DPort: 30443}, "dnat 10.244.1.8:8443"},
		{"eTP Local LoadBalancer IP",
			packet{Src: ip(remote), Dst: ip("198.51.100.30"), Proto: "tcp", DPort: 443}, "dnat 10.244.1.8:8443"},
		{"eTP Local external IP",
			packet{Src: ip(remote), Dst: ip("203.0.113.30"), Proto: "tcp", DPort: 443}, "dnat 10.244.1.8:8443"},
		{"ClusterIP of an eTP Local Service uses all endpoints",
			packet{Src: ip(podA), Dst: ip("10.96.0.30"), Proto: "tcp", DPort: 443}, "dnat 10.244.1.8:8443,10.244.2.8:8443"},
		{"iTP Local UDP: local endpoint only",
			packet{Src: ip(podA), Dst: ip("10.96.0.53"), Proto: "udp", DPort: 53}, "dnat 10.244.1.9:5353"},
		{"no endpoints: reject",
			packet{Src: ip(podA), Dst: ip("10.96.0.40"), Proto: "tcp", DPort: 80}, "reject"},
		{"no endpoints, from the node: reject",
			packet{Src: ip(nodeIP), Dst: ip("10.96.0.40"), Proto: "tcp", DPort: 80, Local: true}, "reject"},
		{"iTP Local without a local endpoint: drop (SCTP)",
			packet{Src: ip(podA), Dst: ip("10.96.0.41"), Proto: "sctp", DPort: 80}, "drop"},
		{"other port of a VIP: untouched",
			packet{Src: ip(podA), Dst: ip("10.96.0.10"), Proto: "tcp", DPort: 81}, "accept"},
		{"other protocol of a VIP: untouched",
			packet{Src: ip(podA), Dst: ip("10.96.0.10"), Proto: "udp", DPort: 80}, "accept"},
		{"node address on a port that is no NodePort: untouched",
			packet{Src: ip(remote), Dst: ip(nodeIP), Proto: "tcp", DPort: 22}, "accept"},
	}
	for _, c := range cases {
		if got := tr.Trace(c.p).String(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// TestAffinitySticks: after the first connection the packet path has
// recorded the choice, and later connections from that client go to the
// same endpoint; another client is still balanced.
func TestAffinitySticks(t *testing.T) {
	tr := traceWorld(t, scenario())
	client := packet{Src: ip(remote), Dst: ip(nodeIP), Proto: "tcp", DPort: 30080}
	last := func(eps []string) string { return eps[len(eps)-1] }
	first := tr.Connect(client, last)
	if got := tr.Trace(client).String(); got != "dnat "+first+" masq="+first+" affinity=60s" {
		t.Errorf("second connection: %s, want only %s", got, first)
	}
	other := client
	other.Src = ip("10.99.0.101")
	if got := tr.Trace(other).Endpoints; len(got) != 2 {
		t.Errorf("another client: %v, want both endpoints", got)
	}
}

// TestEndpointRulesInTheTable: terminating fallback and topology hints,
// resolved by the model, reach the table.
func TestEndpointRulesInTheTable(t *testing.T) {
	tcp := corev1.ProtocolTCP
	cases := []struct {
		name string
		eps  []pt.EP
		want string
	}{
		{"ready endpoints win over terminating ones",
			[]pt.EP{{IP: "10.244.1.5", Node: "node-a", NotReady: true, Terminating: true}, {IP: "10.244.2.5", Node: "node-b"}}, "dnat 10.244.2.5:8080"},
		{"serving terminating endpoints when none is ready",
			[]pt.EP{{IP: "10.244.1.5", Node: "node-a", NotReady: true, Terminating: true}, {IP: "10.244.2.5", Node: "node-b", NotReady: true, Terminating: true, NotServing: true}}, "dnat 10.244.1.5:8080"},
		{"nothing serving: reject",
			[]pt.EP{{IP: "10.244.2.5", Node: "node-b", NotReady: true, Terminating: true, NotServing: true}}, "reject"},
		{"topology hints for this node's zone",
			[]pt.EP{{IP: "10.244.1.5", Node: "node-a", Zones: []string{"zone-1"}}, {IP: "10.244.2.5", Node: "node-b", Zones: []string{"zone-2"}}, {IP: "10.244.3.5", Node: "node-c", Zones: []string{"zone-1"}}},
			"dnat 10.244.1.5:8080,10.244.3.5:8080"},
		{"no endpoint hinted for this zone: all",
			[]pt.EP{{IP: "10.244.2.5", Node: "node-b", Zones: []string{"zone-2"}}, {IP: "10.244.3.5", Node: "node-c", Zones: []string{"zone-3"}}},
			"dnat 10.244.2.5:8080,10.244.3.5:8080"},
	}
	for _, c := range cases {
		w := &world{}
		w.add(pt.Service("ns", "web", []string{"10.96.0.10"}, pt.Port("p", tcp, 80)),
			pt.Slice("ns", "web", "web-1", "p", tcp, 8080, c.eps...))
		if got := traceWorld(t, w).Trace(packet{Src: ip(podA), Dst: ip("10.96.0.10"), Proto: "tcp", DPort: 80}).String(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// TestAffinityIPv6AndDualStack: a dual-stack ClientIP Service records
// affinity in both families; in each family a client's later connections
// go to the endpoint its first one got, from a pod and through the node's
// IPv6 NodePort (masqueraded) alike, while another client, or the same
// client in the other family, still chooses among all endpoints.
func TestAffinityIPv6AndDualStack(t *testing.T) {
	tr := traceWorld(t, dualStackAffinity())
	const remote6 = "fd10:99::100"
	cases := []struct {
		name string
		p    packet
		want string
	}{
		{"IPv4 ClusterIP", packet{Src: ip(podA), Dst: ip("10.96.0.20"), Proto: "tcp", DPort: 80},
			"dnat 10.244.2.6:8080,10.244.2.7:8080 affinity=30s"},
		{"IPv6 ClusterIP", packet{Src: ip(podA6), Dst: ip("fd00:10:96::20"), Proto: "tcp", DPort: 80},
			"dnat [fd10:244:0:2::6]:8080,[fd10:244:0:2::7]:8080 affinity=30s"},
		{"IPv6 NodePort from outside", packet{Src: ip(remote6), Dst: ip("fd10:99::11"), Proto: "tcp", DPort: 30080},
			"dnat [fd10:244:0:2::6]:8080,[fd10:244:0:2::7]:8080 masq=[fd10:244:0:2::6]:8080,[fd10:244:0:2::7]:8080 affinity=30s"},
	}
	first := func(eps []string) string { return eps[0] }
	last := func(eps []string) string { return eps[len(eps)-1] }
	for _, c := range cases {
		if got := tr.Trace(c.p).String(); got != c.want {
			t.Errorf("%s, first connection:\n got %s\nwant %s", c.name, got, c.want)
		}
		for _, choose := range []func([]string) string{last, first} {
			ep := tr.Connect(c.p, choose)
			v := tr.Trace(c.p)
			if len(v.Endpoints) != 1 || v.Endpoints[0] != ep || v.AffinityTimeout != "30s" {
				t.Errorf("%s, after a connection to %s: %s, want only %s, refreshed", c.name, ep, v, ep)
			}
			tr.ForgetDynamic() // the entries expire
		}
	}
	// One IPv6 client sticks; the other client and the first client's
	// IPv4 connections are unaffected.
	p6 := cases[1].p
	ep := tr.Connect(p6, last)
	for _, other := range []packet{
		{Src: ip("fd10:244:0:1::21"), Dst: p6.Dst, Proto: "tcp", DPort: 80},
		{Src: ip(podA), Dst: ip("10.96.0.20"), Proto: "tcp", DPort: 80},
		{Src: ip(podA6), Dst: ip("fd10:99::11"), Proto: "tcp", DPort: 30080},
	} {
		if got := tr.Trace(other).Endpoints; len(got) != 2 {
			t.Errorf("%v after %s stuck to %s: %v, want both endpoints", other, podA6, ep, got)
		}
	}
}
