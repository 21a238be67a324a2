package ipvs_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"sigs.k8s.io/knftables"
)

var podCIDRs = ipvs.NFTConfig{PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd10:244::/32")}}

// TestNFTTable: the web Service as a NodePort (eTP Cluster) puts its node
// addresses in the masquerade sets, its ClusterIPs in the cluster sets and
// its endpoints in the hairpin sets; the rules mark and masquerade.
func TestNFTTable(t *testing.T) {
	fake := knftables.NewFake(ipvs.NFTFamily, ipvs.NFTTable)
	s := ipvs.NewNFTSyncer(fake)
	m := webService{nodePort: 30080, backends: []int{1, 2}}.model(ip("10.99.0.11"), ip("fd10:99::11"))
	if changed, err := s.Sync(context.Background(), m, podCIDRs); err != nil || !changed {
		t.Fatalf("first sync: changed %v, %v", changed, err)
	}
	dump := fake.Dump()
	for _, want := range []string{
		"add element inet plexus-ipvs masq-vips-v4 { 10.99.0.11 . 6 . 30080 }",
		"add element inet plexus-ipvs masq-vips-v6 { fd10:99::11 . 6 . 30080 }",
		"add element inet plexus-ipvs cluster-vips-v4 { 10.96.0.10 . 6 . 80 }",
		"add element inet plexus-ipvs cluster-vips-v6 { fd10:96::10 . 6 . 80 }",
		"add element inet plexus-ipvs hairpin-v4 { 10.244.1.2 . 10.244.1.2 }",
		"add element inet plexus-ipvs hairpin-v6 { fd10:244:2::2 . fd10:244:2::2 }",
		"add element inet plexus-ipvs pod-cidrs-v4 { 10.244.0.0/16 }",
		"add rule inet plexus-ipvs mark-prerouting ip daddr . meta l4proto . th dport @masq-vips-v4 meta mark set meta mark | 0x4000",
		"add rule inet plexus-ipvs mark-output ip6 daddr . meta l4proto . th dport @cluster-vips-v6 ip6 saddr != @pod-cidrs-v6 meta mark set meta mark | 0x4000",
		"add rule inet plexus-ipvs postrouting ip daddr . ip saddr @hairpin-v4 masquerade fully-random",
		"add rule inet plexus-ipvs postrouting meta mark & 0x4000 != 0 meta mark set meta mark ^ 0x4000 masquerade fully-random",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("table lacks %q:\n%s", want, dump)
		}
	}

	// eTP Local keeps the client's address: no masquerade set entry.
	local := webService{nodePort: 30080, backends: []int{1, 2}}.model(ip("10.99.0.11"))
	for _, sp := range local.Ports {
		sp.ExternalPolicyLocal = true
	}
	if _, err := s.Sync(context.Background(), local, podCIDRs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fake.Dump(), "masq-vips-v4 { 10.99.0.11") {
		t.Errorf("eTP Local node port is masqueraded:\n%s", fake.Dump())
	}

	// eTP Local with endpoints on other nodes only: the node port drops.
	remote := webService{nodePort: 30080, etpLocal: true, remote: true, backends: []int{1}}.model(ip("10.99.0.11"))
	if _, err := s.Sync(context.Background(), remote, podCIDRs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"add element inet plexus-ipvs drop-vips-v4 { 10.99.0.11 . 6 . 30080 }",
		"add rule inet plexus-ipvs drop-prerouting ip daddr . meta l4proto . th dport @drop-vips-v4 drop",
	} {
		if !strings.Contains(fake.Dump(), want) {
			t.Errorf("table lacks %q:\n%s", want, fake.Dump())
		}
	}
	if strings.Contains(fake.Dump(), "drop-vips-v4 { 10.96.0.10") {
		t.Errorf("the ClusterIP (cluster policy, remote endpoints) drops:\n%s", fake.Dump())
	}
}

// TestNFTNoOpSync: a second sync of the same model writes nothing.
func TestNFTNoOpSync(t *testing.T) {
	fake := knftables.NewFake(ipvs.NFTFamily, ipvs.NFTTable)
	s := ipvs.NewNFTSyncer(fake)
	m := webService{nodePort: 30080, backends: []int{1}}.model(ip("10.99.0.11"))
	if _, err := s.Sync(context.Background(), m, podCIDRs); err != nil {
		t.Fatal(err)
	}
	fake.LastTransaction = nil
	changed, err := s.Sync(context.Background(), m, podCIDRs)
	if err != nil || changed || fake.LastTransaction != nil {
		t.Errorf("second sync: changed %v, err %v, transaction %v", changed, err, fake.LastTransaction)
	}
	// One endpoint more: only the hairpin sets are rewritten.
	if _, err := s.Sync(context.Background(), webService{nodePort: 30080, backends: []int{1, 2}}.model(ip("10.99.0.11")), podCIDRs); err != nil {
		t.Fatal(err)
	}
	tx := fake.LastTransaction.String()
	if strings.Contains(tx, "add table") || !strings.Contains(tx, "flush set inet plexus-ipvs hairpin-v4") {
		t.Errorf("endpoint change rewrote more than the hairpin sets:\n%s", tx)
	}
}
