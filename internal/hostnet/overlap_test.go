package hostnet

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestFindOverlap(t *testing.T) {
	machine := []machineEntry{
		{prefix: netip.MustParsePrefix("192.0.2.2/32"), what: "address 192.0.2.2/24 on eth0"},
		{prefix: netip.MustParsePrefix("192.0.2.0/24"), what: "route 192.0.2.0/24 dev eth0"},
		{prefix: netip.MustParsePrefix("fd00::/64"), what: "route fd00::/64 dev eth0"},
		{prefix: netip.MustParsePrefix("0.0.0.0/0"), what: "route default"},
		{prefix: netip.MustParsePrefix("::/0"), what: "route default"},
		{prefix: netip.MustParsePrefix("fe80::/64"), what: "route fe80::/64 dev eth0"},
		{prefix: netip.MustParsePrefix("10.50.0.0/16"), what: "route 10.50.0.0/16 via 192.0.2.9"},
	}
	tests := []struct {
		name    string
		test    []string
		wantErr string
	}{
		{name: "disjoint ranges", test: []string{"10.99.0.0/24", "fd10:99::/64", "10.244.0.0/16"}},
		{name: "inside the uplink subnet", test: []string{"192.0.2.0/28"}, wantErr: "192.0.2.0/28 overlaps address 192.0.2.2/24 on eth0"},
		{name: "covers the uplink", test: []string{"192.0.0.0/16"}, wantErr: "overlaps route 192.0.2.0/24 dev eth0"},
		{name: "ipv6 uplink", test: []string{"fd00::/48"}, wantErr: "overlaps route fd00::/64 dev eth0"},
		{name: "non-default route", test: []string{"10.50.3.0/24"}, wantErr: "10.50.3.0/24 overlaps route 10.50.0.0/16 via 192.0.2.9"},
		{name: "default and link-local are ignored", test: []string{"fe80::/64", "10.1.0.0/16"}},
		{name: "unmasked test range is masked", test: []string{"10.50.9.9/24"}, wantErr: "10.50.9.0/24 overlaps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []netip.Prefix
			for _, s := range tt.test {
				ps = append(ps, netip.MustParsePrefix(s))
			}
			err := findOverlap(ps, machine)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("expected an error containing %q, got none", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckNoOverlapOnThisMachine(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reads every routing table: run as root")
	}
	if err := CheckNoOverlap(netip.MustParsePrefix("10.99.0.0/24"), netip.MustParsePrefix("fd10:99::/64")); err != nil {
		t.Fatalf("the documented test ranges clash with this machine: %v", err)
	}
	err := CheckNoOverlap(netip.MustParsePrefix("192.0.2.0/24"))
	if err == nil {
		t.Skip("this machine has no address in 192.0.2.0/24; nothing to clash with")
	}
	if !strings.Contains(err.Error(), "192.0.2.0/24") {
		t.Fatalf("error does not name the clash: %v", err)
	}
}
