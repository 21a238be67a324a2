package nftables

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/plexus-net/plexus/internal/testnet"
)

// TestKernelConntrackClearUDPSparesOtherEndpoints: ClearUDP deletes the
// UDP entries to a VIP that were DNATed to one endpoint and none DNATed to
// another, in both families. conntrack-tools' --dst-nat filter is ignored
// for IPv6 and deleted them all, cutting the in-flight lookups of the
// endpoints that stay.
func TestKernelConntrackClearUDPSparesOtherEndpoints(t *testing.T) {
	if _, err := exec.LookPath(conntrackCommand); err != nil {
		t.Skip("conntrack-tools not installed")
	}
	ns := testnet.NewNetns(t, "ct")
	for _, fam := range []struct {
		vip, gone, stays string
		nftFamily, bits  string
	}{
		{"10.99.77.10", "10.99.77.1", "10.99.77.2", "ip", "32"},
		{"fd00:99:77::a", "fd00:99:77::1", "fd00:99:77::2", "ip6", "128"},
	} {
		for _, a := range []string{fam.vip, fam.gone, fam.stays} {
			ns.Exec(t, "ip", "addr", "add", a+"/"+fam.bits, "dev", "lo")
		}
		// A packet from source port 40001 to the VIP is DNATed to gone,
		// from 40002 to stays: two entries per family, one per endpoint.
		ns.Exec(t, "nft", "add table inet ct-test")
		ns.Exec(t, "nft", "add chain inet ct-test out-"+fam.nftFamily+" { type nat hook output priority -100 ; }")
		for port, to := range map[string]string{"40001": fam.gone, "40002": fam.stays} {
			ns.Exec(t, "nft", "add rule inet ct-test out-"+fam.nftFamily+" "+fam.nftFamily+" daddr "+fam.vip+" udp sport "+port+" dnat "+fam.nftFamily+" to "+to)
		}
		for _, port := range []int{40001, 40002} {
			err := ns.Do(func() error {
				c, err := net.DialUDP("udp", &net.UDPAddr{Port: port}, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(fam.vip), 53)))
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write([]byte("q"))
				return err
			})
			if err != nil {
				t.Fatalf("send from port %d to %s: %v", port, fam.vip, err)
			}
		}
		err := ns.Do(func() error {
			return ExecConntrack{}.ClearUDP(context.Background(), netip.AddrPortFrom(netip.MustParseAddr(fam.vip), 53), netip.MustParseAddr(fam.gone))
		})
		if err != nil {
			t.Fatal(err)
		}
		left := ns.Exec(t, conntrackCommand, "-L", "-f", map[string]string{"ip": "ipv4", "ip6": "ipv6"}[fam.nftFamily], "-p", "udp", "--orig-dst", fam.vip)
		if strings.Contains(left, "sport=40001 ") || !strings.Contains(left, "sport=40002 ") {
			t.Errorf("%s: after clearing %s, entries left:\n%s\nwant only the one DNATed to %s (source port 40002)", fam.vip, fam.gone, left, fam.stays)
		}
		ns.Exec(t, "nft", "delete table inet ct-test")
	}
}
