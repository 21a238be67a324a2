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
// connect (SYN, SYN-ACK, ACK through the node), as a median over b.N.
//
// The policy cost is measured paired, because connect times on a shared
// machine drift by more between runs than the cost itself: every iteration
// also connects to c/w on the same node, which no policy selects (its
// packets cross the same table and miss the isolated-pod maps), in
// alternating order, and added-µs is the median of the per-iteration
// differences x − w. With no policy it shows the pairing's own zero.
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
			selected := netip.AddrPortFrom(klabAddrs["a/x"][0], 80).String()
			unselected := netip.AddrPortFrom(klabAddrs["c/w"][0], 80).String()
			xs := make([]time.Duration, 0, b.N)
			ws := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			// Every dial runs on one thread inside a/y's namespace.
			err := l.ns["a/y"].Do(func() error {
				for i := 0; i < b.N; i++ {
					first, second := selected, unselected
					if i%2 == 1 {
						first, second = unselected, selected
					}
					d1, err := timedConnect(first)
					if err != nil {
						return fmt.Errorf("connect %d to %s: %w", i, first, err)
					}
					d2, err := timedConnect(second)
					if err != nil {
						return fmt.Errorf("connect %d to %s: %w", i, second, err)
					}
					if i%2 == 1 {
						d1, d2 = d2, d1
					}
					xs, ws = append(xs, d1), append(ws, d2)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			diffs := make([]time.Duration, len(xs))
			for i := range xs {
				diffs[i] = xs[i] - ws[i]
			}
			// Medians: a shared machine's stalls land in the mean.
			b.ReportMetric(medianMicros(xs), "median-µs/connect")
			b.ReportMetric(medianMicros(ws), "unselected-median-µs")
			b.ReportMetric(medianMicros(diffs), "added-µs")
		})
	}
}

// timedConnect opens and closes one TCP connection to dst and returns how
// long the connect took.
func timedConnect(dst string) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", dst, time.Second)
	if err != nil {
		return 0, err
	}
	d := time.Since(start)
	_ = c.Close()
	return d, nil
}

// medianMicros is the median of ds in microseconds (ds is sorted in place).
func medianMicros(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Nanoseconds()) / 1000
}
