package ipvs_test

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/plexus-net/plexus/internal/testnet"
)

// The guest has no iproute2 (`ip netns` needs it) and a minimal kernel, so
// the in-VM tests make their namespaces and links directly.

const (
	// dialTimeout bounds one connection attempt through IPVS: generous,
	// as the VM is emulated (TCG) on a machine that may be busy.
	dialTimeout = 5 * time.Second
)

// guestNS is an anonymous network namespace in the guest, kept alive by
// its handle for the life of the guest.
type guestNS struct {
	name string
	h    netns.NsHandle
	nl   *netlink.Handle
	// udpReceived counts the datagrams serveName's UDP server received.
	udpReceived atomic.Int64
}

// rootNS is the guest's initial namespace, where IPVS is programmed.
func rootNS(t *testing.T) *guestNS {
	t.Helper()
	h, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		t.Fatalf("open root namespace: %v", err)
	}
	n := openGuestNS(t, "root", h)
	n.noDAD(t)
	return n
}

// newGuestNS creates a namespace with lo up.
func newGuestNS(t *testing.T, name string) *guestNS {
	t.Helper()
	type result struct {
		h   netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, so no thread
		// left in the new namespace is ever reused.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			c <- result{err: err}
			return
		}
		h, err := netns.Get()
		c <- result{h, err}
	}()
	r := <-c
	if r.err != nil {
		t.Fatalf("create namespace %s: %v", name, r.err)
	}
	n := openGuestNS(t, name, r.h)
	n.noDAD(t)
	n.up(t, "lo")
	return n
}

// openGuestNS opens a route-netlink handle in h. Why NETLINK_ROUTE only:
// the default handle also opens XFRM and NETFILTER sockets, which the VM's
// minimal kernel answers with "protocol not supported".
func openGuestNS(t *testing.T, name string, h netns.NsHandle) *guestNS {
	t.Helper()
	nl, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	return &guestNS{name: name, h: h, nl: nl}
}

// noDAD turns off IPv6 duplicate address detection for links made from now
// on in n. Why: until DAD of its link-local address is done (a second or
// two) a fresh veth end does not take part in neighbour discovery, and the
// first IPv6 connections through it time out.
func (n *guestNS) noDAD(t *testing.T) {
	t.Helper()
	err := n.do(func() error {
		// /proc/sys/net is the namespace of the thread that opens it.
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0o644)
	})
	if err != nil {
		t.Fatalf("%s: accept_dad: %v", n.name, err)
	}
}

// do runs fn on a thread inside the namespace (see testnet.Netns.Do).
func (n *guestNS) do(fn func() error) error {
	if err := testnet.DoIn(n.h, fn); err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	return nil
}

func (n *guestNS) up(t *testing.T, link string) {
	t.Helper()
	l, err := n.nl.LinkByName(link)
	if err == nil {
		err = n.nl.LinkSetUp(l)
	}
	if err != nil {
		t.Fatalf("%s: set %s up: %v", n.name, link, err)
	}
}

func (n *guestNS) addAddr(t *testing.T, link string, p netip.Prefix) {
	t.Helper()
	l, err := n.nl.LinkByName(link)
	if err != nil {
		t.Fatalf("%s: find %s: %v", n.name, link, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD // usable at once, not tentative
	}
	if err := n.nl.AddrAdd(l, a); err != nil {
		t.Fatalf("%s: add %s to %s: %v", n.name, p, link, err)
	}
}

func (n *guestNS) defaultRoute(t *testing.T, link string, gw netip.Addr) {
	t.Helper()
	l, err := n.nl.LinkByName(link)
	if err != nil {
		t.Fatalf("%s: find %s: %v", n.name, link, err)
	}
	if err := n.nl.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
		t.Fatalf("%s: default route via %s: %v", n.name, gw, err)
	}
}

// attach connects n to the root namespace with a veth (root end rootIf,
// n's end eth0): root gets the .1 / ::1 addresses of the subnets, n the .2
// / ::2 ones and default routes back via root.
func (n *guestNS) attach(t *testing.T, root *guestNS, rootIf string, subnets ...netip.Prefix) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: rootIf}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(n.h))}
	if err := root.nl.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s <-> %s: %v", rootIf, n.name, err)
	}
	root.up(t, rootIf)
	n.up(t, "eth0")
	for _, s := range subnets {
		gw, own := s.Addr().Next(), s.Addr().Next().Next()
		root.addAddr(t, rootIf, netip.PrefixFrom(gw, s.Bits()))
		n.addAddr(t, "eth0", netip.PrefixFrom(own, s.Bits()))
		n.defaultRoute(t, "eth0", gw)
	}
}

// serveName answers every TCP connection on port, in n, with "<name>
// <client address>\n" and closes it; every UDP datagram to port gets the
// same answer.
func (n *guestNS) serveName(t *testing.T, port int) {
	t.Helper()
	var (
		ln net.Listener
		pc net.PacketConn
	)
	err := n.do(func() error {
		var err error
		if ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("%s: listen on %d: %v", n.name, port, err)
	}
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			n.udpReceived.Add(1)
			peer := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
			_, _ = pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", n.name, peer)), from)
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peer := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			fmt.Fprintf(c, "%s %s\n", n.name, peer)
			c.Close()
		}
	}()
}

// hit connects from n to target and returns the name of the backend that
// answered and the client address it saw.
func (n *guestNS) hit(target netip.AddrPort) (backend string, seen netip.Addr, err error) {
	return n.ask("tcp", target, dialTimeout)
}

// ask is hit over network ("tcp" or "udp": one datagram and its answer)
// with a timeout.
func (n *guestNS) ask(network string, target netip.AddrPort, timeout time.Duration) (backend string, seen netip.Addr, err error) {
	var c net.Conn
	err = n.do(func() error {
		var err error
		c, err = net.DialTimeout(network, target.String(), timeout)
		return err
	})
	if err != nil {
		return "", netip.Addr{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if network == "udp" {
		if _, err := c.Write([]byte("?")); err != nil {
			return "", netip.Addr{}, fmt.Errorf("send to %s: %w", target, err)
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("read from %s: %w", target, err)
	}
	name, addr, _ := strings.Cut(strings.TrimSpace(line), " ")
	seen, err = netip.ParseAddr(addr)
	return name, seen, err
}

// hits makes count connections and counts the answers per backend.
func (n *guestNS) hits(t *testing.T, target netip.AddrPort, count int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range count {
		name, _, err := n.hit(target)
		if err != nil {
			t.Fatalf("from %s to %s: %v", n.name, target, err)
		}
		got[name]++
	}
	return got
}

// sysctl writes a sysctl of the root namespace (the test's threads are
// there).
func sysctl(t *testing.T, key, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
		t.Fatalf("sysctl %s=%s: %v", key, value, err)
	}
}
