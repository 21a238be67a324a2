package conntrack

import (
	"net"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

func model(t *testing.T, ports ...int) *policy.Model {
	t.Helper()
	var pp = pt.IngressRules(pt.In(nil))
	pp[0].Ports = nil
	for _, p := range ports {
		pp[0].Ports = append(pp[0].Ports, pt.Port("TCP", p))
	}
	m := policy.Compile(policy.Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Pods: pt.Pods(), Namespaces: pt.Namespaces(),
		Policies: pt.NPs(pt.NP("a", "web", "x", pt.IngressOnly, pp, nil))})
	return m
}

func TestCutterCutsWhatIsNoLongerAllowed(t *testing.T) {
	flow := func(fam int, port uint16) policy.Flow {
		return policy.Flow{Src: pt.Addr(fam, "c/w"), Dst: pt.Addr(fam, "a/x"), Protocol: policy.TCP, Port: port}
	}
	all := []policy.Flow{flow(0, 80), flow(0, 81), flow(1, 80), flow(1, 81)}
	prev, next := model(t, 80, 81), model(t, 80)

	fake := &Fake{Flows: slices.Clone(all)}
	n, err := NewCutter(fake, false).Cut(prev, next)
	if err != nil || n != 2 {
		t.Fatalf("Cut = %d, %v; want 2 deleted", n, err)
	}
	if want := []policy.Flow{flow(0, 80), flow(1, 80)}; !slices.Equal(fake.Flows, want) {
		t.Errorf("left %v, want %v", fake.Flows, want)
	}

	kept := &Fake{Flows: slices.Clone(all)}
	if n, err := NewCutter(kept, true).Cut(prev, next); err != nil || n != 0 || len(kept.Flows) != 4 {
		t.Errorf("keepEstablished: Cut = %d, %v, left %d flows; want nothing cut", n, err, len(kept.Flows))
	}
}

func TestFlowOfUsesTheTranslatedDestination(t *testing.T) {
	// A client reaching a ClusterIP: the reply comes from the endpoint.
	ct := &netlink.ConntrackFlow{
		Forward: netlink.IPTuple{SrcIP: net.ParseIP("10.1.0.3"), DstIP: net.ParseIP("10.96.0.10"), Protocol: 6, SrcPort: 40000, DstPort: 80},
		Reverse: netlink.IPTuple{SrcIP: net.ParseIP("10.1.0.1"), DstIP: net.ParseIP("10.1.0.3"), Protocol: 6, SrcPort: 8080, DstPort: 40000},
	}
	got, ok := FlowOf(ct)
	want := policy.Flow{Src: pt.IP("10.1.0.3"), Dst: pt.IP("10.1.0.1"), Protocol: policy.TCP, Port: 8080}
	if !ok || got != want {
		t.Errorf("FlowOf = %v, %v; want %v", got, ok, want)
	}
}
