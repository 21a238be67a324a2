package ipvs_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/healthcheck"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
)

// guestBackend is the agent's IPVS backend (agent/proxy/manager) on the guest's
// real kernel, wired as the agent wires it: real IPVS and dummy device,
// the mode's nftables table through real nft, ipvs.SetSysctls, and health
// check servers listening in the guest's root namespace.
type guestBackend struct {
	*manager.IPVS
	node proxy.NodeInfo
	nft  knftables.Interface
}

// openBackend returns a fresh backend (a fresh one is an agent restart).
// The test removes what it programmed and closes its sockets.
func openBackend(t *testing.T, topo *guestTopo) *guestBackend {
	t.Helper()
	nft, err := nfttable.Open(ipvs.NFTFamily, ipvs.NFTTable)
	if err != nil {
		t.Fatal(err)
	}
	hc := healthcheck.New(nil)
	var (
		kernel *ipvs.Kernel
		binder *ipvs.DummyBinder
	)
	open := func() (ipvs.Interface, ipvs.Binder, error) {
		k, b, err := manager.KernelIPVS("", func() (ipvs.Binder, error) {
			return ipvs.NewDummyBinder(netns.None(), ipvs.DummyDevice)
		})()
		if err == nil {
			kernel, binder = k.(*ipvs.Kernel), b.(*ipvs.DummyBinder)
		}
		return k, b, err
	}
	b := &guestBackend{
		IPVS: manager.NewIPVS(open, nft, manager.WithHealthChecker(hc), manager.WithSysctls(ipvs.SetSysctls)),
		node: proxy.NodeInfo{Name: "vm", Addresses: topo.nodeIPs},
		nft:  nft,
	}
	b.Errors = func(err error) { t.Errorf("backend: %v", err) }
	t.Cleanup(func() {
		if _, err := b.Remove(context.Background(), b.node); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = hc.Close()
		if kernel != nil {
			kernel.Close()
			binder.Close()
		}
	})
	return b
}

// sync programs m and fails the test on error.
func (b *guestBackend) sync(t *testing.T, m proxy.Model) {
	t.Helper()
	if _, err := b.Sync(context.Background(), m, manager.Config{PodCIDRs: podCIDRs.PodCIDRs}); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// remove turns the mode off and fails the test on error.
func (b *guestBackend) remove(t *testing.T) {
	t.Helper()
	if _, err := b.Remove(context.Background(), b.node); err != nil {
		t.Fatalf("remove: %v", err)
	}
}

// lbModel is "lb": a dual-stack LoadBalancer Service with eTP Local,
// NodePort 30180 and health check node port 32180, whose one endpoint
// (backend 1) runs on node "vm" when local, else on another node.
func lbModel(local bool, nodeIPs []netip.Addr) proxy.Model {
	svc := proxytest.Service("default", "lb", []string{"10.96.0.30", "fd10:96::30"}, proxytest.NodePortPort("http", corev1.ProtocolTCP, 80, 30180))
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	svc.Spec.HealthCheckNodePort = 32180
	node := "other"
	if local {
		node = "vm"
	}
	sl := []*discoveryv1.EndpointSlice{
		proxytest.Slice("default", "lb", "lb-4", "http", corev1.ProtocolTCP, backendPort, proxytest.EP{IP: backendIP(4, 1).String(), Node: node}),
		proxytest.Slice("default", "lb", "lb-6", "http", corev1.ProtocolTCP, backendPort, proxytest.EP{IP: backendIP(6, 1).String(), Node: node}),
	}
	return proxy.Build([]*corev1.Service{svc}, sl, proxy.NodeInfo{Name: "vm", Addresses: nodeIPs})
}

// TestGuestHealthCheck: in IPVS mode (virtual servers, the nftables table)
// the eTP Local health check node port answers a client on both node
// addresses: 200 with a local endpoint, 503 without one; once the mode is
// turned off nothing listens there any more.
func TestGuestHealthCheck(t *testing.T) {
	requireGuest(t)
	topo := guestTopology(t)
	b := openBackend(t, topo)
	k, _ := openKernel(t)
	var hcPorts, nodePorts []netip.AddrPort
	for _, a := range topo.nodeIPs {
		hcPorts = append(hcPorts, netip.AddrPortFrom(a, 32180))
		nodePorts = append(nodePorts, netip.AddrPortFrom(a, 30180))
	}
	check := func(wantCode, wantLocal int) {
		t.Helper()
		for _, target := range hcPorts {
			got, err := topo.client.getHealth(target)
			if err != nil || got.code != wantCode || got.localEndpoints != wantLocal {
				t.Errorf("health check %s: %+v (%v), want %d with %d local endpoints", target, got, err, wantCode, wantLocal)
			}
		}
	}

	b.sync(t, lbModel(true, topo.nodeIPs))
	listed, err := k.ListVirtualServers()
	if err != nil || !slices.ContainsFunc(listed, func(v ipvs.VirtualServer) bool { return v.Address == topo.nodeIPs[0] && v.Port == 30180 }) {
		t.Fatalf("no NodePort virtual server: %v (%v)", listed, err)
	}
	for _, np := range nodePorts {
		if name, _, err := topo.client.hit(np); err != nil || name != "b1" {
			t.Errorf("NodePort %s: %q, %v; want b1", np, name, err)
		}
	}
	check(200, 1)

	b.sync(t, lbModel(false, topo.nodeIPs))
	check(503, 0)

	b.remove(t)
	for _, target := range hcPorts {
		if _, err := topo.client.getHealth(target); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("health check %s after the mode was turned off: %v, want connection refused", target, err)
		}
	}
}

