package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// LoadBalancerRouteProtocol marks the route the lab's load-balancer follower makes to its pool
// (rtm_protocol); it differs from PodRouteProtocol, whose follower deletes routes it did not want.
const LoadBalancerRouteProtocol = 198

// loadBalancerInterval is how often the follower looks for LoadBalancer Services to address.
const loadBalancerInterval = time.Second

// LoadBalancerPool is the lab's pool of load-balancer addresses: the top /28 of the underlay's
// IPv4 range (10.99.SLOT.240/28), or the top /LoadBalancerPoolBits (at most /25, so it stays
// above the addresses of up to 100 nodes, which take .11 upwards). The
// underlay's namespace routes the pool to a node, whose agent serves the Service on the address
// (status.loadBalancer.ingress, ipMode VIP): what a bare-metal router does with a static route or
// what MetalLB/BGP announces.
func (c Config) LoadBalancerPool() netip.Prefix {
	bits := c.LoadBalancerPoolBits
	if bits == 0 {
		bits = 28
	}
	bits = min(max(bits, 25), 30)
	a := c.UnderlayV4.Masked().Addr().As4()
	size := 1 << (32 - bits)
	a[3] = byte(256 - size)
	return netip.PrefixFrom(netip.AddrFrom4(a), bits)
}

// LoadBalancerAssignment is one address the follower gives a Service.
type LoadBalancerAssignment struct {
	Service types.NamespacedName
	IP      netip.Addr
}

// AssignLoadBalancerIPs picks an address of pool for every LoadBalancer Service without one and
// without a spec.loadBalancerClass (those belong to another implementation), lowest free address
// first, Services in name order. Addresses Services already hold stay theirs; the pool's network
// and broadcast addresses are never handed out. A Service left without an address means the pool
// is exhausted. It is pure.
func AssignLoadBalancerIPs(pool netip.Prefix, svcs []corev1.Service) []LoadBalancerAssignment {
	used := map[netip.Addr]bool{}
	var want []types.NamespacedName
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.LoadBalancerClass != nil {
			continue
		}
		if len(s.Status.LoadBalancer.Ingress) > 0 {
			for _, in := range s.Status.LoadBalancer.Ingress {
				if a, err := netip.ParseAddr(in.IP); err == nil {
					used[a] = true
				}
			}
			continue
		}
		want = append(want, types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
	}
	sort.Slice(want, func(i, j int) bool { return want[i].String() < want[j].String() })
	var out []LoadBalancerAssignment
	next := pool.Masked().Addr().Next()
	for _, svc := range want {
		for pool.Contains(next) && used[next] {
			next = next.Next()
		}
		// The last address of the pool is its broadcast address.
		if !pool.Contains(next) || !pool.Contains(next.Next()) {
			break
		}
		out = append(out, LoadBalancerAssignment{Service: svc, IP: next})
		used[next] = true
	}
	return out
}

// FollowLoadBalancers gives LoadBalancer Services an address of pool (AssignLoadBalancerIPs,
// written to status.loadBalancer) and keeps a route to the pool in the network namespace at
// nsPath via one node's underlay address, reading the cluster with the kubeconfig until ctx ends.
// Errors are logged and retried: the API server may not be up yet when the follower starts.
func FollowLoadBalancers(ctx context.Context, kubeconfig, nsPath string, pool netip.Prefix) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load balancers: kubeconfig %s: %w", kubeconfig, err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return err
	}
	k, err := client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("load balancers: client: %w", err)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("load balancers: open %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("load balancers: netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	var lastErr string
	for {
		err := syncLoadBalancers(ctx, k, h, pool)
		if msg := fmt.Sprint(err); err != nil && msg != lastErr {
			fmt.Fprintln(os.Stderr, "load balancers:", err)
		}
		lastErr = fmt.Sprint(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(loadBalancerInterval):
		}
	}
}

// syncLoadBalancers routes the pool and writes the addresses of one pass.
func syncLoadBalancers(ctx context.Context, k client.Client, h *netlink.Handle, pool netip.Prefix) error {
	var nns v1.NodeNetworkList
	if err := k.List(ctx, &nns); err != nil {
		return fmt.Errorf("list NodeNetworks: %w", err)
	}
	if via, ok := poolNextHop(nns.Items); ok {
		r := &netlink.Route{
			Dst: &net.IPNet{IP: pool.Masked().Addr().AsSlice(), Mask: net.CIDRMask(pool.Bits(), 32)},
			Gw:  via.AsSlice(), Protocol: LoadBalancerRouteProtocol, Table: unix.RT_TABLE_MAIN,
		}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s: %w", pool, via, err)
		}
	}
	var svcs corev1.ServiceList
	if err := k.List(ctx, &svcs); err != nil {
		return fmt.Errorf("list Services: %w", err)
	}
	for _, a := range AssignLoadBalancerIPs(pool, svcs.Items) {
		var s corev1.Service
		if err := k.Get(ctx, a.Service, &s); err != nil {
			return fmt.Errorf("read Service %s: %w", a.Service, err)
		}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: a.IP.String(), IPMode: ptrTo(corev1.LoadBalancerIPModeVIP)}}
		if err := k.Status().Update(ctx, &s); err != nil {
			return fmt.Errorf("address Service %s: %w", a.Service, err)
		}
		fmt.Fprintf(os.Stderr, "load balancers: Service %s at %s\n", a.Service, a.IP)
	}
	return nil
}

// poolNextHop is the IPv4 underlay address of the first node (by name) whose agent reported one.
// Every node's agent serves every load-balancer address, so one is enough; the first by name is
// stable while nodes come and go.
func poolNextHop(nns []v1.NodeNetwork) (netip.Addr, bool) {
	sort.Slice(nns, func(i, j int) bool { return nns[i].Name < nns[j].Name })
	for _, nn := range nns {
		for _, s := range nn.Status.NodeIPs {
			if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

func ptrTo[T any](v T) *T { return &v }
