package nftables

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/internal/golden"
)

// stampRE matches the digest in the stamp chain's name; the exact-rule
// tests compare everything else.
var stampRE = regexp.MustCompile(`sync-stamp \{ [0-9a-f:]+ \}`)

// wantScenario is the whole table for scenario(): constant objects, one
// dnat chain and map per endpoint count in use (1 and 2 for IPv4, 2 for
// IPv6), one affinity chain per timeout in use (60 s) with the rules of
// both families, and the elements:
// frontends of every kind, Local policies resolved to local endpoints,
// reject (no endpoints) and drop (iTP Local, none local), masquerade only
// for the eTP Cluster NodePort, hairpin pairs of local endpoints, and the
// eTP Local Service's external frontends in from-node with all its
// endpoints at the from-node slots (65536…), for the node's own traffic.
const wantScenario = `
add table inet plexus-proxy { comment "Plexus service proxy" ; }
add chain inet plexus-proxy affinity-60
add chain inet plexus-proxy dnat-v4-1
add chain inet plexus-proxy dnat-v4-2
add chain inet plexus-proxy dnat-v6-2
add chain inet plexus-proxy drop-external
add chain inet plexus-proxy filter-output { type filter hook output priority -110 ; }
add chain inet plexus-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
add chain inet plexus-proxy nat-input { type nat hook input priority 100 ; }
add chain inet plexus-proxy nat-output { type nat hook output priority -100 ; }
add chain inet plexus-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain inet plexus-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain inet plexus-proxy no-endpoints
add chain inet plexus-proxy reject-packet
add chain inet plexus-proxy services
add set inet plexus-proxy hairpin-v4 { type ipv4_addr . ipv4_addr ; }
add set inet plexus-proxy hairpin-v6 { type ipv6_addr . ipv6_addr ; }
add set inet plexus-proxy masquerade-v4 { typeof ip daddr . meta l4proto . th dport ; }
add set inet plexus-proxy masquerade-v6 { typeof ip6 daddr . meta l4proto . th dport ; }
add set inet plexus-proxy sync-stamp { type ipv6_addr ; }
add map inet plexus-proxy affinity-v4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service ; flags dynamic,timeout ; }
add map inet plexus-proxy affinity-v6 { typeof numgen random mod 4294967295 . numgen random mod 4294967295 : ct mark ; flags dynamic,timeout ; }
add map inet plexus-proxy affinity-vips-v4 { type ipv4_addr . inet_proto . inet_service : verdict ; }
add map inet plexus-proxy affinity-vips-v6 { typeof ip6 daddr . meta l4proto . th dport : verdict ; }
add map inet plexus-proxy endpoints-v4-1 { typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport ; }
add map inet plexus-proxy endpoints-v4-2 { typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport ; }
add map inet plexus-proxy endpoints-v6-2 { typeof ip6 daddr . meta l4proto . th dport . numgen random mod 2 : ip6 daddr . th dport ; }
add map inet plexus-proxy from-node-v4 { typeof ip daddr . meta l4proto . th dport : verdict ; }
add map inet plexus-proxy from-node-v6 { typeof ip6 daddr . meta l4proto . th dport : verdict ; }
add map inet plexus-proxy no-endpoints-v4 { typeof ip daddr . meta l4proto . th dport : verdict ; }
add map inet plexus-proxy no-endpoints-v6 { typeof ip6 daddr . meta l4proto . th dport : verdict ; }
add map inet plexus-proxy vips-v4 { typeof ip daddr . meta l4proto . th dport : verdict ; }
add map inet plexus-proxy vips-v6 { typeof ip6 daddr . meta l4proto . th dport : verdict ; }
add rule inet plexus-proxy affinity-60 meta l4proto tcp update @affinity-v4 { ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout 60s : ip daddr . th dport }
add rule inet plexus-proxy affinity-60 meta l4proto udp update @affinity-v4 { ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout 60s : ip daddr . th dport }
add rule inet plexus-proxy affinity-60 meta l4proto sctp update @affinity-v4 { ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout 60s : ip daddr . th dport }
add rule inet plexus-proxy affinity-60 ct mark 0 ct mark set jhash ip6 saddr . ip6 daddr . meta l4proto . th dport mod 4294967295 seed 0x1 . jhash ip6 saddr . ip6 daddr . meta l4proto . th dport mod 4294967295 seed 0x2 map @affinity-v6
add rule inet plexus-proxy affinity-60 meta nfproto ipv6 ct mark 0 ct mark set numgen random mod 16777216 offset 0x50000000
add rule inet plexus-proxy affinity-60 ct mark & 0xff000000 == 0x50000000 update @affinity-v6 { jhash ip6 saddr . ip6 daddr . meta l4proto . th dport mod 4294967295 seed 0x1 . jhash ip6 saddr . ip6 daddr . meta l4proto . th dport mod 4294967295 seed 0x2 timeout 60s : ct mark }
add rule inet plexus-proxy dnat-v4-1 fib saddr type local dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 offset 65536 map @endpoints-v4-1
add rule inet plexus-proxy dnat-v4-1 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 1 map @endpoints-v4-1
add rule inet plexus-proxy dnat-v4-2 fib saddr type local dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 offset 65536 map @endpoints-v4-2
add rule inet plexus-proxy dnat-v4-2 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @endpoints-v4-2
add rule inet plexus-proxy dnat-v6-2 fib saddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 offset 65536 map @endpoints-v6-2
add rule inet plexus-proxy dnat-v6-2 ct mark & 0xff000000 == 0x50000000 dnat ip6 to ip6 daddr . meta l4proto . th dport . jhash ct mark mod 2 map @endpoints-v6-2
add rule inet plexus-proxy dnat-v6-2 dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 map @endpoints-v6-2
add rule inet plexus-proxy drop-external fib saddr type local return
add rule inet plexus-proxy drop-external drop
add rule inet plexus-proxy filter-output ct state new jump no-endpoints
add rule inet plexus-proxy filter-prerouting ct state new jump no-endpoints
add rule inet plexus-proxy nat-input ct mark & 0xff000000 == 0x50000000 ct mark set 0
add rule inet plexus-proxy nat-output ip daddr . meta l4proto . th dport @from-node-v4 meta mark set meta mark or 0x00004000
add rule inet plexus-proxy nat-output ip daddr . meta l4proto . th dport vmap @from-node-v4
add rule inet plexus-proxy nat-output ip6 daddr . meta l4proto . th dport @from-node-v6 meta mark set meta mark or 0x00004000
add rule inet plexus-proxy nat-output ip6 daddr . meta l4proto . th dport vmap @from-node-v6
add rule inet plexus-proxy nat-output jump services
add rule inet plexus-proxy nat-postrouting meta l4proto tcp ct status dnat ct original ip daddr . meta l4proto . ct original proto-dst vmap @affinity-vips-v4
add rule inet plexus-proxy nat-postrouting meta l4proto udp ct status dnat ct original ip daddr . meta l4proto . ct original proto-dst vmap @affinity-vips-v4
add rule inet plexus-proxy nat-postrouting meta l4proto sctp ct status dnat ct original ip daddr . meta l4proto . ct original proto-dst vmap @affinity-vips-v4
add rule inet plexus-proxy nat-postrouting ct mark & 0xff000000 == 0x50000000 ct mark set 0
add rule inet plexus-proxy nat-postrouting meta mark & 0x00004000 == 0x00004000 meta mark set meta mark ^ 0x00004000 masquerade fully-random
add rule inet plexus-proxy nat-postrouting ct status dnat ip saddr . ip daddr @hairpin-v4 masquerade fully-random
add rule inet plexus-proxy nat-postrouting ct status dnat ip6 saddr . ip6 daddr @hairpin-v6 masquerade fully-random
add rule inet plexus-proxy nat-prerouting jump services
add rule inet plexus-proxy no-endpoints ip daddr . meta l4proto . th dport vmap @no-endpoints-v4
add rule inet plexus-proxy no-endpoints ip6 daddr . meta l4proto . th dport vmap @no-endpoints-v6
add rule inet plexus-proxy reject-packet meta l4proto tcp reject with tcp reset
add rule inet plexus-proxy reject-packet reject
add rule inet plexus-proxy services ip daddr . meta l4proto . th dport @masquerade-v4 meta mark set meta mark or 0x00004000
add rule inet plexus-proxy services dnat ip to ip saddr . ip daddr . meta l4proto . th dport map @affinity-v4
add rule inet plexus-proxy services ip daddr . meta l4proto . th dport vmap @vips-v4
add rule inet plexus-proxy services ip6 daddr . meta l4proto . th dport @masquerade-v6 meta mark set meta mark or 0x00004000
add rule inet plexus-proxy services ip6 daddr . meta l4proto . th dport vmap @affinity-vips-v6
add rule inet plexus-proxy services ip6 daddr . meta l4proto . th dport vmap @vips-v6
add element inet plexus-proxy affinity-vips-v4 { 10.96.0.20 . tcp . 80 : jump affinity-60 }
add element inet plexus-proxy affinity-vips-v4 { 10.99.0.11 . tcp . 30080 : jump affinity-60 }
add element inet plexus-proxy endpoints-v4-1 { 10.96.0.53 . udp . 53 . 0 : 10.244.1.9 . 5353 }
add element inet plexus-proxy endpoints-v4-1 { 10.99.0.11 . tcp . 30443 . 0 : 10.244.1.8 . 8443 }
add element inet plexus-proxy endpoints-v4-1 { 198.51.100.30 . tcp . 443 . 0 : 10.244.1.8 . 8443 }
add element inet plexus-proxy endpoints-v4-1 { 203.0.113.30 . tcp . 443 . 0 : 10.244.1.8 . 8443 }
add element inet plexus-proxy endpoints-v4-2 { 10.96.0.10 . tcp . 80 . 0 : 10.244.1.5 . 8080 }
add element inet plexus-proxy endpoints-v4-2 { 10.96.0.10 . tcp . 80 . 1 : 10.244.2.5 . 8080 }
add element inet plexus-proxy endpoints-v4-2 { 10.96.0.20 . tcp . 80 . 0 : 10.244.2.6 . 8080 }
add element inet plexus-proxy endpoints-v4-2 { 10.96.0.20 . tcp . 80 . 1 : 10.244.2.7 . 8080 }
add element inet plexus-proxy endpoints-v4-2 { 10.96.0.30 . tcp . 443 . 0 : 10.244.1.8 . 8443 }
add element inet plexus-proxy endpoints-v4-2 { 10.96.0.30 . tcp . 443 . 1 : 10.244.2.8 . 8443 }
add element inet plexus-proxy endpoints-v4-2 { 10.99.0.11 . tcp . 30080 . 0 : 10.244.2.6 . 8080 }
add element inet plexus-proxy endpoints-v4-2 { 10.99.0.11 . tcp . 30080 . 1 : 10.244.2.7 . 8080 }
add element inet plexus-proxy endpoints-v4-2 { 10.99.0.11 . tcp . 30443 . 65536 : 10.244.1.8 . 8443 }
add element inet plexus-proxy endpoints-v4-2 { 10.99.0.11 . tcp . 30443 . 65537 : 10.244.2.8 . 8443 }
add element inet plexus-proxy endpoints-v4-2 { 198.51.100.30 . tcp . 443 . 65536 : 10.244.1.8 . 8443 }
add element inet plexus-proxy endpoints-v4-2 { 198.51.100.30 . tcp . 443 . 65537 : 10.244.2.8 . 8443 }
add element inet plexus-proxy endpoints-v4-2 { 203.0.113.30 . tcp . 443 . 65536 : 10.244.1.8 . 8443 }
add element inet plexus-proxy endpoints-v4-2 { 203.0.113.30 . tcp . 443 . 65537 : 10.244.2.8 . 8443 }
add element inet plexus-proxy endpoints-v6-2 { fd00:10:96::10 . tcp . 80 . 0 : fd10:244:0:1::5 . 8080 }
add element inet plexus-proxy endpoints-v6-2 { fd00:10:96::10 . tcp . 80 . 1 : fd10:244:0:2::5 . 8080 }
add element inet plexus-proxy from-node-v4 { 10.99.0.11 . tcp . 30443 : goto dnat-v4-2 }
add element inet plexus-proxy from-node-v4 { 198.51.100.30 . tcp . 443 : goto dnat-v4-2 }
add element inet plexus-proxy from-node-v4 { 203.0.113.30 . tcp . 443 : goto dnat-v4-2 }
add element inet plexus-proxy hairpin-v4 { 10.244.1.5 . 10.244.1.5 }
add element inet plexus-proxy hairpin-v4 { 10.244.1.8 . 10.244.1.8 }
add element inet plexus-proxy hairpin-v4 { 10.244.1.9 . 10.244.1.9 }
add element inet plexus-proxy hairpin-v6 { fd10:244:0:1::5 . fd10:244:0:1::5 }
add element inet plexus-proxy masquerade-v4 { 10.99.0.11 . tcp . 30080 }
add element inet plexus-proxy no-endpoints-v4 { 10.96.0.40 . tcp . 80 : goto reject-packet }
add element inet plexus-proxy no-endpoints-v4 { 10.96.0.41 . sctp . 80 : drop }
add element inet plexus-proxy sync-stamp { DIGEST }
add element inet plexus-proxy vips-v4 { 10.96.0.10 . tcp . 80 : goto dnat-v4-2 }
add element inet plexus-proxy vips-v4 { 10.96.0.20 . tcp . 80 : goto dnat-v4-2 }
add element inet plexus-proxy vips-v4 { 10.96.0.30 . tcp . 443 : goto dnat-v4-2 }
add element inet plexus-proxy vips-v4 { 10.96.0.53 . udp . 53 : goto dnat-v4-1 }
add element inet plexus-proxy vips-v4 { 10.99.0.11 . tcp . 30080 : goto dnat-v4-2 }
add element inet plexus-proxy vips-v4 { 10.99.0.11 . tcp . 30443 : goto dnat-v4-1 }
add element inet plexus-proxy vips-v4 { 198.51.100.30 . tcp . 443 : goto dnat-v4-1 }
add element inet plexus-proxy vips-v4 { 203.0.113.30 . tcp . 443 : goto dnat-v4-1 }
add element inet plexus-proxy vips-v6 { fd00:10:96::10 . tcp . 80 : goto dnat-v6-2 }
`

