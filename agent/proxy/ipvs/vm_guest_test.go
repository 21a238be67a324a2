package ipvs_test

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/proxytest"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// The TestGuest* tests run inside the IPVS VM (see TestIPVSInVM), as root
// in a kernel with IPVS, veth and dummy. Nothing else runs there, so they
// use fixed addresses and names.

// openKernel opens the real IPVS and dummy binder in the root namespace.
func openKernel(t *testing.T) (*ipvs.Kernel, *ipvs.DummyBinder) {
	t.Helper()
	k, err := ipvs.NewKernel("")
	if err != nil {
		t.Fatalf("open IPVS: %v", err)
	}
	t.Cleanup(k.Close)
	b, err := ipvs.NewDummyBinder(netns.None(), ipvs.DummyDevice)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return k, b
}

// TestGuestKernelInterface: what the kernel implementation writes is what
// it lists back (moby/ipvs would otherwise fail silently), and its errors
// follow the Interface contract.
func TestGuestKernelInterface(t *testing.T) {
	requireGuest(t)
	k, _ := openKernel(t)
	for _, addr := range []string{"10.96.1.1:80", "[fd10:96::1:1]:80"} {
		v := vs(addr)
		v.Persistence = 30 * time.Second
		if err := k.AddVirtualServer(v); err != nil {
			t.Fatal(err)
		}
		if err := k.AddVirtualServer(v); !errors.Is(err, ipvs.ErrExists) {
			t.Errorf("second add of %s: %v, want ErrExists", v, err)
		}
		listed, err := k.ListVirtualServers()
		if err != nil || !slices.Contains(listed, v) {
			t.Fatalf("listed %v (%v), want %s among them", listed, err, v)
		}
		v.Scheduler, v.Persistence = ipvs.SourceHashing, 0
		if err := k.UpdateVirtualServer(v); err != nil {
			t.Fatal(err)
		}
		if listed, _ := k.ListVirtualServers(); !slices.Contains(listed, v) {
			t.Errorf("after update listed %v, want %s", listed, v)
		}

		backend := backendIP(4, 7)
		if v.Address.Is6() {
			backend = backendIP(6, 7)
		}
		r := ipvs.RealServer{Address: backend, Port: 8080, Weight: 1}
		if err := k.AddRealServer(v.Key(), r); err != nil {
			t.Fatal(err)
		}
		if err := k.AddRealServer(v.Key(), r); !errors.Is(err, ipvs.ErrExists) {
			t.Errorf("second add of %s: %v, want ErrExists", r, err)
		}
		r.Weight = 0
		if err := k.UpdateRealServer(v.Key(), r); err != nil {
			t.Fatal(err)
		}
		if reals, err := k.ListRealServers(v.Key()); err != nil || !slices.Equal(reals, []ipvs.RealServer{r}) {
			t.Errorf("real servers %v (%v), want [%s]", reals, err, r)
		}
		if err := k.DeleteRealServer(v.Key(), r); err != nil {
			t.Fatal(err)
		}
		if err := k.DeleteRealServer(v.Key(), r); err != nil {
			t.Errorf("deleting an absent real server: %v", err)
		}
		if err := k.DeleteVirtualServer(v.Key()); err != nil {
			t.Fatal(err)
		}
		if err := k.DeleteVirtualServer(v.Key()); err != nil {
			t.Errorf("deleting an absent virtual server: %v", err)
		}
		if err := k.UpdateVirtualServer(v); !errors.Is(err, ipvs.ErrNotFound) {
			t.Errorf("update of an absent virtual server: %v, want ErrNotFound", err)
		}
		if reals, err := k.ListRealServers(v.Key()); err != nil || len(reals) != 0 {
			t.Errorf("real servers of an absent virtual server: %v, %v; want none", reals, err)
		}
	}
	if listed, _ := k.ListVirtualServers(); len(listed) != 0 {
		t.Errorf("left behind: %v", listed)
	}
}

