package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// Protocol is an IP protocol number (6 TCP, 17 UDP, 132 SCTP, …).
type Protocol uint8

// The protocols a NetworkPolicy port may name.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String returns the protocol as nft spells it.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	}
	return fmt.Sprintf("%d", uint8(p))
}

// Direction is the side of a pod a policy rule guards.
type Direction uint8

// Directions.
const (
	Ingress Direction = iota
	Egress
)

// String returns "ingress" or "egress".
func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// PolicyKey names a NetworkPolicy.
type PolicyKey struct {
	Namespace, Name string
}

// String returns namespace/name.
func (k PolicyKey) String() string { return k.Namespace + "/" + k.Name }

func comparePolicyKeys(a, b PolicyKey) int {
	if a.Namespace != b.Namespace {
		if a.Namespace < b.Namespace {
			return -1
		}
		return 1
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}

// PortRange is the destination ports First..Last of one protocol
// (First == Last for a single port; 0..65535 for "all ports").
type PortRange struct {
	Protocol    Protocol
	First, Last uint16
}

// Contains reports whether the range holds proto/port.
func (r PortRange) Contains(proto Protocol, port uint16) bool {
	return r.Protocol == proto && r.First <= port && port <= r.Last
}

// String returns "tcp/80" or "tcp/80-90".
func (r PortRange) String() string {
	if r.First == r.Last {
		return fmt.Sprintf("%s/%d", r.Protocol, r.First)
	}
	return fmt.Sprintf("%s/%d-%d", r.Protocol, r.First, r.Last)
}

// AddrPort is one resolved named port: an address with a protocol and port.
type AddrPort struct {
	Addr     netip.Addr
	Protocol Protocol
	Port     uint16
}

// String returns "10.0.0.1 tcp/8080".
func (a AddrPort) String() string { return fmt.Sprintf("%s %s/%d", a.Addr, a.Protocol, a.Port) }

func compareAddrPorts(a, b AddrPort) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if a.Protocol != b.Protocol {
		return int(a.Protocol) - int(b.Protocol)
	}
	return int(a.Port) - int(b.Port)
}

// Rule is one compiled ingress or egress rule of a policy. A flow matches
// when its peer (the source for ingress, the destination for egress) is
// matched and its destination port is matched.
type Rule struct {
	// Index is the rule's position in the policy's ingress or egress list.
	Index int
	// AnyPeer: the rule lists no from/to, every peer matches.
	AnyPeer bool
	// HasPodPeers: the rule has selector peers; PeerPods are the
	// addresses of the pods they select, sorted.
	HasPodPeers bool
	PeerPods    []netip.Addr
	// HasBlockPeers: the rule has ipBlock peers; PeerBlocks are their
	// addresses less the excepts.
	HasBlockPeers bool
	PeerBlocks    AddrSet
	// AnyPort: the rule lists no ports, every port of every protocol
	// matches.
	AnyPort bool
	// Ports are the numeric ports and ranges, sorted and merged.
	Ports []PortRange
	// NamedPorts are the named ports resolved per pod: for ingress each
	// selected local pod's address with the number its container gives the
	// name, for egress each peer pod's. A pod without the name is absent.
	NamedPorts []AddrPort
	// HasNamedPorts tells that the rule names ports, even if none resolves
	// (a backend keeps the same shape while pods come and go).
	HasNamedPorts bool
	// PodPeerKey and BlockPeerKey identify the selector and ipBlock peers
	// by their spec (canonical selectors with the policy's namespace where
	// it matters; blocks with their excepts): rules with equal keys have
	// equal PeerPods / PeerBlocks, in any policy, so a backend may share
	// one set between them. Empty when there are none, or when a selector
	// cannot be read (the peers are then the rule's alone).
	PodPeerKey, BlockPeerKey string
	// NamedKey identifies NamedPorts the same way for egress rules (peers
	// and port names); empty for ingress, whose named ports depend on the
	// pods the policy selects.
	NamedKey string
}

