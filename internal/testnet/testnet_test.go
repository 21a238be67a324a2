package testnet

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

var (
	testUnderlayA4 = netip.MustParsePrefix("10.99.0.0/24")
	testUnderlayB4 = netip.MustParsePrefix("10.99.1.0/24")
	testUnderlayA6 = netip.MustParsePrefix("fd10:99::/64")
	testPods4      = netip.MustParsePrefix("10.244.0.0/16")
	testPods6      = netip.MustParsePrefix("fd10:244::/56")
)

// TestHarness builds two nodes on two underlay segments joined by the
// underlay router, plus a fake pod, and checks that TCP works end to end and
// that the echo server reports the real client address.
func TestHarness(t *testing.T) {
	RequireRoot(t)
	if err := CheckNoOverlap(testUnderlayA4, testUnderlayB4, testUnderlayA6, testPods4, testPods6); err != nil {
		t.Fatal(err)
	}
	var names []string
	t.Run("build and talk", func(t *testing.T) {
		ul := NewUnderlay(t)
		a := ul.AddSegment(t, "a", netip.MustParsePrefix("10.99.0.1/24"), netip.MustParsePrefix("fd10:99::1/64"))
		b := ul.AddSegment(t, "b", netip.MustParsePrefix("10.99.1.1/24"))
		n1, n2 := NewNetns(t, "n1"), NewNetns(t, "n2")
		a.Attach(t, n1, "eth0", netip.MustParsePrefix("10.99.0.11/24"), netip.MustParsePrefix("fd10:99::11/64"))
		b.Attach(t, n2, "eth0", netip.MustParsePrefix("10.99.1.12/24"))
		n1.EnableForwarding(t)
		pod := AddFakePod(t, n1, "p1", "vethp1", netip.MustParseAddr("10.244.1.5"), netip.MustParseAddr("fd10:244:0:1::5"))
		names = append(names, ul.NS.Name(), n1.Name(), n2.Name(), pod.Name())

		srv := StartEchoServer(t, n2)
		peer := EchoEventually(t, n1, netip.AddrPortFrom(netip.MustParseAddr("10.99.1.12"), srv.Port()), 5*time.Second)
		if want := netip.MustParseAddr("10.99.0.11"); peer != want {
			t.Errorf("server saw %s, want %s", peer, want)
		}
		// The pod reaches its node over the routed veth in both families.
		nsrv := StartEchoServer(t, n1)
		for _, target := range []string{"10.99.0.11", "fd10:99::11"} {
			peer := EchoEventually(t, pod, netip.AddrPortFrom(netip.MustParseAddr(target), nsrv.Port()), 5*time.Second)
			if !strings.HasPrefix(peer.String(), "10.244.1.5") && !strings.HasPrefix(peer.String(), "fd10:244:0:1::5") {
				t.Errorf("node saw the pod as %s", peer)
			}
		}
		if out := n1.Exec(t, "ip", "-br", "link"); !strings.Contains(out, "vethp1") {
			t.Errorf("Exec does not run inside the namespace: %s", out)
		}
		if _, err := os.Stat(n1.Path()); err != nil {
			t.Errorf("Path: %v", err)
		}
	})
	for _, n := range names {
		if _, err := os.Stat(netnsDir + "/" + n); !os.IsNotExist(err) {
			t.Errorf("namespace %s survived its test (stat: %v)", n, err)
		}
	}
}

func TestPidFromName(t *testing.T) {
	name := newNetnsName("node1")
	pid, ok := pidFromName(name)
	if !ok || pid != os.Getpid() {
		t.Fatalf("pidFromName(%q) = %d, %v; want %d", name, pid, ok, os.Getpid())
	}
	if _, ok := pidFromName("other-ns"); ok {
		t.Fatal("foreign namespace name parsed as ours")
	}
}
