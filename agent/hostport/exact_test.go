package hostport

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

// testMappings are three pods: pod1 with a host port on 127.0.0.1, pod2 with the same port on
// the node address, pod3 with it on UDP, plus a dual-stack wildcard and an SCTP one.
func testMappings(t *testing.T) []Mapping {
	t.Helper()
	var out []Mapping
	for _, p := range []struct {
		pms []RuntimePortMapping
		ips []string
	}{
		{[]RuntimePortMapping{{HostPort: 54321, ContainerPort: 8080, HostIP: "127.0.0.1"}}, []string{"10.244.0.5"}},
		{[]RuntimePortMapping{{HostPort: 54321, ContainerPort: 8080, Protocol: "TCP", HostIP: "10.99.0.11"}}, []string{"10.244.0.6"}},
		{[]RuntimePortMapping{{HostPort: 54321, ContainerPort: 8080, Protocol: "UDP", HostIP: "10.99.0.11"}}, []string{"10.244.0.7"}},
		{[]RuntimePortMapping{{HostPort: 8443, ContainerPort: 443}, {HostPort: 9132, ContainerPort: 9132, Protocol: "SCTP", HostIP: "fd10:99::11"}}, []string{"10.244.0.8", "fd10:244::8"}},
	} {
		var ips []netip.Addr
		for _, s := range p.ips {
			ips = append(ips, netip.MustParseAddr(s))
		}
		ms, err := Expand(p.pms, ips)
		if err != nil {
			t.Fatal(err)
		}
		if err := Conflict(out, ms); err != nil {
			t.Fatalf("unexpected conflict: %v", err)
		}
		out = append(out, ms...)
	}
	return out
}

// TestExactTable compares the table Sync writes, rule for rule and element for element.
func TestExactTable(t *testing.T) {
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	if err := Sync(context.Background(), fake, testMappings(t)); err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(`
add table inet plexus-hostport { comment "Plexus host ports (CNI portMappings)" ; }
add chain inet plexus-hostport hostports
add chain inet plexus-hostport output { type nat hook output priority -101 ; }
add chain inet plexus-hostport postrouting { type nat hook postrouting priority 100 ; }
add chain inet plexus-hostport prerouting { type nat hook prerouting priority -101 ; }
add set inet plexus-hostport hairpin-v4 { type ipv4_addr . ipv4_addr ; }
add set inet plexus-hostport hairpin-v6 { type ipv6_addr . ipv6_addr ; }
add map inet plexus-hostport anyip-v4 { typeof meta l4proto . th dport : ip daddr . th dport ; }
add map inet plexus-hostport anyip-v6 { typeof meta l4proto . th dport : ip6 daddr . th dport ; }
add map inet plexus-hostport hostip-v4 { typeof ip daddr . meta l4proto . th dport : ip daddr . th dport ; }
add map inet plexus-hostport hostip-v6 { typeof ip6 daddr . meta l4proto . th dport : ip6 daddr . th dport ; }
add rule inet plexus-hostport hostports meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @hostip-v4
add rule inet plexus-hostport hostports meta nfproto ipv4 dnat ip to meta l4proto . th dport map @anyip-v4
add rule inet plexus-hostport hostports meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @hostip-v6
add rule inet plexus-hostport hostports meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @anyip-v6
add rule inet plexus-hostport output fib daddr type local jump hostports
add rule inet plexus-hostport postrouting ct status dnat ip saddr . ip daddr @hairpin-v4 masquerade
add rule inet plexus-hostport postrouting ct status dnat ip6 saddr . ip6 daddr @hairpin-v6 masquerade
add rule inet plexus-hostport prerouting fib daddr type local jump hostports
add element inet plexus-hostport hairpin-v4 { 10.244.0.5 . 10.244.0.5 }
add element inet plexus-hostport hairpin-v4 { 10.244.0.6 . 10.244.0.6 }
add element inet plexus-hostport hairpin-v4 { 10.244.0.7 . 10.244.0.7 }
add element inet plexus-hostport hairpin-v4 { 10.244.0.8 . 10.244.0.8 }
add element inet plexus-hostport hairpin-v6 { fd10:244::8 . fd10:244::8 }
add element inet plexus-hostport anyip-v4 { tcp . 8443 : 10.244.0.8 . 443 }
add element inet plexus-hostport anyip-v6 { tcp . 8443 : fd10:244::8 . 443 }
add element inet plexus-hostport hostip-v4 { 127.0.0.1 . tcp . 54321 : 10.244.0.5 . 8080 }
add element inet plexus-hostport hostip-v4 { 10.99.0.11 . tcp . 54321 : 10.244.0.6 . 8080 }
add element inet plexus-hostport hostip-v4 { 10.99.0.11 . udp . 54321 : 10.244.0.7 . 8080 }
add element inet plexus-hostport hostip-v6 { fd10:99::11 . sctp . 9132 : fd10:244::8 . 9132 }
`)
	if got := strings.TrimSpace(fake.Dump()); got != want {
		t.Errorf("table differs:\n--- got\n%s\n--- want\n%s", got, want)
	}

	// A second Sync with fewer mappings leaves exactly those: no stale element, no doubled rule.
	if err := Sync(context.Background(), fake, testMappings(t)[:1]); err != nil {
		t.Fatal(err)
	}
	got := fake.Dump()
	if n := strings.Count(got, "add element"); n != 2 {
		t.Errorf("after removing pods the table holds %d elements, want 2:\n%s", n, got)
	}
	if n := strings.Count(got, "add rule"); n != 8 {
		t.Errorf("after a second Sync the table holds %d rules, want 8:\n%s", n, got)
	}

	// No mappings left: the table goes.
	if err := Sync(context.Background(), fake, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(fake.Dump()); got != "" {
		t.Errorf("table left after the last mapping went:\n%s", got)
	}
}
