package manager

import (
	"context"
	"maps"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/ipvs/ipvsfake"
	"github.com/plexus-net/plexus/agent/proxy/nftables"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// rig is a Manager on fake nftables tables and, when withIPVS, a fake IPVS kernel.
type rig struct {
	feed     *Feed
	m        *Manager
	proxyNFT *knftables.Fake
	ipvsNFT  *knftables.Fake
	ipvs     *ipvsfake.Fake
	binder   *ipvsfake.Binder
	hc       *fakeHC
	sysctls  int // calls of the IPVS backend's sysctl writer
	events   []string
}

func newRig(withIPVS bool) *rig {
	r := &rig{feed: NewFeed(), proxyNFT: knftables.NewFake(nftables.TableFamily, nftables.TableName),
		ipvsNFT: knftables.NewFake(ipvs.NFTFamily, ipvs.NFTTable), ipvs: ipvsfake.New(), binder: ipvsfake.NewBinder(),
		hc: &fakeHC{}}
	r.m = r.newManager(withIPVS)
	return r
}

// newManager returns a Manager with fresh backends on r's fakes: a new one is an agent restart.
func (r *rig) newManager(withIPVS bool) *Manager {
	open := func() (ipvs.Interface, ipvs.Binder, error) {
		if !withIPVS {
			return nil, nil, &UnavailableError{Mode: ipvs.Mode, Missing: "IPVS (CONFIG_IP_VS; no /proc/net/ip_vs)"}
		}
		return r.ipvs, r.binder, nil
	}
	return NewManager(r.feed, map[v1.ServiceProxyMode]Backend{
		v1.ServiceProxyNFTables: NewNFTables(r.proxyNFT, nil),
		v1.ServiceProxyIPVS: NewIPVS(open, r.ipvsNFT, WithHealthChecker(r.hc),
			WithSysctls(func() error { r.sysctls++; return nil })),
	}, func(svc *corev1.Service, msg string) { r.events = append(r.events, svc.Name+": "+msg) })
}

// fakeHC records the ports of the health check servers.
type fakeHC struct {
	ports  map[uint16]int // nil: none served
	syncs  int
	closes int
}

func (f *fakeHC) Sync(ports map[uint16]int) error {
	f.syncs++
	f.ports = maps.Clone(ports)
	if len(f.ports) == 0 {
		f.ports = nil
	}
	return nil
}

func (f *fakeHC) Close() error {
	f.closes++
	f.ports = nil
	return nil
}

func desired(mode v1.ServiceProxyMode) Desired {
	return Desired{Mode: mode, Node: proxy.NodeInfo{Name: "node-1", Addresses: []netip.Addr{netip.MustParseAddr("10.99.0.11")}},
		Config: Config{PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}}
}

func (r *rig) addEcho() {
	svc := proxytest.Service("default", "echo", []string{"10.96.0.20"}, proxytest.Port("http", corev1.ProtocolTCP, 80))
	r.feed.SetService(svc)
	r.feed.SetSlice(proxytest.Slice("default", "echo", "echo-1", "http", corev1.ProtocolTCP, 8080,
		proxytest.EP{IP: "10.244.0.5", Node: "node-1"}, proxytest.EP{IP: "10.244.1.5", Node: "node-2"}))
}

func TestNFTablesSyncCountsAndNoOp(t *testing.T) {
	ctx := context.Background()
	r := newRig(false)
	r.addEcho()
	res := r.m.Sync(ctx, desired(""), true)
	if res.Err != nil || !res.Wrote || res.Mode != "nftables" || res.Counts.Services != 1 || res.Counts.Endpoints != 2 {
		t.Fatalf("first sync: %+v", res)
	}
	if r.proxyNFT.Table == nil {
		t.Fatal("no proxy table")
	}
	if res := r.m.Sync(ctx, desired(""), false); res.Err != nil || res.Wrote {
		t.Errorf("a no-op sync wrote: %+v", res)
	}
	// A full resync of an unchanged table writes nothing either.
	if res := r.m.Sync(ctx, desired(""), true); res.Err != nil || res.Wrote {
		t.Errorf("a no-op full sync wrote: %+v", res)
	}
}

func TestModeChangesRemoveTheOtherBackend(t *testing.T) {
	ctx := context.Background()
	r := newRig(true)
	r.addEcho()
	if res := r.m.Sync(ctx, desired(v1.ServiceProxyNFTables), true); res.Err != nil {
		t.Fatal(res.Err)
	}
	res := r.m.Sync(ctx, desired(v1.ServiceProxyIPVS), false)
	if res.Err != nil || !res.Wrote || res.Mode != "ipvs" {
		t.Fatalf("to ipvs: %+v", res)
	}
	if r.proxyNFT.Table != nil {
		t.Error("the nftables proxy table survived the switch to ipvs")
	}
	if r.ipvsNFT.Table == nil || !strings.Contains(r.ipvs.Dump(), "10.96.0.20") {
		t.Errorf("ipvs not programmed: table=%v\n%s", r.ipvsNFT.Table != nil, r.ipvs.Dump())
	}
	res = r.m.Sync(ctx, desired(v1.ServiceProxyNone), false)
	if res.Err != nil || !res.Wrote || res.Mode != "none" || res.Counts.Services != 0 || len(res.Supported) != 0 {
		t.Fatalf("to none: %+v", res)
	}
	if r.ipvsNFT.Table != nil || strings.Contains(r.ipvs.Dump(), "10.96.0.20") {
		t.Errorf("ipvs state survived mode none:\n%s", r.ipvs.Dump())
	}
	if res := r.m.Sync(ctx, desired(v1.ServiceProxyNone), false); res.Wrote {
		t.Errorf("mode none again wrote: %+v", res)
	}
	if res := r.m.Sync(ctx, desired(v1.ServiceProxyNFTables), false); res.Err != nil || !res.Wrote || r.proxyNFT.Table == nil {
		t.Errorf("back to nftables: %+v", res)
	}
}

func TestIPVSWithoutKernelSupport(t *testing.T) {
	r := newRig(false)
	r.addEcho()
	res := r.m.Sync(context.Background(), desired(v1.ServiceProxyIPVS), true)
	if res.Err == nil || !res.Unavailable || !strings.Contains(res.Err.Error(), "/proc/net/ip_vs") {
		t.Fatalf("want an unavailable error naming /proc/net/ip_vs, got %+v", res)
	}
	if r.proxyNFT.Table != nil || r.ipvsNFT.Table != nil {
		t.Error("a table was written without IPVS")
	}
}

// limited is a Backend whose feature table lacks some features (both real backends now honour
// every feature, so the Event logic is tested on a row with a gap).
type limited struct {
	Backend
	lacks []proxy.Feature
}

// Features implements Backend: the wrapped backend's row without l.lacks.
func (l limited) Features() proxy.FeatureTable {
	fs := l.Backend.Features().(proxy.FeatureSet)
	sup := maps.Clone(fs.Supported)
	for _, f := range l.lacks {
		delete(sup, f)
	}
	return proxy.FeatureSet{Mode: fs.Mode, Supported: sup}
}

func TestUnsupportedFeatureEventsOncePerFeatureSet(t *testing.T) {
	ctx := context.Background()
	r := newRig(true)
	r.m.backends[v1.ServiceProxyNFTables] = limited{Backend: r.m.backends[v1.ServiceProxyNFTables], lacks: []proxy.Feature{proxy.FeatureSessionAffinityIPv6}}
	r.addEcho()
	affinity := func(ips ...string) *corev1.Service {
		s := proxytest.Service("default", "sticky", ips, proxytest.Port("http", corev1.ProtocolTCP, 80))
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
		return s
	}
	r.feed.SetService(affinity("10.96.0.30", "fd00:10:96::30"))
	for range 3 {
		if res := r.m.Sync(ctx, desired(""), false); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if len(r.events) != 1 || !strings.Contains(r.events[0], "sticky: ") || !strings.Contains(r.events[0], string(proxy.FeatureSessionAffinityIPv6)) {
		t.Fatalf("events after 3 syncs: %q", r.events)
	}
	// An update that keeps the feature set: no new Event.
	s := affinity("10.96.0.30", "fd00:10:96::30")
	s.Labels = map[string]string{"x": "y"}
	r.feed.SetService(s)
	r.m.Sync(ctx, desired(""), false)
	if len(r.events) != 1 {
		t.Fatalf("an update with the same features re-emitted: %q", r.events)
	}
	// ipvs honours it: no Event; back to nftables: one again (a new mode).
	r.m.Sync(ctx, desired(v1.ServiceProxyIPVS), false)
	r.m.Sync(ctx, desired(v1.ServiceProxyNFTables), false)
	if len(r.events) != 2 {
		t.Fatalf("events after ipvs and back: %q", r.events)
	}
	// Dropping IPv6 removes the unsupported feature; adding it back is a new Event.
	r.feed.SetService(affinity("10.96.0.30"))
	r.m.Sync(ctx, desired(""), false)
	r.feed.SetService(affinity("10.96.0.30", "fd00:10:96::30"))
	r.m.Sync(ctx, desired(""), false)
	if len(r.events) != 3 {
		t.Fatalf("events: %q", r.events)
	}
}
