package ipfamily_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

func TestOf(t *testing.T) {
	for _, c := range []struct {
		addr string
		want ipfamily.Family
	}{
		{"10.0.0.1", ipfamily.IPv4},
		{"::ffff:10.0.0.1", ipfamily.IPv4},
		{"fd00::1", ipfamily.IPv6},
		{"::1", ipfamily.IPv6},
	} {
		if got := ipfamily.Of(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Of(%s) = %s, want %s", c.addr, got, c.want)
		}
	}
	if got := ipfamily.OfPrefix(netip.MustParsePrefix("fd00::/8")); got != ipfamily.IPv6 {
		t.Errorf("OfPrefix(fd00::/8) = %s", got)
	}
	if ipfamily.IPv4.String() != "IPv4" || ipfamily.IPv6.String() != "IPv6" || ipfamily.Family(0).String() != "Family(0)" {
		t.Errorf("names: %s %s %s", ipfamily.IPv4, ipfamily.IPv6, ipfamily.Family(0))
	}
}

func TestFirst(t *testing.T) {
	addrs := []netip.Addr{{}, netip.MustParseAddr("fd00::1"), netip.MustParseAddr("::ffff:10.0.0.2"), netip.MustParseAddr("10.0.0.3")}
	if a, ok := ipfamily.First(addrs, ipfamily.IPv4); !ok || a != netip.MustParseAddr("10.0.0.2") {
		t.Errorf("First IPv4 = %s, %v; want the unmapped 10.0.0.2", a, ok)
	}
	if a, ok := ipfamily.First(addrs, ipfamily.IPv6); !ok || a != netip.MustParseAddr("fd00::1") {
		t.Errorf("First IPv6 = %s, %v", a, ok)
	}
	if _, ok := ipfamily.First(addrs[:2], ipfamily.IPv4); ok {
		t.Error("First IPv4 found one in a list without IPv4")
	}
}

func TestComparePrefixAndJoin(t *testing.T) {
	ps := []netip.Prefix{
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.0.0.0/16"),
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("9.0.0.0/8"),
	}
	slices.SortFunc(ps, ipfamily.ComparePrefix)
	if got, want := ipfamily.Join(ps), "9.0.0.0/8, 10.0.0.0/8, 10.0.0.0/16, fd00::/8"; got != want {
		t.Errorf("sorted: %s, want %s", got, want)
	}
	if got := ipfamily.Join(nil); got != "" {
		t.Errorf("Join(nil) = %q", got)
	}
}
