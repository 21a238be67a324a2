package routing_test

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/internal/golden"
)

var (
	ip     = netip.MustParseAddr
	prefix = netip.MustParsePrefix
)

// node1 is the local node of the unit tests: dual-stack, on 10.99.0.0/24
// and fd10:99::/64, uplink eth0 with MTU 1500.
func node1() routing.LocalNode {
	return routing.LocalNode{
		Name:     "node1",
		NodeIPs:  []netip.Addr{ip("10.99.0.11"), ip("fd10:99::11")},
		PodCIDRs: []netip.Prefix{prefix("10.244.1.0/24"), prefix("fd10:244:0:1::/64")},
		Uplink: routing.Uplink{Name: "eth0", MTU: 1500,
			Subnets: []netip.Prefix{prefix("10.99.0.11/24"), prefix("fd10:99::11/64")}},
	}
}

// node2 shares node1's L2 subnet; node3 is behind a router.
func node2() routing.Peer {
	return routing.Peer{Name: "node2", NodeIPs: []netip.Addr{ip("10.99.0.12"), ip("fd10:99::12")},
		PodCIDRs: []netip.Prefix{prefix("10.244.2.0/24"), prefix("fd10:244:0:2::/64")}}
}

func node3() routing.Peer {
	return routing.Peer{Name: "node3", NodeIPs: []netip.Addr{ip("10.99.1.13"), ip("fd10:99:1::13")},
		PodCIDRs: []netip.Prefix{prefix("10.244.3.0/24"), prefix("fd10:244:0:3::/64")}}
}

func config(mode routing.Mode, peers ...routing.Peer) routing.Config {
	return routing.Config{Mode: mode, Local: node1(), Peers: peers}
}

var (
	macRef = regexp.MustCompile(`\{mac (\S+)\}`)
	llRef  = regexp.MustCompile(`\{ll (\S+)\}`)
)

// expand replaces "{mac <ip>}" with routing.VTEPMAC(ip) and "{ll <ip>}"
// with the link-local VTEP address of that MAC, trims each line and drops
// empty ones, so expected dumps can be written readably.
func expand(t *testing.T, text string) string {
	t.Helper()
	text = macRef.ReplaceAllStringFunc(text, func(m string) string {
		return routing.VTEPMAC(ip(macRef.FindStringSubmatch(m)[1])).String()
	})
	text = llRef.ReplaceAllStringFunc(text, func(m string) string {
		return routing.VTEPLinkLocal(routing.VTEPMAC(ip(llRef.FindStringSubmatch(m)[1]))).String()
	})
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// diffLines reports the first differing line of two dumps, with the whole of got.
func diffLines(got, want string) string {
	if d := golden.FirstDiff(got, want); d != "" {
		return d + "\n\nfull got:\n" + got
	}
	return ""
}

func itoa(i int) string { return fmt.Sprint(i) }

func fmtPrefixes(ps []netip.Prefix) string { return fmt.Sprint(ps) }
