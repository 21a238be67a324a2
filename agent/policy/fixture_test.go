package policy

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

// Short names for the shared fixture (see policytest).
var (
	families     = pt.Families
	ip           = pt.IP
	addrOf       = pt.Addr
	np           = pt.NP
	podPeer      = pt.PodPeer
	nsPeer       = pt.NSPeer
	nsPodPeer    = pt.NSPodPeer
	blockPeers   = pt.BlockPeers
	port         = pt.Port
	portRange    = pt.PortRange
	namedPortRef = pt.NamedPort
	protoOnly    = pt.ProtoOnly
	in           = pt.In
	out          = pt.Out
	peers        = pt.Peers
	ingressRules = pt.IngressRules
	egressRules  = pt.EgressRules
	ingressOnly  = pt.IngressOnly
	egressOnly   = pt.EgressOnly
	both         = pt.Both
)

func testInput(policies ...*networkingv1.NetworkPolicy) Input {
	return Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Policies: policies, Pods: pt.Pods(), Namespaces: pt.Namespaces()}
}

func mustCompile(t testing.TB, in Input) *Model {
	t.Helper()
	m := Compile(in)
	if len(m.Errors) > 0 {
		t.Fatalf("compile errors: %v", m.Errors)
	}
	return m
}