// TestExactRules compares the fake's table with wantScenario.
func TestExactRules(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	syncFake(t, New(fake), scenario().model())
	got := stampRE.ReplaceAllString(sortedDump(fake), "sync-stamp { DIGEST }")
	if want := strings.TrimSpace(wantScenario); got != want {
		t.Errorf("table differs; first difference:\n%s", golden.FirstDiff(got, want))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// wantAffinityV6 is what a dual-stack ClientIP NodePort Service (timeout
// 30 s) adds to an empty model's table: its affinity chain, the IPv6
// dispatch chain with its affinity rule, and the elements; every IPv6
// frontend (ClusterIP and the node's IPv6 address) is in affinity-vips-v6,
// keyed like vips-v6.
const wantAffinityV6 = `
add chain inet plexus-proxy affinity-30
add chain inet plexus-proxy dnat-v4-2
add chain inet plexus-proxy dnat-v6-2
add map inet plexus-proxy endpoints-v4-2 { typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport ; }
add map inet plexus-proxy endpoints-v6-2 { typeof ip6 daddr . meta l4proto . th dport . numgen random mod 2 : ip6 daddr . th dport ; }
add rule inet plexus-proxy affinity-30 meta l4proto tcp update @affinity-v4 { ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout 30s : ip daddr . th dport }
add rule inet plexus-proxy affinity-30 meta l4proto udp update @affinity-v4 { ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout 30s : ip daddr . th dport }
add rule inet plexus-proxy affinity-30 meta l4proto sctp update @affinity-v4 { ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout 30s : ip daddr . th dport }
add rule inet plexus-proxy affinity-30 ct mark 0 ct mark set jhash ip6 saddr . ip6 daddr . meta l4proto . th dport mod 4294967295 seed 0x1 . jhash ip6 saddr . ip6 daddr . meta l4proto . th dport mod 4294967295 seed 0x2 map @affinity-v6
add rule inet plexus-proxy affinity-30 meta nfproto ipv6 ct mark 0 ct mark set numgen random mod 16777216 offset 0x50000000
add rule inet plexus-proxy affinity-30 ct mark & 0xff000000 == 0x50000000 update @affinity-v6 { jhash ip6 saddr . ip6 daddr . meta l4proto . th dport mod 4294967295 seed 0x1 . jhash ip6 saddr . ip6 daddr . meta l4proto . th dport mod 4294967295 seed 0x2 timeout 30s : ct mark }
add rule inet plexus-proxy dnat-v4-2 fib saddr type local dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 offset 65536 map @endpoints-v4-2
add rule inet plexus-proxy dnat-v4-2 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @endpoints-v4-2
add rule inet plexus-proxy dnat-v6-2 fib saddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 offset 65536 map @endpoints-v6-2
add rule inet plexus-proxy dnat-v6-2 ct mark & 0xff000000 == 0x50000000 dnat ip6 to ip6 daddr . meta l4proto . th dport . jhash ct mark mod 2 map @endpoints-v6-2
add rule inet plexus-proxy dnat-v6-2 dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 2 map @endpoints-v6-2
add element inet plexus-proxy affinity-vips-v4 { 10.96.0.20 . tcp . 80 : jump affinity-30 }
add element inet plexus-proxy affinity-vips-v4 { 10.99.0.11 . tcp . 30080 : jump affinity-30 }
add element inet plexus-proxy affinity-vips-v6 { fd00:10:96::20 . tcp . 80 : jump affinity-30 }
add element inet plexus-proxy affinity-vips-v6 { fd10:99::11 . tcp . 30080 : jump affinity-30 }
add element inet plexus-proxy endpoints-v4-2 { 10.96.0.20 . tcp . 80 . 0 : 10.244.2.6 . 8080 }
add element inet plexus-proxy endpoints-v4-2 { 10.96.0.20 . tcp . 80 . 1 : 10.244.2.7 . 8080 }
add element inet plexus-proxy endpoints-v4-2 { 10.99.0.11 . tcp . 30080 . 0 : 10.244.2.6 . 8080 }
add element inet plexus-proxy endpoints-v4-2 { 10.99.0.11 . tcp . 30080 . 1 : 10.244.2.7 . 8080 }
add element inet plexus-proxy endpoints-v6-2 { fd00:10:96::20 . tcp . 80 . 0 : fd10:244:0:2::6 . 8080 }
add element inet plexus-proxy endpoints-v6-2 { fd00:10:96::20 . tcp . 80 . 1 : fd10:244:0:2::7 . 8080 }
add element inet plexus-proxy endpoints-v6-2 { fd10:99::11 . tcp . 30080 . 0 : fd10:244:0:2::6 . 8080 }
add element inet plexus-proxy endpoints-v6-2 { fd10:99::11 . tcp . 30080 . 1 : fd10:244:0:2::7 . 8080 }
add element inet plexus-proxy masquerade-v4 { 10.99.0.11 . tcp . 30080 }
add element inet plexus-proxy masquerade-v6 { fd10:99::11 . tcp . 30080 }
add element inet plexus-proxy vips-v4 { 10.96.0.20 . tcp . 80 : goto dnat-v4-2 }
add element inet plexus-proxy vips-v4 { 10.99.0.11 . tcp . 30080 : goto dnat-v4-2 }
add element inet plexus-proxy vips-v6 { fd00:10:96::20 . tcp . 80 : goto dnat-v6-2 }
add element inet plexus-proxy vips-v6 { fd10:99::11 . tcp . 30080 : goto dnat-v6-2 }
`

// TestExactRulesAffinityIPv6 compares what a dual-stack affinity Service
// adds to the table (the lines that are not in an empty model's table,
// stamp aside) with wantAffinityV6.
func TestExactRulesAffinityIPv6(t *testing.T) {
	empty := knftables.NewFake(TableFamily, TableName)
	syncFake(t, New(empty), (&world{}).model())
	base := map[string]bool{}
	for _, l := range strings.Split(sortedDump(empty), "\n") {
		base[l] = true
	}
	fake := knftables.NewFake(TableFamily, TableName)
	syncFake(t, New(fake), dualStackAffinity().model())
	var added []string
	for _, l := range strings.Split(sortedDump(fake), "\n") {
		if !base[l] && !strings.Contains(l, setStamp) {
			added = append(added, l)
		}
	}
	if got, want := strings.Join(added, "\n"), strings.TrimSpace(wantAffinityV6); got != want {
		t.Errorf("added lines differ; first difference:\n%s", golden.FirstDiff(got, want))
	}
}
