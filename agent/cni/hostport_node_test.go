package cni

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-net/plexus/agent/hostport"
	"github.com/plexus-net/plexus/internal/testnet"
)

// Harness of the host-port kernel tests: a "remote" namespace (another node or a client on the
// network) wired to the node, pods that answer with their name, and ADD with port mappings.

var (
	remoteIP4 = netip.MustParseAddr("10.250.0.2")
	remoteIP6 = netip.MustParseAddr("fd10:250::2")
	// remoteGateway6 is the node's link-local address towards the remote.
	remoteGateway6 = netip.MustParseAddr("fe80::250:1")
)

// addRemote connects a client namespace to the node by a veth, with host routes both ways to
// the node's addresses and a route to the node's pod CIDRs, as a peer node would have.
func (n *testNode) addRemote() *testnet.Netns {
	n.t.Helper()
	remote := testnet.NewNetns(n.t, "cniremote")
	testnet.Veth(n.t, n.ns, remote, "to-remote", "to-node")
	remote.AddAddr(n.t, "to-node", netip.PrefixFrom(remoteIP4, 32), netip.PrefixFrom(remoteIP6, 128))
	// IPv6 neighbour discovery answers only for addresses of the asked interface, and the node's
	// addresses sit on its loopback: the remote reaches them via a link-local gateway.
	n.ns.AddAddr(n.t, "to-remote", netip.PrefixFrom(remoteGateway6, 64))
	for _, r := range []struct {
		ns       *testnet.Netns
		link     string
		dst      netip.Addr
		podCIDRs bool
	}{
		{n.ns, "to-remote", remoteIP4, false}, {n.ns, "to-remote", remoteIP6, false},
		{remote, "to-node", testNodeIP4, true}, {remote, "to-node", testNodeIP6, true},
	} {
		gw := netip.Addr{}
		if r.podCIDRs && r.dst.Is6() {
			gw = remoteGateway6
		}
		r.ns.AddRoute(n.t, r.link, netip.PrefixFrom(r.dst, r.dst.BitLen()), gw)
		if r.podCIDRs {
			p := testPods4
			if r.dst.Is6() {
				p = testPods6
			}
			if !gw.IsValid() {
				gw = r.dst
			}
			r.ns.AddRoute(n.t, r.link, p, gw)
		}
	}
	return remote
}

// addWithPorts is ADD with the portMappings capability, as kubelet passes a pod's host ports.
func (n *testNode) addWithPorts(pod *testnet.Netns, containerID string, pms ...hostport.RuntimePortMapping) (*types100.Result, error) {
	rc := runtimeConf(pod.Path(), containerID)
	rc.CapabilityArgs = map[string]any{PortMappingsCapability: portMappingArgs(pms)}
	var res types.Result
	err := n.inNode(func(ctx context.Context) (err error) {
		res, err = n.rt.AddNetworkList(ctx, n.list, rc)
		return err
	})
	if err != nil {
		return nil, err
	}
	return types100.NewResultFromResult(res)
}

func (n *testNode) mustAddWithPorts(pod *testnet.Netns, containerID string, pms ...hostport.RuntimePortMapping) (v4, v6 netip.Addr) {
	n.t.Helper()
	res, err := n.addWithPorts(pod, containerID, pms...)
	if err != nil {
		n.t.Fatalf("ADD %s with host ports: %v", containerID, err)
	}
	return podAddrs(n.t, res)
}

// checkWithPorts is CHECK with the portMappings capability.
func (n *testNode) checkWithPorts(pod *testnet.Netns, containerID string, pms ...hostport.RuntimePortMapping) error {
	rc := runtimeConf(pod.Path(), containerID)
	rc.CapabilityArgs = map[string]any{PortMappingsCapability: portMappingArgs(pms)}
	return n.inNode(func(ctx context.Context) error { return n.rt.CheckNetworkList(ctx, n.list, rc) })
}

func portMappingArgs(pms []hostport.RuntimePortMapping) []map[string]any {
	var caps []map[string]any
	for _, pm := range pms {
		caps = append(caps, map[string]any{"hostPort": pm.HostPort, "containerPort": pm.ContainerPort, "protocol": pm.Protocol, "hostIP": pm.HostIP})
	}
	return caps
}

// hostPortTable lists the node's host-port table ("" when there is none).
func (n *testNode) hostPortTable() string {
	out, err := n.ns.TryExec("nft", "list", "table", "inet", hostport.TableName)
	if err != nil {
		return ""
	}
	return out
}

// askName connects from ns (from source src when valid) to target over proto once and returns
// the answer "<name> <peer>".
func askName(ns *testnet.Netns, proto string, src netip.Addr, target netip.AddrPort) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	if src.IsValid() {
		if proto == "tcp" {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		} else {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
	}
	var c net.Conn
	if err := ns.Do(func() (err error) { c, err = d.Dial(proto, target.String()); return err }); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte("who\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// askNameEventually retries askName for a few seconds (fresh veths need a moment).
func askNameEventually(ns *testnet.Netns, proto string, src netip.Addr, target netip.AddrPort) (string, error) {
	var got string
	var err error
	testnet.Poll(echoBound, 50*time.Millisecond, func() bool {
		got, err = askName(ns, proto, src, target)
		return err == nil
	})
	return got, err
}
