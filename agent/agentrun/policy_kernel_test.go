package agentrun

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/agent"
	"github.com/plexus-net/plexus/agent/nsthread"
	"github.com/plexus-net/plexus/agent/policy"
	policynft "github.com/plexus-net/plexus/agent/policy/nftables"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// TestKernelPolicyPlaneInNetns runs the NetworkPolicy plane as the agent wires it (nft on the
// namespace's thread, the netlink socket and the conntrack cuts in the namespace) against a
// node namespace with two pods: default-deny ingress stops new connections to the isolated pod
// and cuts the established one, the drops show in plexus_networkpolicy_packets_total, and
// disabling removes the table from that namespace and restores traffic. The policy backend's
// own kernel tests cover the rules; this covers the wiring.
func TestKernelPolicyPlaneInNetns(t *testing.T) {
	testnet.RequireRoot(t)
	web, client := netip.MustParseAddr("10.244.0.5"), netip.MustParseAddr("10.244.0.6")
	if err := testnet.CheckNoOverlap(netip.MustParsePrefix("10.244.0.0/24")); err != nil {
		t.Fatal(err)
	}
	node := testnet.NewNetns(t, "polnode")
	node.EnableForwarding(t)
	webNS := testnet.AddFakePod(t, node, "polweb", "vweb", web)
	clientNS := testnet.AddFakePod(t, node, "polcli", "vcli", client)
	target := netip.AddrPortFrom(web, startLineEcho(t, webNS))

	thread, err := nsthread.Start(node.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer thread.Stop()
	plane, closePlane, err := newPolicyPlane(thread)
	if err != nil {
		t.Fatal(err)
	}
	defer closePlane()
	ctx := context.Background()
	d := &agent.Desired{Policy: agent.PolicyDesired{Enabled: true, Input: policy.Input{
		NodeName: "node-1", NodeIPs: []netip.Addr{netip.MustParseAddr("10.99.0.11")},
		Pods: []*corev1.Pod{
			pt.Pod("a", "web", "node-1", map[string]string{"app": "web"}, []netip.Addr{web}),
			pt.Pod("b", "client", "node-1", map[string]string{"app": "client"}, []netip.Addr{client}),
		},
		Namespaces: []*corev1.Namespace{pt.Namespace("a", nil), pt.Namespace("b", nil)},
		Policies:   pt.NPs(pt.NP("a", "deny", "", pt.IngressOnly, nil, nil)),
	}}}

	// First no policy: the table is there (and conntrack tracks the node's connections, as in
	// an agent's node) but isolates nothing.
	deny := d.Policy.Input.Policies
	d.Policy.Input.Policies = nil
	if res := plane.Sync(ctx, d, true); res.Err() != nil || !res.Wrote {
		t.Fatalf("sync without policies: %+v", res)
	}
	established := dialIn(t, clientNS, target)
	defer established.Close()
	if err := lineRoundTrip(established); err != nil {
		t.Fatalf("no policy: %v", err)
	}

	d.Policy.Input.Policies = deny
	if res := plane.Sync(ctx, d, false); res.Err() != nil || !res.Wrote {
		t.Fatalf("sync with default-deny: %+v", res)
	}
	if out := node.Exec(t, "nft", "list", "tables"); !strings.Contains(out, policynft.TableName) {
		t.Fatalf("no policy table in the node's namespace: %s", out)
	}
	if err := connect(clientNS, target); err == nil {
		t.Error("a new connection to the isolated pod opened")
	}
	if err := lineRoundTrip(established); err == nil {
		t.Error("the established connection was not cut")
	}
	if drops := packets(t, plane, "drop"); drops < 1 {
		t.Errorf("plexus_networkpolicy_packets_total{namespace=a,policy=deny,direction=ingress,verdict=drop} = %v, want ≥ 1", drops)
	}

	d.Policy.Enabled = false
	if res := plane.Sync(ctx, d, false); res.Err() != nil || !res.Wrote {
		t.Fatalf("sync disabled: %+v", res)
	}
	if out := node.Exec(t, "nft", "list", "tables"); strings.Contains(out, policynft.TableName) {
		t.Errorf("policy table left after disabling: %s", out)
	}
	if err := connect(clientNS, target); err != nil {
		t.Errorf("disabled: %v", err)
	}
}

// packets returns the sample of plexus_networkpolicy_packets_total for policy a/deny, ingress,
// verdict, as a scrape of a registry with the plane's collector reads it.
func packets(t *testing.T, plane *agent.PolicyPlane, verdict string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(agent.NewPolicyPacketsCollector(plane))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"namespace": "a", "policy": "deny", "direction": "ingress", "verdict": verdict}
	for _, f := range families {
		if f.GetName() != "plexus_networkpolicy_packets_total" {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no sample %v in the scrape", want)
	return 0
}

// startLineEcho serves, in ns, a TCP echo that keeps each connection open (one line back per
// line), and returns its port.
func startLineEcho(t *testing.T, ns *testnet.Netns) uint16 {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", ":0"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// dialIn opens a TCP connection from ns to target.
func dialIn(t *testing.T, ns *testnet.Netns, target netip.AddrPort) net.Conn {
	t.Helper()
	c, err := tryDial(ns, target)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tryDial(ns *testnet.Netns, target netip.AddrPort) (c net.Conn, err error) {
	err = ns.Do(func() (err error) { c, err = net.DialTimeout("tcp", target.String(), time.Second); return err })
	return c, err
}

// connect opens a new connection from ns to target and does one round trip on it.
func connect(ns *testnet.Netns, target netip.AddrPort) error {
	c, err := tryDial(ns, target)
	if err != nil {
		return err
	}
	defer c.Close()
	return lineRoundTrip(c)
}

// lineRoundTrip sends a line on c and waits a second for it to come back.
func lineRoundTrip(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	buf := make([]byte, 5)
	_, err := io.ReadFull(c, buf)
	return err
}
