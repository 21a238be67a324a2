package nftables

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// expiryBound bounds the wait for a 1 s affinity entry to expire (the
	// kernel's garbage collector removes expired elements in batches).
	expiryBound = 10 * time.Second
	// expiryRounds bounds the rounds of "expire, connect again" until a
	// client lands on the other backend: 2^-12 to fail by chance.
	expiryRounds = 12
)

// affinityService is a ClientIP Service on ips with timeout seconds
// (0: the default).
func affinityService(name string, timeout int32, ips ...string) *corev1.Service {
	s := pt.Service("ns", name, ips, pt.Port("p", corev1.ProtocolTCP, 80))
	s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	if timeout > 0 {
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(timeout)}}
	}
	return s
}

// TestKernelAffinityDualStackAndIPv6: a dual-stack ClientIP NodePort
// Service sticks in both families, from a pod (prerouting), from the node
// (output) and from outside through the node port (masqueraded), the IPv6
// choice leaves no ct mark behind, and an IPv6-only Service (also one
// added through the netlink writer) sticks too while a Service without
// affinity is still balanced.
func TestKernelAffinityDualStackAndIPv6(t *testing.T) {
	l := newLab(t)
	w := &world{}
	aff := affinityService("aff", 0, "10.96.0.50", "fd00:10:96::50")
	aff.Spec.Type = corev1.ServiceTypeNodePort
	aff.Spec.Ports = []corev1.ServicePort{pt.NodePortPort("p", corev1.ProtocolTCP, 80, 30090)}
	w.add(aff)
	w.slices = append(w.slices, l.backends("aff", 0, true, true)...)
	w.slices = append(w.slices, l.backends("aff", 1, true, true)...)
	w.add(affinityService("aff6", 0, "fd00:10:96::51"), l.backends("aff6", 1, true, true)...)
	w.add(pt.Service("ns", "web6", []string{"fd00:10:96::10"}, pt.Port("p", corev1.ProtocolTCP, 80)), l.backends("web6", 1, true, true)...)
	// An endpoint on the node itself (host network): its connections end
	// in the node's input path, not in nat-postrouting.
	hostPort := testnet.ServeName(t, l.node1, "node1", 0)
	w.add(affinityService("host6", 0, "fd00:10:96::53"),
		pt.Slice("ns", "host6", "host6-1", "p", corev1.ProtocolTCP, int32(hostPort), pt.EP{IP: node1IPs[1].String(), Node: "node1"}))
	l.sync(t, w)

	for _, target := range []netip.AddrPort{vip("10.96.0.50", 80), vip("fd00:10:96::50", 80), vip("fd00:10:96::51", 80)} {
		for _, from := range []*testnet.Netns{l.client, l.node1} {
			if names, _ := calls(t, from, target, balanceConns); len(names) != 1 {
				t.Errorf("affinity %s from %s: backends hit %v, want one", target, from, names)
			}
		}
	}
	// Through the node's NodePort from outside (masqueraded): keyed by
	// the real client, before SNAT.
	for _, nodeIP := range node1IPs {
		if names, _ := calls(t, l.outside, netip.AddrPortFrom(nodeIP, 30090), balanceConns); len(names) != 1 {
			t.Errorf("affinity NodePort %s from outside: backends hit %v, want one", nodeIP, names)
		}
	}
	if names, _ := calls(t, l.client, vip("fd00:10:96::10", 80), balanceConns); len(names) != 2 {
		t.Errorf("IPv6 Service without affinity: backends hit %v, want both", names)
	}
	if names, _ := calls(t, l.client, vip("fd00:10:96::53", 80), 3); names["node1"] != 3 {
		t.Errorf("affinity Service with a host-network endpoint: backends hit %v, want node1", names)
	}
	// A Service added later with a timeout already in use: its
	// affinity-vips-v6 element goes through the netlink writer.
	w.add(affinityService("late6", 0, "fd00:10:96::54"), l.backends("late6", 1, true, true)...)
	l.sync(t, w)
	if st := l.p.Stats(); !st.Netlink {
		t.Errorf("adding an IPv6 affinity Service did not go through netlink: %+v", st)
	}
	if names, _ := calls(t, l.client, vip("fd00:10:96::54", 80), balanceConns); len(names) != 1 {
		t.Errorf("affinity Service added through netlink: backends hit %v, want one", names)
	}
	// The choice rides in the ct mark from the services chain to
	// nat-postrouting (nat-input) only; connections keep mark 0.
	for _, v := range []string{"fd00:10:96::50", "fd00:10:96::53"} {
		out := l.node1.Exec(t, "conntrack", "-L", "-f", "ipv6", "-d", v)
		if !strings.Contains(out, "mark=0") || strings.Contains(out, "mark=1") {
			t.Errorf("conntrack entries of the IPv6 affinity VIP %s keep a mark:\n%s", v, out)
		}
	}
}

// TestKernelAffinityIPv6Expires: an IPv6 client sticks while its entry
// lives; once the entry timed out its next connection is a fresh choice,
// so over a few expiries it reaches the other backend too.
func TestKernelAffinityIPv6Expires(t *testing.T) {
	l := newLab(t)
	w := &world{}
	w.add(affinityService("short", 1, "fd00:10:96::52"), l.backends("short", 1, true, true)...)
	l.sync(t, w)
	target := vip("fd00:10:96::52", 80)
	seen := map[string]bool{}
	for round := 0; round < expiryRounds && len(seen) < 2; round++ {
		names, _ := calls(t, l.client, target, 5)
		if len(names) != 1 {
			t.Fatalf("round %d: backends hit %v within the timeout, want one", round, names)
		}
		for n := range names {
			seen[n] = true
		}
		waitAffinityEmpty(t, l.node1)
	}
	if len(seen) != 2 {
		t.Errorf("after %d expiries the client only ever reached %v, want both backends", expiryRounds, seen)
	}
}

// waitAffinityEmpty polls the kernel's affinity-v6 map until its entries
// have expired.
func waitAffinityEmpty(t *testing.T, node *testnet.Netns) {
	t.Helper()
	var out string
	expired := testnet.Poll(expiryBound, 100*time.Millisecond, func() bool {
		out = node.Exec(t, "nft", "list", "map", string(TableFamily), TableName, famV6.name(mapAffinity))
		return !strings.Contains(out, "elements")
	})
	if !expired {
		t.Fatalf("affinity-v6 entries did not expire within %s:\n%s", expiryBound, out)
	}
}
