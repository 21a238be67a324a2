package lab

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/testnet"
)

func nodeNetwork(name string, cidrs []v1.CIDR, ips ...string) v1.NodeNetwork {
	nn := v1.NodeNetwork{ObjectMeta: metav1.ObjectMeta{Name: name}}
	nn.Spec.PodCIDRs = cidrs
	nn.Status.NodeIPs = ips
	return nn
}

func TestDesiredPodRoutesPairsEachCIDRWithTheNodeAddressOfItsFamily(t *testing.T) {
	got := DesiredPodRoutes([]v1.NodeNetwork{
		nodeNetwork("a", []v1.CIDR{"10.244.1.0/24", "fd00:244:0:1::/64"}, "10.99.0.11", "fd10:99::11"),
		// IPv6 address listed first: still paired by family.
		nodeNetwork("b", []v1.CIDR{"10.244.2.0/24", "fd00:244:0:2::/64"}, "fd10:99::12", "10.99.0.12"),
		// No address reported yet: no route.
		nodeNetwork("c", []v1.CIDR{"10.244.3.0/24"}),
		// Single-stack node address: only the matching family is routed.
		nodeNetwork("d", []v1.CIDR{"10.244.4.0/24", "fd00:244:0:4::/64"}, "10.99.0.14"),
	})
	want := []PodRoute{
		{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParseAddr("10.99.0.11")},
		{netip.MustParsePrefix("fd00:244:0:1::/64"), netip.MustParseAddr("fd10:99::11")},
		{netip.MustParsePrefix("10.244.2.0/24"), netip.MustParseAddr("10.99.0.12")},
		{netip.MustParsePrefix("fd00:244:0:2::/64"), netip.MustParseAddr("fd10:99::12")},
		{netip.MustParsePrefix("10.244.4.0/24"), netip.MustParseAddr("10.99.0.14")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DesiredPodRoutes = %v, want %v", got, want)
	}
}

// TestSyncPodRoutesFollowsNodeNetworksAndKeepsForeignRoutes runs the follower's sync against a real
// namespace: it adds the routes, changes them when a node's CIDR changes, removes a departed node's,
// and never touches a route it did not make.
func TestSyncPodRoutesFollowsNodeNetworksAndKeepsForeignRoutes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	ns := testnet.NewNetns(t, "podrt")
	testnet.Bridge(t, ns, "br0")
	ns.AddAddr(t, "br0", netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64"))
	ns.AddRoute(t, "br0", netip.MustParsePrefix("10.244.9.0/24"), netip.MustParseAddr("10.77.0.99"))

	h, err := netns.GetFromPath(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()

	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	a := nodeNetwork("a", []v1.CIDR{"10.244.1.0/24", "fd00:244:0:1::/64"}, "10.77.0.11", "fd77::11")
	b := nodeNetwork("b", []v1.CIDR{"10.244.2.0/24"}, "10.77.0.12")
	// c claims the foreign route's range: the follower reports it and leaves the route alone.
	c := nodeNetwork("c", []v1.CIDR{"10.244.9.0/24"}, "10.77.0.13")
	k := fake.NewClientBuilder().WithScheme(scheme).WithObjects(&a, &b, &c).Build()
	ctx := context.Background()

	mustSync := func() {
		t.Helper()
		err := syncPodRoutes(ctx, k, nl)
		if err != nil && !(errors.Is(err, unix.EEXIST) && strings.Contains(err.Error(), "10.244.9.0/24")) {
			t.Fatal(err)
		}
	}
	mustSync()
	mustSync() // a second pass with nothing changed keeps the same routes
	assertRoutes(t, nl, []string{
		"10.244.1.0/24 via 10.77.0.11", "10.244.2.0/24 via 10.77.0.12", "10.244.9.0/24 via 10.77.0.99 (foreign)",
		"fd00:244:0:1::/64 via fd77::11",
	})

	b.Spec.PodCIDRs = []v1.CIDR{"10.244.5.0/24"}
	if err := k.Update(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := k.Delete(ctx, &a); err != nil {
		t.Fatal(err)
	}
	mustSync()
	assertRoutes(t, nl, []string{"10.244.5.0/24 via 10.77.0.12", "10.244.9.0/24 via 10.77.0.99 (foreign)"})

	if err := k.DeleteAllOf(ctx, &v1.NodeNetwork{}, client.InNamespace("")); err != nil {
		t.Fatal(err)
	}
	mustSync()
	assertRoutes(t, nl, []string{"10.244.9.0/24 via 10.77.0.99 (foreign)"})
}

// assertRoutes compares the gateway routes of h's main table (both families), marking those not
// made by the follower as foreign.
func assertRoutes(t *testing.T, h *netlink.Handle, want []string) {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		if r.Gw == nil || r.Dst == nil {
			continue
		}
		s := r.Dst.String() + " via " + net.IP(r.Gw).String()
		if r.Protocol != PodRouteProtocol {
			s += " (foreign)"
		}
		got = append(got, s)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("routes = %v, want %v", got, want)
	}
}
