package manager

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/ipvs/ipvsfake"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// addLB adds "lb": an eTP Local LoadBalancer Service with NodePort 30080 and health check node
// port 32080, with an endpoint on node-1 when local, else on node-2.
func (r *rig) addLB(local bool) {
	svc := proxytest.Service("default", "lb", []string{"10.96.0.30"}, proxytest.NodePortPort("http", corev1.ProtocolTCP, 80, 30080))
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	svc.Spec.HealthCheckNodePort = 32080
	node := "node-2"
	if local {
		node = "node-1"
	}
	r.feed.SetService(svc)
	r.feed.SetSlice(proxytest.Slice("default", "lb", "lb-1", "http", corev1.ProtocolTCP, 8080, proxytest.EP{IP: "10.244.0.7", Node: node}))
}

// syncOK syncs the rig's Manager and fails the test on error.
func (r *rig) syncOK(t *testing.T, mode v1.ServiceProxyMode, full bool) Result {
	t.Helper()
	res := r.m.Sync(context.Background(), desired(mode), full)
	if res.Err != nil {
		t.Fatalf("sync %s: %v", mode, res.Err)
	}
	return res
}

// TestIPVSHealthCheckServers: in IPVS mode the health check node port of an eTP Local Service is
// served with the node's local endpoint count (1, then 0 when the endpoint moves away), and
// switching to nftables stops the IPVS backend's servers.
func TestIPVSHealthCheckServers(t *testing.T) {
	r := newRig(true)
	r.addLB(true)
	r.syncOK(t, v1.ServiceProxyIPVS, true)
	if want := map[uint16]int{32080: 1}; !maps.Equal(r.hc.ports, want) {
		t.Errorf("served %v, want %v", r.hc.ports, want)
	}
	r.addLB(false)
	r.syncOK(t, v1.ServiceProxyIPVS, false)
	if want := map[uint16]int{32080: 0}; !maps.Equal(r.hc.ports, want) {
		t.Errorf("without a local endpoint served %v, want %v", r.hc.ports, want)
	}
	r.syncOK(t, v1.ServiceProxyNFTables, false)
	if r.hc.closes == 0 || r.hc.ports != nil {
		t.Errorf("after the switch to nftables: %d closes, serving %v; want stopped", r.hc.closes, r.hc.ports)
	}
}

// TestIPVSHealthCheckOnlyAfterGoodSync: a failed IPVS sync leaves the servers as they were.
func TestIPVSHealthCheckOnlyAfterGoodSync(t *testing.T) {
	r := newRig(true)
	r.addLB(true)
	r.ipvs.FailOn["AddVirtualServer TCP 10.96.0.30:80 rr"] = errors.New("boom")
	if res := r.m.Sync(context.Background(), desired(v1.ServiceProxyIPVS), true); res.Err == nil {
		t.Fatal("sync did not fail")
	}
	if r.hc.syncs != 0 {
		t.Errorf("health check servers synced %d times after a failed sync", r.hc.syncs)
	}
}

// TestIPVSSysctlsWhenTurnedOn: the kernel settings are written before the first IPVS sync, not
// again while the mode stays, never by the removal a node in another mode runs, and again when
// the mode comes back (or the agent restarts); a failure fails the sync, and the next one
// retries.
func TestIPVSSysctlsWhenTurnedOn(t *testing.T) {
	r := newRig(true)
	r.addEcho()
	r.syncOK(t, v1.ServiceProxyNFTables, true)
	r.syncOK(t, v1.ServiceProxyNFTables, true)
	if r.sysctls != 0 {
		t.Fatalf("nftables mode wrote the IPVS sysctls %d times", r.sysctls)
	}
	r.syncOK(t, v1.ServiceProxyIPVS, false)
	r.syncOK(t, v1.ServiceProxyIPVS, true)
	if r.sysctls != 1 {
		t.Errorf("two IPVS syncs wrote the sysctls %d times, want 1", r.sysctls)
	}
	r.syncOK(t, v1.ServiceProxyNFTables, false)
	r.syncOK(t, v1.ServiceProxyIPVS, false)
	if r.sysctls != 2 {
		t.Errorf("after the mode came back: %d writes, want 2", r.sysctls)
	}

	b := NewIPVS(func() (ipvs.Interface, ipvs.Binder, error) { return ipvsfake.New(), ipvsfake.NewBinder(), nil },
		r.ipvsNFT, WithSysctls(func() error { return errors.New("read-only /proc/sys") }))
	if _, err := b.Sync(context.Background(), proxy.Model{}, Config{}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("sync with failing sysctls: %v, want their error", err)
	}
}

// TestIPVSToNFTablesLeavesNothing: switching from ipvs to nftables deletes the NodePort and
// ClusterIP virtual servers, the bound VIPs, the dummy device and the IPVS table, whether the
// agent kept running or restarted in between (then only the node's addresses tell its NodePort
// virtual servers apart); a foreign virtual server stays.
func TestIPVSToNFTablesLeavesNothing(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "same agent"
		if restart {
			name = "after a restart"
		}
		t.Run(name, func(t *testing.T) {
			r := newRig(true)
			foreign := ipvs.VirtualServer{Address: netip.MustParseAddr("172.17.0.1"), Protocol: ipvs.TCP, Port: 443, Scheduler: ipvs.RoundRobin}
			if err := r.ipvs.AddVirtualServer(foreign); err != nil {
				t.Fatal(err)
			}
			r.addLB(true)
			r.syncOK(t, v1.ServiceProxyIPVS, true)
			if !strings.Contains(r.ipvs.Dump(), "10.99.0.11:30080") || !r.binder.Exists() || r.ipvsNFT.Table == nil {
				t.Fatalf("ipvs not programmed: device %v, table %v\n%s", r.binder.Exists(), r.ipvsNFT.Table != nil, r.ipvs.Dump())
			}
			if restart {
				r.m = r.newManager(true)
			}
			res := r.syncOK(t, v1.ServiceProxyNFTables, restart) // an agent's first sync is full
			if !res.Wrote {
				t.Errorf("the switch wrote nothing: %+v", res)
			}
			if got := r.ipvs.Dump(); got != foreign.String() {
				t.Errorf("IPVS after the switch:\n%s\nwant only the foreign %s", got, foreign)
			}
			if bound, _ := r.binder.ListBound(); r.binder.Exists() || len(bound) != 0 {
				t.Errorf("%s left: exists %v, addresses %v", ipvs.DummyDevice, r.binder.Exists(), bound)
			}
			if r.ipvsNFT.Table != nil {
				t.Error("the IPVS mode's nftables table survived")
			}
			if r.proxyNFT.Table == nil {
				t.Error("nftables mode not programmed")
			}
		})
	}
}
