package nftables

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// startUDPNamed answers every datagram with name, on a random port of ns.
func startUDPNamed(t *testing.T, ns *testnet.Netns, name string) uint16 {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Do(func() (err error) { pc, err = net.ListenPacket("udp", ":0"); return err }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); wg.Wait() })
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// TestKernelUDPConntrackFlush: a UDP client that keeps one flow (same
// source port) to a Service follows the endpoint change at once, because
// the proxier flushes the conntrack entry of the removed endpoint; without
// that the flow would stay on the old endpoint while it is kept alive.
func TestKernelUDPConntrackFlush(t *testing.T) {
	l := newLab(t)
	p1, p2 := startUDPNamed(t, l.b1, "b1"), startUDPNamed(t, l.b2, "b2")
	udp := corev1.ProtocolUDP
	slice := func(name string, port uint16, ip netip.Addr, node string) *discoveryv1.EndpointSlice {
		return pt.Slice("ns", "dns", "dns-"+name, "p", udp, int32(port), pt.EP{IP: ip.String(), Node: node})
	}
	w := &world{}
	w.add(pt.Service("ns", "dns", []string{"10.96.0.53"}, pt.Port("p", udp, 53)), slice("b2", p2, b2IPs[0], "node2"))
	l.sync(t, w)

	var conn net.PacketConn
	if err := l.client.Do(func() (err error) { conn, err = net.ListenPacket("udp", "10.244.1.2:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	target := &net.UDPAddr{IP: net.ParseIP("10.96.0.53"), Port: 53}
	ask := func() string {
		buf := make([]byte, 64)
		_, _ = conn.WriteTo([]byte("?"), target)
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(buf[:n]))
	}
	// ask waits up to 300 ms for an answer, so no further interval is needed.
	if !testnet.Poll(settleBound, 0, func() bool { return ask() == "b2" }) {
		t.Fatalf("no answer from b2 through the Service")
	}
	w.slices = []*discoveryv1.EndpointSlice{slice("b1", p1, b1IPs[0], "node1")}
	l.sync(t, w)
	if errs := l.p.Stats().Errors; len(errs) > 0 {
		t.Fatalf("sync errors: %v", errs)
	}
	// The same flow (same source port) must reach b1 now; a few tries for
	// a lost datagram, not for timing.
	got := ""
	for i := 0; i < 5 && got == ""; i++ {
		got = ask()
	}
	if got != "b1" {
		t.Errorf("after moving the endpoint the flow answered %q, want b1 (conntrack entry of b2 flushed)", got)
	}
}
