package cni

import (
	"errors"
	"net/netip"
	"testing"
)

func addrs(ss ...string) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, s := range ss {
		m[netip.MustParseAddr(s)] = true
	}
	return m
}

func TestNextFree(t *testing.T) {
	tests := []struct {
		name    string
		pool    string
		used    map[netip.Addr]bool
		after   string
		want    string
		wantErr bool
	}{
		{name: "empty pool starts after network address", pool: "10.244.1.0/24", want: "10.244.1.1"},
		{name: "skips used", pool: "10.244.1.0/24", used: addrs("10.244.1.1", "10.244.1.2"), want: "10.244.1.3"},
		{name: "rotates after last handed out", pool: "10.244.1.0/24", after: "10.244.1.7", want: "10.244.1.8"},
		{name: "does not reuse just-freed address", pool: "10.244.1.0/24", used: addrs("10.244.1.1"), after: "10.244.1.2", want: "10.244.1.3"},
		{name: "last address is usable (no broadcast for /32 pods)", pool: "10.244.1.0/24", after: "10.244.1.254", want: "10.244.1.255"},
		{name: "wraps to start, skipping network address", pool: "10.244.1.0/24", after: "10.244.1.255", want: "10.244.1.1"},
		{name: "wraps past used addresses", pool: "10.244.1.0/30", used: addrs("10.244.1.3", "10.244.1.1"), after: "10.244.1.2", want: "10.244.1.2"},
		{name: "after outside pool starts at beginning", pool: "10.244.1.0/24", after: "10.9.9.9", want: "10.244.1.1"},
		{name: "after of other family starts at beginning", pool: "10.244.1.0/24", after: "fd10::5", want: "10.244.1.1"},
		{name: "unmasked pool is masked", pool: "10.244.1.77/24", want: "10.244.1.1"},
		{name: "exhausted /30", pool: "10.244.1.0/30", used: addrs("10.244.1.1", "10.244.1.2", "10.244.1.3"), wantErr: true},
		{name: "/31 has one usable address", pool: "10.244.1.0/31", want: "10.244.1.1"},
		{name: "/32 has none", pool: "10.244.1.0/32", wantErr: true},
		{name: "ipv6 skips subnet-router anycast", pool: "fd10:244:0:1::/64", want: "fd10:244:0:1::1"},
		{name: "ipv6 rotates", pool: "fd10:244:0:1::/64", used: addrs("fd10:244:0:1::1"), after: "fd10:244:0:1::9", want: "fd10:244:0:1::a"},
		{name: "ipv6 wraps at end of pool", pool: "fd10:244:0:1::/126", after: "fd10:244:0:1::3", want: "fd10:244:0:1::1"},
		{name: "ipv6 last address of the whole space", pool: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124", after: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", want: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff1"},
		{name: "ipv4 last address of the whole space", pool: "255.255.255.252/30", after: "255.255.255.254", want: "255.255.255.255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var after netip.Addr
			if tt.after != "" {
				after = netip.MustParseAddr(tt.after)
			}
			got, err := NextFree(netip.MustParsePrefix(tt.pool), tt.used, after)
			if tt.wantErr {
				if !errors.Is(err, ErrPoolExhausted) {
					t.Fatalf("NextFree() = %v, %v; want ErrPoolExhausted", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NextFree() error: %v", err)
			}
			if got.String() != tt.want {
				t.Errorf("NextFree() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNextFreeExhaustedMessage(t *testing.T) {
	_, err := NextFree(netip.MustParsePrefix("10.244.9.0/30"), addrs("10.244.9.1", "10.244.9.2", "10.244.9.3"), netip.Addr{})
	want := "pool 10.244.9.0/30: all 3 usable addresses are allocated: no free address"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestNextFreeNeverReturnsUsedOrNetwork(t *testing.T) {
	pool := netip.MustParsePrefix("10.244.1.0/28")
	used := map[netip.Addr]bool{}
	var last netip.Addr
	for i := 0; i < 15; i++ {
		a, err := NextFree(pool, used, last)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if used[a] || a == pool.Addr() {
			t.Fatalf("allocation %d returned %s, which is used or the network address", i, a)
		}
		used[a], last = true, a
	}
	if _, err := NextFree(pool, used, last); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("16th allocation from a /28: err = %v, want ErrPoolExhausted", err)
	}
}

func TestUsableAddresses(t *testing.T) {
	for pool, want := range map[string]string{
		"10.244.1.0/24":      "255",
		"10.244.1.0/30":      "3",
		"10.244.1.0/32":      "0",
		"fd10:244:0:1::/64":  "18446744073709551615",
		"fd10:244:0:1::/120": "255",
	} {
		if got := UsableAddresses(netip.MustParsePrefix(pool)); got != want {
			t.Errorf("UsableAddresses(%s) = %s, want %s", pool, got, want)
		}
	}
}
