package hostnet

import (
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RouteHandle opens a route-netlink handle in ns (netns.None(): the caller's namespace). Why
// NETLINK_ROUTE only: netlink's default handle also opens XFRM and NETFILTER sockets, which fail
// with "protocol not supported" on minimal kernels that lack those modules.
func RouteHandle(ns netns.NsHandle) (*netlink.Handle, error) {
	if ns == netns.None() {
		return netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	return netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
}
