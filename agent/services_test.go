package agent

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/agent/proxy/nftables"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// withServices gives a the service proxy on fake tables (no kernel IPVS) and one Service with
// two endpoints; it returns the proxy table.
func withServices(a *Agent) *knftables.Fake {
	feed := manager.NewFeed()
	feed.SetService(proxytest.Service("default", "echo", []string{"10.96.0.20", "fd00:10:96::20"},
		proxytest.Port("http", corev1.ProtocolTCP, 80)))
	feed.SetSlice(proxytest.Slice("default", "echo", "echo-v4", "http", corev1.ProtocolTCP, 8080,
		proxytest.EP{IP: "10.244.0.5", Node: "node-1"}, proxytest.EP{IP: "10.244.1.5", Node: "node-2"}))
	proxyNFT := knftables.NewFake(nftables.TableFamily, nftables.TableName)
	noIPVS := func() (ipvs.Interface, ipvs.Binder, error) {
		return nil, nil, &manager.UnavailableError{Mode: "ipvs", Missing: "IPVS (CONFIG_IP_VS; no /proc/net/ip_vs)"}
	}
	a.Planes = append(a.Planes, NewServicesPlane(manager.NewManager(feed, map[v1.ServiceProxyMode]manager.Backend{
		v1.ServiceProxyNFTables: manager.NewNFTables(proxyNFT, nil),
		v1.ServiceProxyIPVS:     manager.NewIPVS(noIPVS, knftables.NewFake(ipvs.NFTFamily, ipvs.NFTTable)),
	}, nil)))
	return proxyNFT
}

func TestSyncProgramsServices(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, v1.RoutingAuto)
	a := w.newAgent(nil)
	proxyNFT := withServices(a)
	res, err := a.Sync(ctx, true)
	if err != nil || !res.Plane(PlaneServices).Wrote {
		t.Fatalf("first sync: %+v, %v", res, err)
	}
	st := w.api.status("node-1")
	if !meta.IsStatusConditionTrue(st.Conditions, v1.ConditionServicesProgrammed) || !meta.IsStatusConditionTrue(st.Conditions, v1.ConditionNodeReady) ||
		st.Services != 1 || st.Endpoints != 2 || st.ServiceProxy == nil || st.ServiceProxy.Mode != "nftables" ||
		len(st.ServiceProxy.SupportedFeatures) == 0 {
		t.Fatalf("status: %+v", st)
	}

	// No-op syncs, partial and full, write nothing anywhere.
	for _, full := range []bool{false, true} {
		proxyNFT.LastTransaction = nil
		patches := w.api.patchCount()
		res, err := a.Sync(ctx, full)
		if err != nil || res.Wrote() || proxyNFT.LastTransaction != nil || w.api.patchCount() != patches {
			t.Errorf("no-op sync (full=%v) wrote: %+v, %v", full, res, err)
		}
	}

	// ipvs on a kernel without IPVS: the nftables table goes, the node is not Ready, the reason says why.
	w.api.mu.Lock()
	w.api.in.ClusterNetwork.Status.Effective.ServiceProxy = &v1.ServiceProxy{Mode: v1.ServiceProxyIPVS}
	w.api.mu.Unlock()
	if _, err := a.Sync(ctx, false); err == nil {
		t.Fatal("ipvs without kernel support synced")
	}
	st = w.api.status("node-1")
	sp := meta.FindStatusCondition(st.Conditions, v1.ConditionServicesProgrammed)
	ready := meta.FindStatusCondition(st.Conditions, v1.ConditionNodeReady)
	if sp.Status != "False" || sp.Reason != "ServiceProxyKernelSupportMissing" || !strings.Contains(sp.Message, "/proc/net/ip_vs") ||
		ready.Status != "False" || !meta.IsStatusConditionTrue(st.Conditions, v1.ConditionRoutesProgrammed) {
		t.Errorf("conditions: %+v", st.Conditions)
	}
	if proxyNFT.Table != nil {
		t.Error("the nftables proxy table survived the switch to ipvs")
	}
}
