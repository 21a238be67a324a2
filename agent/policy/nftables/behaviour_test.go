package nftables

import (
	"fmt"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

// behaviourCases cover every semantic point of the model's table tests
// (agent/policy/evaluate_test.go), SCTP included: this kernel has no SCTP,
// so the tracer is where SCTP rules are proven to behave.
var behaviourCases = []struct {
	name     string
	policies []*networkingv1.NetworkPolicy
}{
	{"no policy", nil},
	{"default deny ingress", pt.NPs(pt.NP("a", "deny", "", nil, nil, nil))},
	{"default deny egress", pt.NPs(pt.NP("a", "deny", "", pt.EgressOnly, nil, nil))},
	{"empty policyTypes with egress rules", pt.NPs(pt.NP("a", "p", "x", nil, nil, pt.EgressRules(pt.Out(pt.Peers(pt.PodPeer("y"))))))},
	{"policyTypes limit the rules read", pt.NPs(
		pt.NP("a", "e", "x", pt.EgressOnly, pt.IngressRules(pt.In(nil)), nil),
		pt.NP("c", "i", "", pt.IngressOnly, nil, pt.EgressRules(pt.Out(nil))))},
	{"pod, namespace and combined selectors", pt.NPs(
		pt.NP("a", "from-y", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")))), nil),
		pt.NP("a", "from-b", "y", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.NSPeer("b")))), nil),
		pt.NP("c", "from-any-x", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.NSPodPeer("", "x")))), nil))},
	{"empty selectors", pt.NPs(
		pt.NP("a", "ns", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("")))), nil),
		pt.NP("c", "all-ns", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.NSPeer("")))), nil))},
	{"ipBlock with and without except, both directions", pt.NPs(
		pt.NP("a", "ext", "x", pt.Both, pt.IngressRules(pt.In(pt.BlockPeers(true))), pt.EgressRules(pt.Out(pt.BlockPeers(true)))),
		pt.NP("a", "ext2", "y", pt.IngressOnly, pt.IngressRules(pt.In(append(pt.BlockPeers(false), pt.PodPeer("x")), pt.Port(tcp, 80))), nil))},
	{"ports: TCP, UDP, SCTP, protocol only, endPort", pt.NPs(
		pt.NP("a", "p", "x", pt.Both,
			pt.IngressRules(pt.In(nil, pt.Port(tcp, 80), pt.Port(udp, 53), pt.Port(sctp, 9), pt.PortRange(sctp, 100, 200))),
			pt.EgressRules(pt.Out(nil, pt.ProtoOnly(sctp), pt.PortRange(udp, 30000, 30010)))),
		pt.NP("c", "q", "", pt.IngressOnly, pt.IngressRules(pt.In(nil, pt.ProtoOnly(udp))), nil))},
	{"named ports: ingress per destination, egress per peer, SCTP", pt.NPs(
		pt.NP("a", "in", "", pt.IngressOnly, pt.IngressRules(pt.In(nil, pt.NamedPort(tcp, "http"), pt.NamedPort(udp, "dns"), pt.NamedPort(sctp, "http"))), nil),
		pt.NP("c", "out", "", pt.EgressOnly, nil, pt.EgressRules(pt.Out(pt.Peers(pt.NSPeer("")), pt.NamedPort(tcp, "http"), pt.Port(tcp, 80)))))},
	{"union of policies and rules", pt.NPs(
		pt.NP("a", "deny", "", pt.Both, nil, nil),
		pt.NP("a", "p1", "x", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, 80)), pt.In(pt.Peers(pt.NSPeer("b")))), nil),
		pt.NP("a", "p2", "", pt.Both, pt.IngressRules(pt.In(pt.Peers(pt.NSPodPeer("", "w")), pt.Port(udp, 53))), pt.EgressRules(pt.Out(pt.Peers(pt.PodPeer("")), pt.Port(tcp, 8080)))))},
}

var (
	traceEndpoints = []string{"a/x", "a/y", "c/w", "b/z", "node", "node2", "ext", "ext-except", "ext-far"}
	tracePorts     = []uint16{9, 53, 80, 81, 150, 7070, 8080, 9090, 30005}
	traceProtos    = []policy.Protocol{policy.TCP, policy.UDP, policy.SCTP, 1}
)

// TestTracedTableMatchesTheModel programs each case into the fake and
// traces every flow between the test endpoints (both families; TCP, UDP,
// SCTP and ICMP; a spread of ports): the table's verdict must be the
// model's, and the counters it counts must name the deciding policies.
func TestTracedTableMatchesTheModel(t *testing.T) {
	for _, tc := range behaviourCases {
		t.Run(tc.name, func(t *testing.T) {
			fake, e := newFake()
			m := testModel(t, tc.policies...)
			mustSync(t, e, m, false)
			tr := newPolicyTracer(fake, pt.NodeIPs())
			flows, denied := 0, 0
			for fam := range pt.Families {
				for _, src := range traceEndpoints {
					for _, dst := range traceEndpoints {
						for _, proto := range traceProtos {
							for _, port := range tracePorts {
								if proto == 1 {
									port = 0
								}
								f := policy.Flow{Src: pt.Addr(fam, src), Dst: pt.Addr(fam, dst), Protocol: proto, Port: port}
								want := m.Evaluate(f)
								got, counted := tr.verdict(f)
								flows++
								if got == policy.Deny {
									denied++
								}
								if got != want.Verdict {
									t.Fatalf("%s -> %s: table says %s, model says\n%s", src, dst, got, want)
								}
								if w := expectedCounters(m, want); !slices.Equal(counted, w) {
									t.Fatalf("%s -> %s %s: counted %v, want %v\n%s", src, dst, f, counted, w, want)
								}
							}
						}
					}
				}
			}
			t.Logf("%d flows traced, %d denied", flows, denied)
		})
	}
}

// expectedCounters returns the counters the table must count for a
// result: per direction a rule allowed, the allow counter of the
// policy-set chain of the pod it guards; at the first deny that chain's
// drop counter (the packet goes no further).
func expectedCounters(m *policy.Model, r policy.Result) []string {
	var out []string
	for _, d := range r.Decisions {
		switch {
		case d.Verdict == policy.Allow && d.Rule >= 0:
			chain := PodChains(m, podNamed(m, d.Pod))[d.Direction]
			out = append(out, chainCounter(chain, "allow"))
		case d.Verdict == policy.Deny:
			chain := PodChains(m, podNamed(m, d.Pod))[d.Direction]
			return append(out, chainCounter(chain, "drop"))
		}
	}
	return out
}

func podNamed(m *policy.Model, name string) *policy.LocalPod {
	for i := range m.Pods {
		if m.Pods[i].String() == name {
			return m.Pods[i]
		}
	}
	panic(fmt.Sprintf("no local pod %s", name))
}