// TestGuestDummyBinder: the device is created once, binds both families
// idempotently, and lists only what was bound (not its link-local address).
func TestGuestDummyBinder(t *testing.T) {
	requireGuest(t)
	_, b := openKernel(t)
	if bound, err := b.ListBound(); err != nil || len(bound) != 0 {
		t.Fatalf("before the device exists: %v, %v; want empty, nil", bound, err)
	}
	for range 2 {
		if err := b.EnsureDevice(); err != nil {
			t.Fatal(err)
		}
	}
	addrs := []netip.Addr{ip("10.96.2.1"), ip("fd10:96::2:1")}
	for _, a := range addrs {
		for range 2 {
			if err := b.Bind(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	bound, err := b.ListBound()
	slices.SortFunc(bound, netip.Addr.Compare)
	if err != nil || !slices.Equal(bound, addrs) {
		t.Errorf("bound %v (%v), want %v", bound, err, addrs)
	}
	for _, a := range addrs {
		for range 2 {
			if err := b.Unbind(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	if bound, _ := b.ListBound(); len(bound) != 0 {
		t.Errorf("after unbinding: %v", bound)
	}
}

// guestTopo is the network of the traffic tests, made once per guest:
//
//	client (10.244.9.2) --vc-- root: IPVS, plexus-ipvs0 --vb1-- b1 (10.244.1.2)
//	                                                  `--vb2-- b2 (10.244.2.2)
//
// (and fd10:244:n::2 likewise; root holds the .1 / ::1 addresses, the
// client's gateway being the "node address"). Backends answer with their
// name and the client address they saw.
type guestTopo struct {
	root, client *guestNS
	backends     map[string]*guestNS
	clientIPs    []netip.Addr
	nodeIPs      []netip.Addr
}

var sharedTopo *guestTopo

func guestTopology(t *testing.T) *guestTopo {
	t.Helper()
	if sharedTopo != nil {
		return sharedTopo
	}
	topo := &guestTopo{
		backends:  map[string]*guestNS{},
		clientIPs: []netip.Addr{ip("10.244.9.2"), ip("fd10:244:9::2")},
		nodeIPs:   []netip.Addr{ip("10.244.9.1"), ip("fd10:244:9::1")},
	}
	topo.root = rootNS(t)
	sysctl(t, "net/ipv4/ip_forward", "1")
	sysctl(t, "net/ipv6/conf/all/forwarding", "1")
	// ICMPv6 errors are rate limited to one a second per peer by default:
	// the second reject of a virtual server without real servers would
	// only reach the client when its SYN is retransmitted, a second later.
	sysctl(t, "net/ipv6/icmp/ratelimit", "0")
	for _, n := range []int{1, 2} {
		name := "b" + strconv.Itoa(n)
		b := newGuestNS(t, name)
		b.attach(t, topo.root, "v"+name, netip.PrefixFrom(backendIP(4, n), 24).Masked(), netip.PrefixFrom(backendIP(6, n), 64).Masked())
		b.serveName(t, backendPort)
		topo.backends[name] = b
	}
	topo.client = newGuestNS(t, "client")
	topo.client.attach(t, topo.root, "vc", netip.MustParsePrefix("10.244.9.0/24"), netip.MustParsePrefix("fd10:244:9::/64"))
	sharedTopo = topo
	return topo
}

// TestGuestServiceTraffic: the web Service (dual-stack ClusterIP and a
// NodePort, two backends) programmed by the Syncer from the proxy model,
// then real TCP from a client namespace ("a pod") through the virtual IPs.
func TestGuestServiceTraffic(t *testing.T) {
	requireGuest(t)
	const connections = 8
	topo := guestTopology(t)
	client, clientIPs, nodeIPs := topo.client, topo.clientIPs, topo.nodeIPs
	k, b := openKernel(t)
	syncer := ipvs.NewSyncer(k, b)
	sync := func(w webService) ipvs.Plan {
		t.Helper()
		plan := syncOK(t, syncer, ipvs.DesiredState(w.model(nodeIPs...), ipvs.Config{}))
		t.Logf("plan:\n%s", plan)
		return plan
	}
	vips := []netip.AddrPort{
		netip.MustParseAddrPort("10.96.0.10:80"), netip.MustParseAddrPort("[fd10:96::10]:80"),
		netip.AddrPortFrom(nodeIPs[0], 30080), netip.AddrPortFrom(nodeIPs[1], 30080),
	}
	web := webService{nodePort: 30080, backends: []int{1, 2}}
	sync(web)

	t.Run("both backends answer, the client address is kept", func(t *testing.T) {
		for _, vip := range vips {
			got := client.hits(t, vip, connections)
			if got["b1"] == 0 || got["b2"] == 0 {
				t.Errorf("%s: answers %v, want both b1 and b2", vip, got)
			}
			_, seen, err := client.hit(vip)
			if err != nil || !slices.Contains(clientIPs, seen) {
				t.Errorf("%s: backend saw %s (%v), want the client's own address", vip, seen, err)
			}
		}
	})

	t.Run("a second sync writes nothing and the kernel matches", func(t *testing.T) {
		if plan := sync(web); !plan.Empty() {
			t.Errorf("second sync planned:\n%s", plan)
		}
		syncer.RequestFullSync()
		if plan := sync(web); !plan.Empty() {
			t.Errorf("full resync against the kernel planned:\n%s", plan)
		}
	})

	t.Run("affinity sticks", func(t *testing.T) {
		web.affinity = time.Minute
		sync(web)
		for _, vip := range vips[:2] {
			if got := client.hits(t, vip, connections); len(got) != 1 {
				t.Errorf("%s with affinity: answers %v, want one backend only", vip, got)
			}
		}
	})

	t.Run("a removed endpoint gets no new connections, even with affinity", func(t *testing.T) {
		stuck, _, err := client.hit(vips[0])
		if err != nil {
			t.Fatal(err)
		}
		other, keep := "b2", 2
		if stuck == "b2" {
			other, keep = "b1", 1
		}
		web.backends = []int{keep}
		sync(web)
		for _, vip := range vips {
			if got := client.hits(t, vip, connections); got[other] != connections {
				t.Errorf("%s after removing %s: answers %v, want all from %s", vip, stuck, got, other)
			}
		}
		web.affinity = 0
	})

	t.Run("no endpoints: refused, not dropped", func(t *testing.T) {
		web.backends = nil
		sync(web)
		for _, vip := range vips {
			_, _, err := client.hit(vip)
			// IPVS answers a virtual server without real servers with ICMP
			// port unreachable, which TCP reports as refused (a drop would
			// be a timeout). Measured quirk: over IPv6 the answer to the
			// first SYN arrives while connect() still holds the socket, so
			// TCP takes it as a soft error and refuses only on the answer
			// to the retransmitted SYN, a second later.
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s without endpoints: %v, want connection refused", vip, err)
			}
		}
	})

	t.Run("endpoints back", func(t *testing.T) {
		web.backends = []int{1, 2}
		sync(web)
		if got := client.hits(t, vips[1], connections); got["b1"] == 0 || got["b2"] == 0 {
			t.Errorf("answers %v, want both", got)
		}
	})

	t.Run("service deleted: virtual servers and addresses go", func(t *testing.T) {
		syncOK(t, syncer, ipvs.State{})
		syncer.RequestFullSync()
		if listed, _ := k.ListVirtualServers(); len(listed) != 0 {
			t.Errorf("virtual servers left: %v", listed)
		}
		if bound, _ := b.ListBound(); len(bound) != 0 {
			t.Errorf("addresses left on %s: %v", ipvs.DummyDevice, bound)
		}
	})
}

// TestGuestUDP: a dual-stack UDP Service ("dns", port 53 to the backends'
// 8080/udp) balances datagrams of fresh sockets over both backends.
func TestGuestUDP(t *testing.T) {
	requireGuest(t)
	const queries = 8
	topo := guestTopology(t)
	svc := proxytest.Service("default", "dns", []string{"10.96.0.53", "fd10:96::53"}, proxytest.Port("dns", corev1.ProtocolUDP, 53))
	var eps4, eps6 []proxytest.EP
	for _, n := range []int{1, 2} {
		eps4 = append(eps4, proxytest.EP{IP: backendIP(4, n).String(), Node: "vm"})
		eps6 = append(eps6, proxytest.EP{IP: backendIP(6, n).String(), Node: "vm"})
	}
	slices4 := proxytest.Slice("default", "dns", "dns-4", "dns", corev1.ProtocolUDP, backendPort, eps4...)
	slices6 := proxytest.Slice("default", "dns", "dns-6", "dns", corev1.ProtocolUDP, backendPort, eps6...)
	m := proxy.Build([]*corev1.Service{svc}, []*discoveryv1.EndpointSlice{slices4, slices6}, proxy.NodeInfo{Name: "vm"})
	k, b := openKernel(t)
	syncer := ipvs.NewSyncer(k, b)
	syncOK(t, syncer, ipvs.DesiredState(m, ipvs.Config{}))
	t.Cleanup(func() { syncOK(t, syncer, ipvs.State{}) })
	for _, vip := range []netip.AddrPort{netip.MustParseAddrPort("10.96.0.53:53"), netip.MustParseAddrPort("[fd10:96::53]:53")} {
		got := map[string]int{}
		for range queries {
			name, _, err := topo.client.ask("udp", vip, dialTimeout)
			if err != nil {
				t.Fatalf("%s: %v", vip, err)
			}
			got[name]++
		}
		if got["b1"] == 0 || got["b2"] == 0 {
			t.Errorf("%s: answers %v, want both backends", vip, got)
		}
	}
}
