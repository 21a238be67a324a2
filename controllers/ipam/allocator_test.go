package ipam

import (
	"errors"
	"net/netip"
	"testing"
)

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, v := range s {
		out[i] = netip.MustParsePrefix(v)
	}
	return out
}

func TestAllocateInOrderPerFamily(t *testing.T) {
	a, err := New(prefixes("10.244.0.0/22", "fd00:10:244::/62"), 24, 64)
	if err != nil {
		t.Fatal(err)
	}
	want4 := []string{"10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"}
	for _, w := range want4 {
		got, err := a.Allocate(IPv4)
		if err != nil || got.String() != w {
			t.Fatalf("Allocate(IPv4) = %v, %v; want %s", got, err, w)
		}
	}
	if _, err := a.Allocate(IPv4); !errors.Is(err, ErrExhausted) {
		t.Fatalf("fifth IPv4 allocation from a /22 in /24s: err = %v, want ErrExhausted", err)
	}
	got, err := a.Allocate(IPv6)
	if err != nil || got.String() != "fd00:10:244::/64" {
		t.Fatalf("Allocate(IPv6) = %v, %v", got, err)
	}
	got, _ = a.Allocate(IPv6)
	if got.String() != "fd00:10:244:1::/64" {
		t.Fatalf("second IPv6 = %v", got)
	}
}

func TestAllocateSpillsToNextPoolAndNoFamily(t *testing.T) {
	a, _ := New(prefixes("10.0.0.0/24", "10.1.0.0/24"), 25, 64)
	var got []string
	for i := 0; i < 4; i++ {
		p, err := a.Allocate(IPv4)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.String())
	}
	want := []string{"10.0.0.0/25", "10.0.0.128/25", "10.1.0.0/25", "10.1.0.128/25"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocations = %v, want %v", got, want)
		}
	}
	if _, err := a.Allocate(IPv6); err == nil || errors.Is(err, ErrExhausted) {
		t.Fatalf("IPv6 with no IPv6 pool: err = %v, want a 'not configured' error", err)
	}
}

func TestReserveRejectsConflictsAndForeignCIDRs(t *testing.T) {
	a, _ := New(prefixes("10.244.0.0/16"), 24, 64)
	cases := []struct {
		cidr    string
		wantErr bool
	}{
		{"10.244.5.0/24", false},
		{"10.244.5.0/24", true}, // taken twice
		{"10.245.0.0/24", true}, // outside
		{"10.244.6.0/25", true}, // wrong size
		{"fd00::/64", true},     // other family
		{"10.244.255.0/24", false},
	}
	for _, c := range cases {
		err := a.Reserve(netip.MustParsePrefix(c.cidr))
		if (err != nil) != c.wantErr {
			t.Errorf("Reserve(%s) err = %v, wantErr %v", c.cidr, err, c.wantErr)
		}
	}
	// Allocation skips reserved subnets.
	for i := 0; i < 5; i++ {
		a.Allocate(IPv4)
	}
	p, _ := a.Allocate(IPv4)
	if p.String() != "10.244.6.0/24" {
		t.Fatalf("after reserving .5 and allocating .0-.4, next = %s, want 10.244.6.0/24", p)
	}
}

func TestNewRejectsBadMasks(t *testing.T) {
	for _, c := range []struct {
		cidr string
		m4   int
		m6   int
	}{
		{"10.0.0.0/16", 8, 64},  // mask shorter than the pool
		{"10.0.0.0/8", 25, 64},  // 17 bits: too many nodes
		{"fd00::/32", 24, 64},   // 32 bits
		{"10.0.0.0/30", 33, 64}, // beyond the address
	} {
		if _, err := New(prefixes(c.cidr), c.m4, c.m6); err == nil {
			t.Errorf("New(%s, %d, %d) accepted", c.cidr, c.m4, c.m6)
		}
	}
}

func TestSubnetIndexRoundTrip(t *testing.T) {
	for _, c := range []struct {
		pool string
		mask int
	}{{"10.240.0.0/12", 24}, {"fd00:10:244::/48", 64}, {"10.0.0.0/8", 24}} {
		pool := netip.MustParsePrefix(c.pool)
		n := subnetCount(pool, c.mask)
		for _, i := range []int{0, 1, n / 2, n - 1} {
			sub := nthSubnet(pool, c.mask, i)
			j, err := subnetIndex(pool, c.mask, sub)
			if err != nil || j != i {
				t.Fatalf("%s /%d: index(nth(%d)=%s) = %d, %v", c.pool, c.mask, i, sub, j, err)
			}
		}
	}
}
