package ipvs_test

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
)

const (
	// flowAnswerTimeout is how long one datagram of a flow waits for its
	// answer before it is sent again.
	flowAnswerTimeout = time.Second
	// flowTries bounds the datagrams sent after an endpoint was removed:
	// the kernel expires the flow's IPVS connection from a work queued by
	// the deletion, and the one datagram that may race it is dropped.
	flowTries = 4
)

// flowModel is "flow": a dual-stack UDP Service, port 53 (NodePort 30053,
// eTP Cluster, so masqueraded) to port 8080 of the given backends.
func flowModel(nodeIPs []netip.Addr, backends ...int) proxy.Model {
	svc := proxytest.Service("default", "flow", []string{"10.96.0.54", "fd10:96::54"}, proxytest.NodePortPort("dns", corev1.ProtocolUDP, 53, 30053))
	svc.Spec.Type = corev1.ServiceTypeNodePort
	var eps4, eps6 []proxytest.EP
	for _, n := range backends {
		eps4 = append(eps4, proxytest.EP{IP: backendIP(4, n).String(), Node: "vm"})
		eps6 = append(eps6, proxytest.EP{IP: backendIP(6, n).String(), Node: "vm"})
	}
	sl := []*discoveryv1.EndpointSlice{
		proxytest.Slice("default", "flow", "flow-4", "dns", corev1.ProtocolUDP, backendPort, eps4...),
		proxytest.Slice("default", "flow", "flow-6", "dns", corev1.ProtocolUDP, backendPort, eps6...),
	}
	sl[1].AddressType = discoveryv1.AddressTypeIPv6
	return proxy.Build([]*corev1.Service{svc}, sl, proxy.NodeInfo{Name: "vm", Addresses: nodeIPs})
}

// openPinned opens a UDP flow from the client to vip and returns it with
// the backend that answers it (every datagram of the flow goes there).
func openPinned(t *testing.T, topo *guestTopo, vip netip.AddrPort) (*udpFlow, string) {
	t.Helper()
	f := topo.client.openFlow(t, vip)
	pinned := ""
	for i := range 3 {
		name, err := f.ask(dialTimeout)
		if err != nil {
			t.Fatalf("%s: datagram %d of a flow: %v", vip, i, err)
		}
		if pinned != "" && name != pinned {
			t.Fatalf("%s: one flow answered by %s and %s", vip, pinned, name)
		}
		pinned = name
	}
	return f, pinned
}

// askUntilAnswered sends datagrams of f until one is answered (at most
// flowTries) and returns who answered ("" for nobody) and after how many.
func askUntilAnswered(f *udpFlow) (string, int) {
	for try := 1; try <= flowTries; try++ {
		if name, err := f.ask(flowAnswerTimeout); err == nil {
			return name, try
		}
	}
	return "", flowTries
}

// TestGuestUDPFlowLeavesRemovedEndpoint: clients keep UDP sockets (flows)
// to a Service, through the ClusterIP and the masqueraded NodePort, both
// families, one flow on each backend per address (round robin); then b1's
// endpoint is removed. b1 receives none of the flows' later datagrams, and
// every flow, b1's too, is answered by b2 within a few datagrams. The control shows what the backend's expire_nodest_conn=1
// changes: without it IPVS keeps the flow on the deleted real server and
// drops its datagrams (for up to 5 minutes).
func TestGuestUDPFlowLeavesRemovedEndpoint(t *testing.T) {
	requireGuest(t)
	topo := guestTopology(t)
	b := openBackend(t, topo)
	b1 := topo.backends["b1"]
	vips := []netip.AddrPort{
		netip.MustParseAddrPort("10.96.0.54:53"), netip.MustParseAddrPort("[fd10:96::54]:53"),
		netip.AddrPortFrom(topo.nodeIPs[0], 30053), netip.AddrPortFrom(topo.nodeIPs[1], 30053),
	}
	type flow struct {
		vip    netip.AddrPort
		f      *udpFlow
		pinned string
	}

	b.sync(t, flowModel(topo.nodeIPs, 1, 2))
	var flows []flow
	for _, vip := range vips {
		got := map[string]bool{}
		for try := 0; len(got) < 2; try++ {
			if try == 6 {
				t.Fatalf("%s: %d flows, all on %v", vip, try, got)
			}
			f, pinned := openPinned(t, topo, vip)
			if !got[pinned] {
				got[pinned] = true
				flows = append(flows, flow{vip, f, pinned})
			}
		}
	}

	b.sync(t, flowModel(topo.nodeIPs, 2))
	before := b1.udpReceived.Load()
	for _, fl := range flows {
		name, tries := askUntilAnswered(fl.f)
		if name != "b2" {
			t.Errorf("%s: a flow on %s answered by %q after b1 was removed, want b2", fl.vip, fl.pinned, name)
		} else {
			t.Logf("%s: %s's flow answered by b2 at datagram %d after the removal", fl.vip, fl.pinned, tries)
		}
	}
	if got := b1.udpReceived.Load() - before; got != 0 {
		t.Errorf("the removed b1 still received %d datagrams of the flows", got)
	}

	t.Run("control: without expire_nodest_conn the flow is black-holed", func(t *testing.T) {
		sysctl(t, "net/ipv4/vs/expire_nodest_conn", "0")
		t.Cleanup(func() { sysctl(t, "net/ipv4/vs/expire_nodest_conn", "1") })
		vip := vips[0]
		b.sync(t, flowModel(topo.nodeIPs, 1))
		f, pinned := openPinned(t, topo, vip)
		b.sync(t, flowModel(topo.nodeIPs, 2))
		before := b1.udpReceived.Load()
		if name, _ := askUntilAnswered(f); name != "" {
			t.Errorf("%s: %s's flow answered by %s; the control expects IPVS to drop it", vip, pinned, name)
		}
		if got := b1.udpReceived.Load() - before; got != 0 {
			t.Errorf("the removed b1 received %d datagrams", got)
		}
	})
}