// readSysctl reads a sysctl in the calling thread's network namespace.
func readSysctl(key string) (string, error) {
	v, err := os.ReadFile(filepath.Join("/proc/sys", key))
	return strings.TrimSpace(string(v)), err
}

// TestGuestSysctls: the backend writes ipvs.Sysctls (arp_ignore=1,
// arp_announce=2, the IPVS conntrack and expiry settings) when it starts,
// in the namespace of the thread that writes them only: the agent writes
// them on a thread in its data plane's namespace (--netns).
func TestGuestSysctls(t *testing.T) {
	requireGuest(t)
	topo := guestTopology(t)
	for k := range ipvs.Sysctls {
		sysctl(t, k, "0")
	}
	// Leave the values the other tests' backends set, also on failure.
	t.Cleanup(func() {
		if err := ipvs.SetSysctls(); err != nil {
			t.Error(err)
		}
	})

	// A fresh namespace (IPv4 conf/all values come from the root one).
	other := newGuestNS(t, "sysctls")
	t.Cleanup(func() { other.nl.Close(); other.h.Close() })
	if err := other.do(ipvs.SetSysctls); err != nil {
		t.Fatal(err)
	}
	for k, want := range ipvs.Sysctls {
		var got string
		if err := other.do(func() (err error) { got, err = readSysctl(k); return err }); err != nil || got != want {
			t.Errorf("%s in the namespace written: %q (%v), want %q", k, got, err, want)
		}
		if got, err := readSysctl(k); err != nil || got != "0" {
			t.Errorf("%s in the root namespace: %q (%v), want it untouched (0)", k, got, err)
		}
	}

	b := openBackend(t, topo)
	b.sync(t, webService{backends: []int{1}}.model(topo.nodeIPs...))
	for k, want := range ipvs.Sysctls {
		if got, err := readSysctl(k); err != nil || got != want {
			t.Errorf("%s after the backend started: %q (%v), want %q", k, got, err, want)
		}
	}
}

// TestGuestRemove: turning the mode off (the switch to nftables) leaves
// nothing: no virtual server of Plexus's (NodePorts included), no dummy
// device, no nftables table, and the NodePort refuses; a foreign virtual
// server stays. Shown for the backend that programmed it, then, after the
// mode came back on, for a fresh backend (an agent restarted in nftables
// mode), which knows only the node's addresses.
func TestGuestRemove(t *testing.T) {
	requireGuest(t)
	ctx := context.Background()
	topo := guestTopology(t)
	k, binder := openKernel(t)
	foreign := vs("198.51.100.50:443")
	if err := k.AddVirtualServer(foreign); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.DeleteVirtualServer(foreign.Key()) })
	nodePort := netip.AddrPortFrom(topo.nodeIPs[0], 30080)
	web := webService{nodePort: 30080, backends: []int{1, 2}}

	on := func(b *guestBackend) {
		t.Helper()
		b.sync(t, web.model(topo.nodeIPs...))
		if name, _, err := topo.client.hit(nodePort); err != nil {
			t.Fatalf("NodePort %s with the mode on: %q, %v", nodePort, name, err)
		}
		if exists, err := binder.DeviceExists(); err != nil || !exists {
			t.Fatalf("no %s with the mode on (%v)", ipvs.DummyDevice, err)
		}
	}
	leftNothing := func(b *guestBackend) {
		t.Helper()
		if listed, err := k.ListVirtualServers(); err != nil || !slices.Equal(listed, []ipvs.VirtualServer{foreign}) {
			t.Errorf("virtual servers %v (%v), want only the foreign %s", listed, err, foreign)
		}
		if exists, err := binder.DeviceExists(); err != nil || exists {
			t.Errorf("%s exists %v (%v), want it gone", ipvs.DummyDevice, exists, err)
		}
		if _, err := b.nft.List(ctx, "chains"); !knftables.IsNotFound(err) {
			t.Errorf("table %s: %v, want not found", ipvs.NFTTable, err)
		}
		if _, _, err := topo.client.hit(nodePort); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("NodePort %s with the mode off: %v, want connection refused", nodePort, err)
		}
	}

	first := openBackend(t, topo)
	on(first)
	first.remove(t)
	leftNothing(first)

	on(first)
	restarted := openBackend(t, topo)
	restarted.remove(t)
	leftNothing(restarted)
}
