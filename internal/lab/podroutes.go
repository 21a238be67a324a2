package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// PodRouteProtocol marks the routes the lab's pod-route follower makes in the control plane's
// namespace (rtm_protocol). The follower lists, replaces and deletes only routes carrying it, so
// it never touches the bridge's own routes; it differs from the agent's routing.RouteProtocol.
const PodRouteProtocol = 199

// podRouteInterval is how often the follower re-reads the NodeNetworks: a node's pod CIDRs change
// rarely (node join, leave, ClusterNetwork edit) and a pass is one list call.
const podRouteInterval = 2 * time.Second

// PodRoute is one route of the control plane to a node's pod CIDR through the node's underlay
// address.
type PodRoute struct {
	Dst netip.Prefix
	Via netip.Addr
}

// DesiredPodRoutes are the routes a control plane off the pod network needs to reach every pod:
// each node's pod CIDRs via that node's address of the same family (status.nodeIPs). A node whose
// agent has not reported its address yet gets no route for now.
func DesiredPodRoutes(nns []v1.NodeNetwork) []PodRoute {
	var out []PodRoute
	for _, nn := range nns {
		for _, c := range nn.Spec.PodCIDRs {
			dst, err := netip.ParsePrefix(string(c))
			if err != nil {
				continue
			}
			for _, s := range nn.Status.NodeIPs {
				via, err := netip.ParseAddr(s)
				if err == nil && via.Is4() == dst.Addr().Is4() {
					out = append(out, PodRoute{Dst: dst.Masked(), Via: via})
					break
				}
			}
		}
	}
	return out
}

// FollowPodRoutes keeps the routes of DesiredPodRoutes in the network namespace at nsPath (the
// lab's underlay, where the API server runs), reading NodeNetworks with the kubeconfig, until ctx
// ends. This is what a control-plane host of a real cluster gets from running the agent: the API
// server reaches pods (pods/proxy, services/proxy, admission webhooks, aggregated APIs).
// Errors are logged and retried: the API server may not be up yet when the follower starts.
func FollowPodRoutes(ctx context.Context, kubeconfig, nsPath string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("pod routes: kubeconfig %s: %w", kubeconfig, err)
	}
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		return err
	}
	k, err := client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("pod routes: client: %w", err)
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("pod routes: open %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("pod routes: netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	var lastErr string
	for {
		err := syncPodRoutes(ctx, k, h)
		if msg := fmt.Sprint(err); err != nil && msg != lastErr {
			fmt.Fprintln(os.Stderr, "pod routes:", err)
		}
		lastErr = fmt.Sprint(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(podRouteInterval):
		}
	}
}

// syncPodRoutes makes the follower's routes in h's namespace exactly the desired ones.
func syncPodRoutes(ctx context.Context, k client.Client, h *netlink.Handle) error {
	var l v1.NodeNetworkList
	if err := k.List(ctx, &l); err != nil {
		return fmt.Errorf("list NodeNetworks: %w", err)
	}
	want := map[netip.Prefix]netip.Addr{}
	for _, r := range DesiredPodRoutes(l.Items) {
		want[r.Dst] = r.Via
	}
	have, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: PodRouteProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range have {
		dst, ok := prefixOf(r.Dst)
		via, _ := netip.AddrFromSlice(r.Gw)
		if ok && want[dst] == via.Unmap() {
			delete(want, dst)
			continue
		}
		if err := h.RouteDel(&r); err != nil {
			return fmt.Errorf("delete route %s: %w", r.Dst, err)
		}
	}
	var errs []error
	for dst, via := range want {
		r := &netlink.Route{
			Dst:      &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
			Gw:       via.AsSlice(),
			Protocol: PodRouteProtocol,
			Table:    unix.RT_TABLE_MAIN,
		}
		// Add, not replace: a route to the same range made by someone else stays theirs.
		if err := h.RouteAdd(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", dst, via, err))
		}
	}
	return errors.Join(errs...)
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}