// MatchesPort reports whether the rule allows proto/port to the
// destination dst (dst resolves named ports).
func (r *Rule) MatchesPort(dst netip.Addr, proto Protocol, port uint16) bool {
	if r.AnyPort {
		return true
	}
	for _, p := range r.Ports {
		if p.Contains(proto, port) {
			return true
		}
	}
	_, found := slices.BinarySearchFunc(r.NamedPorts, AddrPort{Addr: dst, Protocol: proto, Port: port}, compareAddrPorts)
	return found
}

// MatchesPeer reports whether addr is one of the rule's peers.
func (r *Rule) MatchesPeer(addr netip.Addr) bool {
	if r.AnyPeer || r.PeerBlocks.Contains(addr) {
		return true
	}
	_, found := slices.BinarySearchFunc(r.PeerPods, addr.Unmap(), netip.Addr.Compare)
	return found
}

// Policy is one compiled NetworkPolicy that selects at least one local pod.
type Policy struct {
	Key PolicyKey
	// IsolatesIngress / IsolatesEgress come from policyTypes (with the
	// API's defaults when it is empty).
	IsolatesIngress, IsolatesEgress bool
	// Ingress and Egress are the rules of the isolated directions only.
	Ingress, Egress []Rule
}

// Rules returns the policy's rules for direction d.
func (p *Policy) Rules(d Direction) []Rule {
	if d == Egress {
		return p.Egress
	}
	return p.Ingress
}

// Isolates reports whether the policy isolates direction d.
func (p *Policy) Isolates(d Direction) bool {
	if d == Egress {
		return p.IsolatesEgress
	}
	return p.IsolatesIngress
}

// LocalPod is a pod on this node that policies may select.
type LocalPod struct {
	Namespace, Name string
	// IPs are the pod's addresses, sorted.
	IPs []netip.Addr
	// Ingress and Egress list, sorted, the policies that isolate the pod
	// in that direction; empty means the direction is not isolated.
	Ingress, Egress []PolicyKey
}

// String returns namespace/name.
func (p *LocalPod) String() string { return p.Namespace + "/" + p.Name }

// Isolating returns the policies that isolate the pod for direction d.
func (p *LocalPod) Isolating(d Direction) []PolicyKey {
	if d == Egress {
		return p.Egress
	}
	return p.Ingress
}

// Model is the compiled, backend-neutral NetworkPolicy state of one node.
type Model struct {
	// NodeIPs are the node's own addresses, sorted: traffic from them to
	// a local pod is always allowed.
	NodeIPs []netip.Addr
	// Pods are the local pods, sorted by namespace/name. Models of one
	// Compiler share the *LocalPod of a pod whose addresses and isolating
	// policies did not change (a backend tells unchanged pods by pointer).
	Pods []*LocalPod
	// Policies holds every policy that selects at least one local pod.
	Policies map[PolicyKey]*Policy
	// Errors lists the policies the compiler could not read fully (a
	// selector the API server should have refused); they fail closed.
	Errors []error

	addrs *addrIndex // local pod index by address, built on first use
}

// addrIndex maps the local pods' addresses to their index in Model.Pods.
// It is built on first use: a sync that never evaluates a flow does not
// pay for it, and models with the same pods share one.
type addrIndex struct {
	once sync.Once
	byIP map[netip.Addr]int
}

// PodByIP returns the local pod with address a, or nil.
func (m *Model) PodByIP(a netip.Addr) *LocalPod {
	if m.addrs == nil {
		return nil
	}
	m.addrs.once.Do(func() {
		m.addrs.byIP = make(map[netip.Addr]int, 2*len(m.Pods))
		for i, p := range m.Pods {
			for _, a := range p.IPs {
				m.addrs.byIP[a] = i
			}
		}
	})
	if i, ok := m.addrs.byIP[a]; ok {
		return m.Pods[i]
	}
	return nil
}

// IsNodeIP reports whether a is one of the node's own addresses.
func (m *Model) IsNodeIP(a netip.Addr) bool {
	_, found := slices.BinarySearchFunc(m.NodeIPs, a, netip.Addr.Compare)
	return found
}

// SortedPolicies returns the policies ordered by namespace/name.
func (m *Model) SortedPolicies() []*Policy {
	out := make([]*Policy, 0, len(m.Policies))
	for _, p := range m.Policies {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Policy) int { return comparePolicyKeys(a.Key, b.Key) })
	return out
}
