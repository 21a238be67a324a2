package nftables

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/policy"
	"github.com/plexus-net/plexus/agent/policy/conntrack"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

// cutBound is how long a cut connection is given to answer: the issue's
// bound for cutting.
const cutBound = time.Second

// TestKernelConntrackCut opens TCP connections and UDP flows from c/w to
// a/x in both families while a policy allows them, then removes the allow:
// by default the established flows stop answering as soon as the sync and
// the cut return; with keepEstablished they go on while new connections
// are refused.
func TestKernelConntrackCut(t *testing.T) {
	l := newKLab(t)
	allow := pt.NP("a", "web", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.NSPodPeer("", "w")), pt.Port("TCP", 80), pt.Port("UDP", 80))), nil)
	deny := pt.NP("a", "web", "x", pt.IngressOnly, nil, nil)
	for _, keep := range []bool{false, true} {
		name := map[bool]string{false: "cut by default", true: "kept when asked"}[keep]
		t.Run(name, func(t *testing.T) {
			prev := policy.Compile(l.input(allow))
			l.sync(t, prev)
			var conns []net.Conn
			for fam := 0; fam < 2; fam++ {
				for _, network := range []string{"tcp", "udp"} {
					c := l.dial(t, network, netip.AddrPortFrom(klabAddrs["a/x"][fam], 80))
					if !pingPong(c) {
						t.Fatalf("%s %s to a/x: no answer while allowed", network, c.RemoteAddr())
					}
					conns = append(conns, c)
				}
			}

			next := policy.Compile(l.input(deny))
			var cut uint
			err := l.ns["node1"].Do(func() error {
				if _, err := l.enf.Sync(t.Context(), next, false); err != nil {
					return err
				}
				var err error
				cut, err = conntrack.NewCutter(conntrack.Netlink{}, keep).Cut(prev, next)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range conns {
				if got := pingPong(c); got != keep {
					t.Errorf("%s %s after the allow was removed: answered=%v, want %v", c.LocalAddr().Network(), c.RemoteAddr(), got, keep)
				}
			}
			if !keep && cut < uint(len(conns)) {
				t.Errorf("%d conntrack entries cut, want at least %d", cut, len(conns))
			}
			// New connections meet the new rules either way.
			if probe(l.ns["c/w"], netip.AddrPortFrom(klabAddrs["a/x"][0], 80), policy.TCP) {
				t.Errorf("a new connection got through after the allow was removed")
			}
			for _, c := range conns {
				_ = c.Close()
			}
		})
	}
}

// dial connects from c/w; the connection stays usable from any thread.
func (l *klab) dial(t *testing.T, network string, dst netip.AddrPort) net.Conn {
	t.Helper()
	var c net.Conn
	if err := l.ns["c/w"].Do(func() (err error) { c, err = net.DialTimeout(network, dst.String(), probeTimeout); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// pingPong sends one line on c and reports whether the answer arrives
// within cutBound.
func pingPong(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(cutBound))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	return err == nil && string(buf[:n]) == "pong\n"
}
