package nftables

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

// BenchmarkKernelFirstPacket times TCP connects from a/y to a/x:80 on one
// node (each a new connection, so its SYN is evaluated): with no policy;
// with 1k policies of which 10 select a/x; and with 1k policies that all
// select a/x, the worst case: each allows another peer but the last, which
// allows a/y, so every policy chain is walked. The figure is the whole
// connect (SYN, SYN-ACK, ACK through the node), as a median over b.N; the
// difference to no policy (added-µs) is the policy cost.
func BenchmarkKernelFirstPacket(b *testing.B) {
	l := newKLab(b)
	for _, tc := range []struct{ policies, selecting int }{{0, 0}, {1000, 10}, {1000, 1000}} {
		var policies []*networkingv1.NetworkPolicy
		for i := 0; i < tc.policies; i++ {
			peer, sel := fmt.Sprintf("nobody%d", i), "x"
			if i == tc.policies-1 {
				peer = "y"
			}
			if i < tc.policies-tc.selecting {
				sel = "y" // isolates a/y's ingress: not on this path
			}
			// Names sort in creation order, so a/y's allow comes last.
			policies = append(policies, pt.NP("a", fmt.Sprintf("p%04d", i), sel, pt.IngressOnly,
				pt.IngressRules(pt.In(pt.Peers(pt.PodPeer(peer)), pt.Port("TCP", 80))), nil))
		}
		b.Run(fmt.Sprintf("policies=%d/selecting=%d", tc.policies, tc.selecting), func(b *testing.B) {
			l.sync(b, policy.Compile(l.input(policies...)))
			dst := netip.AddrPortFrom(klabAddrs["a/x"][0], 80).String()
			each := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			// Every dial runs on one thread inside a/y's namespace.
			err := l.ns["a/y"].Do(func() error {
				for i := 0; i < b.N; i++ {
					start := time.Now()
					c, err := net.DialTimeout("tcp", dst, time.Second)
					if err != nil {
						return fmt.Errorf("connect %d: %w", i, err)
					}
					each = append(each, time.Since(start))
					_ = c.Close()
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			// The median: a shared machine's stalls land in the mean.
			slices.Sort(each)
			median := float64(each[len(each)/2].Nanoseconds()) / 1000
			b.ReportMetric(median, "median-µs/connect")
			if tc.policies == 0 {
				firstPacketBase = median
			} else if firstPacketBase > 0 {
				b.ReportMetric(median-firstPacketBase, "added-µs")
			}
		})
	}
}

// firstPacketBase is the median connect without policies, which the
// cases with policies report their added latency against.
var firstPacketBase float64
