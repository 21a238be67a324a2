package nftables

import (
	"net/netip"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

// TestKernelPolicyChangeThroughNetlink changes one policy step by step
// (its port, a rule added, the policy deleted and added back), each step
// one structural netlink transaction, and checks real packets after each:
// the flows the step is about explicitly, and every probe of both
// families against the model.
func TestKernelPolicyChangeThroughNetlink(t *testing.T) {
	l := newKLab(t)
	web := func(port int, more ...networkingv1.NetworkPolicyIngressRule) *networkingv1.NetworkPolicy {
		rules := append(pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port("TCP", port))), more...)
		return pt.NP("a", "web", "x", pt.IngressOnly, rules, nil)
	}
	// Another policy stays throughout: its chain, sets and pods must
	// not be disturbed by the changes next to it.
	keep := pt.NP("c", "keep", "w", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.NSPeer("a")), pt.Port("TCP", 81))), nil)
	fromW := pt.In(pt.Peers(pt.NSPodPeer("", "w")), pt.ProtoOnly("UDP"))
	type flow struct {
		from, to string
		port     uint16
		proto    policy.Protocol
		allowed  bool
	}
	steps := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		flows    []flow
	}{
		{"y to x on TCP 80", []*networkingv1.NetworkPolicy{web(80), keep}, []flow{
			{"a/y", "a/x", 80, policy.TCP, true}, {"a/y", "a/x", 81, policy.TCP, false}, {"c/w", "a/x", 81, policy.UDP, false},
		}},
		{"port changed to 81", []*networkingv1.NetworkPolicy{web(81), keep}, []flow{
			{"a/y", "a/x", 80, policy.TCP, false}, {"a/y", "a/x", 81, policy.TCP, true},
		}},
		{"rule added: UDP from w", []*networkingv1.NetworkPolicy{web(81, fromW), keep}, []flow{
			{"c/w", "a/x", 81, policy.UDP, true}, {"c/w", "a/x", 81, policy.TCP, false}, {"a/y", "a/x", 81, policy.TCP, true},
		}},
		{"policy deleted", []*networkingv1.NetworkPolicy{keep}, []flow{
			{"a/y", "a/x", 80, policy.TCP, true}, {"c/w", "a/x", 80, policy.TCP, true}, {"a/x", "c/w", 81, policy.TCP, true}, {"a/x", "c/w", 80, policy.TCP, false},
		}},
		{"policy added back", []*networkingv1.NetworkPolicy{web(80), keep}, []flow{
			{"a/y", "a/x", 80, policy.TCP, true}, {"c/w", "a/x", 80, policy.TCP, false},
		}},
	}
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			m := policy.Compile(l.input(step.policies...))
			structural := l.enf.structureWrites
			l.sync(t, m)
			if i > 0 && l.enf.structureWrites != structural+1 {
				t.Fatalf("not written in one structural netlink transaction")
			}
			for _, f := range step.flows {
				for fam := range klabAddrs[f.to] {
					dst := netip.AddrPortFrom(klabAddrs[f.to][fam], f.port)
					got := probe(l.ns[f.from], dst, f.proto)
					for try := 1; f.allowed && !got && try < probeAttempts; try++ {
						got = probe(l.ns[f.from], dst, f.proto)
					}
					if got != f.allowed {
						t.Errorf("%s -> %s %s: allowed %v, want %v", f.from, dst, f.proto, got, f.allowed)
					}
				}
			}
			l.checkMatrix(t, m)
		})
	}
}
