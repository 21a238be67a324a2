package masquerade

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

var prefix = netip.MustParsePrefix

func testConfig() Config {
	return Config{
		PodCIDRs:     []netip.Prefix{prefix("10.244.0.0/16"), prefix("fd10:244::/56")},
		ServiceCIDRs: []netip.Prefix{prefix("10.96.0.0/12"), prefix("fd10:96::/112")},
	}
}

const wantDump = `
add table inet plexus-masq { comment "Plexus: masquerade pod traffic leaving the cluster" ; }
add chain inet plexus-masq postrouting { type nat hook postrouting priority 100 ; }
add set inet plexus-masq cluster-cidrs-v4 { type ipv4_addr ; flags interval ; }
add set inet plexus-masq cluster-cidrs-v6 { type ipv6_addr ; flags interval ; }
add set inet plexus-masq pod-cidrs-v4 { type ipv4_addr ; flags interval ; }
add set inet plexus-masq pod-cidrs-v6 { type ipv6_addr ; flags interval ; }
add rule inet plexus-masq postrouting ip saddr @pod-cidrs-v4 ip daddr != @cluster-cidrs-v4 masquerade fully-random comment "IPv4 pods leaving the cluster (v1)"
add rule inet plexus-masq postrouting ip6 saddr @pod-cidrs-v6 ip6 daddr != @cluster-cidrs-v6 masquerade fully-random comment "IPv6 pods leaving the cluster (v1)"
add element inet plexus-masq cluster-cidrs-v4 { 10.96.0.0/12 }
add element inet plexus-masq cluster-cidrs-v4 { 10.244.0.0/16 }
add element inet plexus-masq cluster-cidrs-v6 { fd10:96::/112 }
add element inet plexus-masq cluster-cidrs-v6 { fd10:244::/56 }
add element inet plexus-masq pod-cidrs-v4 { 10.244.0.0/16 }
add element inet plexus-masq pod-cidrs-v6 { fd10:244::/56 }
`

// TestSyncWritesTheTable compares the exact table: pods masqueraded only
// towards destinations outside the pod and service CIDRs, per family.
func TestSyncWritesTheTable(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	changed, err := New(fake).Sync(context.Background(), testConfig())
	if err != nil || !changed {
		t.Fatalf("first sync: changed %t, err %v", changed, err)
	}
	if got, want := strings.TrimSpace(fake.Dump()), strings.TrimSpace(wantDump); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

// TestNoOpResyncWritesNothing: a resync of an unchanged config runs no
// transaction, also from a fresh Masquerader (an agent restart).
func TestNoOpResyncWritesNothing(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	if _, err := New(fake).Sync(context.Background(), testConfig()); err != nil {
		t.Fatal(err)
	}
	fake.LastTransaction = nil
	changed, err := New(fake).Sync(context.Background(), testConfig())
	if err != nil || changed || fake.LastTransaction != nil {
		t.Fatalf("no-op resync: changed %t, err %v, transaction:\n%v", changed, err, fake.LastTransaction)
	}
}

// TestChangedRangesRewriteOnlyTheirSets: a new service CIDR flushes and
// refills only the sets it is in, in one transaction.
func TestChangedRangesRewriteOnlyTheirSets(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	m := New(fake)
	if _, err := m.Sync(context.Background(), testConfig()); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.ServiceCIDRs = append(cfg.ServiceCIDRs, prefix("10.97.0.0/16"), prefix("10.120.0.0/16"))
	fake.LastTransaction = nil
	if _, err := m.Sync(context.Background(), cfg); err != nil || fake.LastTransaction == nil {
		t.Fatalf("sync with a new service CIDR: err %v, transaction %v", err, fake.LastTransaction)
	}
	want := `flush set inet plexus-masq cluster-cidrs-v4
add element inet plexus-masq cluster-cidrs-v4 { 10.96.0.0/12 }
add element inet plexus-masq cluster-cidrs-v4 { 10.120.0.0/16 }
add element inet plexus-masq cluster-cidrs-v4 { 10.244.0.0/16 }`
	if got := strings.TrimSpace(fake.LastTransaction.String()); got != want {
		t.Errorf("transaction:\n%s\nwant (10.97.0.0/16 lies inside 10.96.0.0/12):\n%s", got, want)
	}
}

// TestForeignChangesAreRepaired: a deleted rule or an extra set makes the
// next sync rebuild the table exactly.
func TestForeignChangesAreRepaired(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(*knftables.Fake)
	}{
		{"rule deleted", func(f *knftables.Fake) {
			f.Table.Chains[chainPostrouting].Rules = f.Table.Chains[chainPostrouting].Rules[:1]
		}},
		{"extra set", func(f *knftables.Fake) {
			tx := f.NewTransaction()
			tx.Add(&knftables.Set{Name: "stray", Type: "ipv4_addr"})
			if err := f.Run(context.Background(), tx); err != nil {
				panic(err)
			}
		}},
		{"table deleted", func(f *knftables.Fake) {
			tx := f.NewTransaction()
			tx.Delete(&knftables.Table{})
			if err := f.Run(context.Background(), tx); err != nil {
				panic(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := knftables.NewFake(TableFamily, TableName)
			m := New(fake)
			if _, err := m.Sync(context.Background(), testConfig()); err != nil {
				t.Fatal(err)
			}
			tc.tamper(fake)
			if changed, err := m.Sync(context.Background(), testConfig()); err != nil || !changed {
				t.Fatalf("repair: changed %t, err %v", changed, err)
			}
			if got, want := strings.TrimSpace(fake.Dump()), strings.TrimSpace(wantDump); got != want {
				t.Errorf("repaired table:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	fake := knftables.NewFake(TableFamily, TableName)
	m := New(fake)
	if err := m.Remove(context.Background()); err != nil || fake.LastTransaction != nil {
		t.Fatalf("removing a missing table: err %v, transaction %v", err, fake.LastTransaction)
	}
	if _, err := m.Sync(context.Background(), testConfig()); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := fake.Dump(); d != "" {
		t.Errorf("table left after Remove:\n%s", d)
	}
}

func TestElementsCollapseAndSplitFamilies(t *testing.T) {
	in := []netip.Prefix{prefix("10.0.0.0/8"), prefix("10.244.0.0/16"), prefix("fd10::/48"), prefix("10.0.0.0/8"), prefix("192.168.1.7/24")}
	if got := strings.Join(elements(in, true), " "); got != "10.0.0.0/8 192.168.1.0/24" {
		t.Errorf("IPv4 elements: %s", got)
	}
	if got := strings.Join(elements(in, false), " "); got != "fd10::/48" {
		t.Errorf("IPv6 elements: %s", got)
	}
}
