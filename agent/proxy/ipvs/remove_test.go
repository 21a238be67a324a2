package ipvs_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/ipvs/ipvsfake"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// nodeAddrs are the node addresses of the removal tests.
var nodeAddrs = []netip.Addr{ip("10.99.0.11"), ip("fd10:99::11")}

// programmed returns fakes holding the web Service with a NodePort (both
// families) and a foreign virtual server, as a syncer left them.
func programmed(t *testing.T) (*ipvs.Syncer, *ipvsfake.Fake, *ipvsfake.Binder, ipvs.VirtualServer) {
	t.Helper()
	s, f, b := newFakes()
	foreign := vs("172.17.0.1:443")
	if err := f.AddVirtualServer(foreign); err != nil {
		t.Fatal(err)
	}
	syncOK(t, s, ipvs.DesiredState(webService{nodePort: 30080, backends: []int{1, 2}}.model(nodeAddrs...), ipvs.Config{}))
	if !strings.Contains(f.Dump(), "10.99.0.11:30080") || !b.Exists() {
		t.Fatalf("not programmed: device %v\n%s", b.Exists(), f.Dump())
	}
	return s, f, b, foreign
}

// TestRemoveLeavesNothing: turning the mode off deletes the NodePort
// virtual servers, unbinds the virtual IPs and deletes the device, both
// from the syncer's memory and after an agent restart (a fresh syncer that
// reads the kernel); a foreign virtual server stays, and a second removal
// writes nothing.
func TestRemoveLeavesNothing(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "same syncer"
		if restart {
			name = "after a restart"
		}
		t.Run(name, func(t *testing.T) {
			s, f, b, foreign := programmed(t)
			if restart {
				s = ipvs.NewSyncer(f, b)
			}
			plan, err := s.Remove(nodeAddrs)
			if err != nil {
				t.Fatalf("remove: %v\n%s", err, plan)
			}
			if got := f.Dump(); got != foreign.String() {
				t.Errorf("IPVS after Remove:\n%s\nwant only the foreign %s", got, foreign)
			}
			if bound, _ := b.ListBound(); len(bound) != 0 || b.Exists() {
				t.Errorf("device exists %v with %v after Remove", b.Exists(), bound)
			}
			if !strings.HasSuffix(plan.String(), "- link plexus-ipvs0") {
				t.Errorf("plan does not end with the device:\n%s", plan)
			}
			f.ResetCalls()
			b.ResetCalls()
			for _, full := range []bool{false, true} {
				if full {
					s.RequestFullSync()
				}
				if plan, err := s.Remove(nodeAddrs); err != nil || !plan.Empty() {
					t.Errorf("second Remove (full %v): %v\n%s", full, err, plan)
				}
			}
			if calls := append(f.Calls(), b.Calls()...); len(calls) > 0 {
				t.Errorf("second Remove wrote: %q", calls)
			}
		})
	}
}

// TestRemoveNeedsNodeAddresses: after a restart, NodePort virtual servers
// are told apart from another tool's only by their node address; without
// it they would be left (what Remove's argument is for).
func TestRemoveNeedsNodeAddresses(t *testing.T) {
	_, f, b, _ := programmed(t)
	if _, err := ipvs.NewSyncer(f, b).Remove(nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Dump(), "10.99.0.11:30080") {
		t.Errorf("without node addresses the NodePort went too:\n%s", f.Dump())
	}
}

// TestRemovedUDPEndpointIsDeleted: the UDP flush rests on the kernel
// expiring the connections of a deleted real server (expire_nodest_conn);
// a quiesced one (weight 0) would keep its flows. So a removed UDP endpoint
// must be a DeleteRealServer, per virtual server, never an update.
func TestRemovedUDPEndpointIsDeleted(t *testing.T) {
	s, f, _ := newFakes()
	model := func(backends ...int) proxy.Model {
		svc := proxytest.Service("default", "dns", []string{"10.96.0.53"}, proxytest.NodePortPort("dns", corev1.ProtocolUDP, 53, 30053))
		svc.Spec.Type = corev1.ServiceTypeNodePort
		var eps []proxytest.EP
		for _, n := range backends {
			eps = append(eps, proxytest.EP{IP: backendIP(4, n).String(), Node: "vm"})
		}
		sl := proxytest.Slice("default", "dns", "dns-4", "dns", corev1.ProtocolUDP, backendPort, eps...)
		return proxy.Build([]*corev1.Service{svc}, []*discoveryv1.EndpointSlice{sl}, proxy.NodeInfo{Name: "vm", Addresses: nodeAddrs[:1]})
	}
	syncOK(t, s, ipvs.DesiredState(model(1, 2), ipvs.Config{}))
	f.ResetCalls()
	syncOK(t, s, ipvs.DesiredState(model(2), ipvs.Config{}))
	want := []string{
		"DeleteRealServer UDP 10.96.0.53:53 -> 10.244.1.2:8080",
		"DeleteRealServer UDP 10.99.0.11:30053 -> 10.244.1.2:8080",
	}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}
