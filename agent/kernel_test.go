package agent

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/masquerade"
	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/nsthread"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/agent/proxy/nftables"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/agent/status"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/testnet"
)

// TestKernelFailingMasqueradeKeepsServices runs node-1's agent on a real network namespace (real
// netlink, real nft) with a masquerade table that fails: the routes and the Service table land in
// the kernel all the same, each plane reports its own condition, and the table follows once the
// failure is gone.
func TestKernelFailingMasqueradeKeepsServices(t *testing.T) {
	testnet.RequireRoot(t)
	pfx := netip.MustParsePrefix
	if err := testnet.CheckNoOverlap(pfx("10.99.0.0/23"), pfx("fd10:99::/63"), pfx("10.244.0.0/16"), pfx("fd10:244::/56"),
		pfx("10.96.0.0/16"), pfx("fd00:10:96::/112")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	node, peer := testnet.NewNetns(t, "plane"), testnet.NewNetns(t, "peer")
	testnet.Veth(t, node, peer, "eth0", "eth0p")
	node.AddAddr(t, "eth0", pfx("10.99.0.11/24"), pfx("fd10:99::11/64"))
	node.SetUp(t, "eth0")
	peer.SetUp(t, "eth0p")

	thread, err := nsthread.Start(node.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer thread.Stop()
	nl, err := routing.NewNetlink(node.NsHandle())
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	masqNFT, err := nsthread.NFTables(thread, nfttable.Opener(masquerade.TableFamily, masquerade.TableName))
	if err != nil {
		t.Fatal(err)
	}
	proxyNFT, err := nsthread.NFTables(thread, nfttable.Opener(nftables.TableFamily, nftables.TableName))
	if err != nil {
		t.Fatal(err)
	}
	feed := manager.NewFeed()
	feed.SetService(proxytest.Service("default", "echo", []string{"10.96.0.20"}, proxytest.Port("http", corev1.ProtocolTCP, 80)))
	feed.SetSlice(proxytest.Slice("default", "echo", "echo-v4", "http", corev1.ProtocolTCP, 8080,
		proxytest.EP{IP: "10.244.0.5", Node: "node-1"}, proxytest.EP{IP: "10.244.1.5", Node: "node-2"}))
	noIPVS := func() (ipvs.Interface, ipvs.Binder, error) {
		return nil, nil, &manager.UnavailableError{Mode: "ipvs", Missing: "IPVS"}
	}
	proxy := manager.NewManager(feed, map[v1.ServiceProxyMode]manager.Backend{
		v1.ServiceProxyNFTables: manager.NewNFTables(proxyNFT, nil),
		v1.ServiceProxyIPVS:     manager.NewIPVS(noIPVS, knftables.NewFake(ipvs.NFTFamily, ipvs.NFTTable)),
	}, nil)
	// Clean up what the sync programs (the namespace goes too, this is for a failed test's rerun).
	defer func() { _ = masquerade.New(masqNFT).Remove(ctx) }()

	w := newWorld(t, v1.RoutingAuto)
	masq := &brokenMasquerade{inner: masquerade.New(masqNFT), broken: true}
	a := &Agent{
		NodeName: "node-1", Source: w.api, Reporter: status.Reporter{Writer: w.api}, Uplinks: nl,
		Planes: []Plane{NewRoutesPlane(routing.NewSyncer(nl), nil), NewMasqueradePlane(masq), NewCNIPlane(w.state),
			NewServicesPlane(proxy)},
	}

	if _, err := a.Sync(ctx, true); err == nil || !strings.Contains(err.Error(), "injected nft failure") {
		t.Fatalf("sync error %v, want the masquerade plane's failure", err)
	}
	if out := node.Exec(t, "nft", "list", "table", string(nftables.TableFamily), nftables.TableName); !strings.Contains(out, "10.96.0.20") {
		t.Errorf("the Service is not in the kernel's proxy table:\n%s", out)
	}
	if out := node.Exec(t, "ip", "-4", "route", "show", "10.244.1.0/24"); !strings.Contains(out, "via 10.99.0.12 dev eth0") {
		t.Errorf("no direct route to node-2's pods: %q", out)
	}
	if _, err := node.TryExec("nft", "list", "table", string(masquerade.TableFamily), masquerade.TableName); err == nil {
		t.Errorf("the masquerade table exists although its plane failed")
	}
	st := w.api.status("node-1")
	wantCondition(t, st.Conditions, v1.ConditionMasqueradeProgrammed, metav1.ConditionFalse, v1.ReasonMasqueradeFailed)
	wantCondition(t, st.Conditions, v1.ConditionServicesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionRoutesProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionNodeReady, metav1.ConditionFalse, v1.ReasonMasqueradeFailed)

	masq.broken = false
	if _, err := a.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if out := node.Exec(t, "nft", "list", "table", string(masquerade.TableFamily), masquerade.TableName); !strings.Contains(out, "masquerade") {
		t.Errorf("masquerade table after recovery:\n%s", out)
	}
	st = w.api.status("node-1")
	wantCondition(t, st.Conditions, v1.ConditionMasqueradeProgrammed, metav1.ConditionTrue, v1.ReasonProgrammed)
	wantCondition(t, st.Conditions, v1.ConditionNodeReady, metav1.ConditionTrue, v1.ReasonProgrammed)
}
