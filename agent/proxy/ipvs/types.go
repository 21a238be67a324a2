package ipvs

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Protocol is a virtual server's L4 protocol.
type Protocol string

// The protocols Kubernetes Services carry.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Schedulers Plexus offers (ClusterNetwork serviceProxy.ipvs.scheduler).
// The VM loads each one's module.
const (
	// RoundRobin cycles through the real servers.
	RoundRobin = "rr"
	// WeightedRoundRobin is RoundRobin honouring weights.
	WeightedRoundRobin = "wrr"
	// LeastConnection picks the real server with the fewest connections.
	LeastConnection = "lc"
	// WeightedLeastConnection is LeastConnection honouring weights.
	WeightedLeastConnection = "wlc"
	// SourceHashing picks by a hash of the client address.
	SourceHashing = "sh"
	// DefaultScheduler is used when none is configured.
	DefaultScheduler = RoundRobin
	// DefaultWeight is every real server's weight: endpoints are equal.
	DefaultWeight = 1
)

// VirtualServer is an IPVS service: an address, protocol and port that
// IPVS balances over real servers. Address, Protocol and Port are its key.
type VirtualServer struct {
	// Address is the virtual IP (a ClusterIP, external or load-balancer IP,
	// or a node address for a NodePort).
	Address netip.Addr
	// Protocol is the L4 protocol.
	Protocol Protocol
	// Port is the service (or node) port.
	Port uint16
	// Scheduler is the IPVS scheduler name, e.g. RoundRobin.
	Scheduler string
	// Persistence, when non-zero, makes IPVS send a client (by source
	// address) to the same real server for this long after its last
	// connection: sessionAffinity ClientIP with its timeout.
	Persistence time.Duration
}

// VirtualServerKey identifies a virtual server in the kernel.
type VirtualServerKey struct {
	// Address, Protocol and Port are those of the virtual server.
	Address  netip.Addr
	Protocol Protocol
	Port     uint16
}

// Key returns the virtual server's identity.
func (v VirtualServer) Key() VirtualServerKey {
	return VirtualServerKey{Address: v.Address, Protocol: v.Protocol, Port: v.Port}
}

// Equal reports whether v and o have the same key and attributes.
func (v VirtualServer) Equal(o VirtualServer) bool { return v == o }

// String prints the key and attributes, e.g. "TCP 10.96.0.10:53 rr
// persistent 3h0m0s".
func (v VirtualServer) String() string {
	s := v.Key().String() + " " + v.Scheduler
	if v.Persistence > 0 {
		s += " persistent " + v.Persistence.String()
	}
	return s
}

// String prints the key as ipvsadm does, e.g. "TCP [fd10:96::a]:53".
func (k VirtualServerKey) String() string {
	return fmt.Sprintf("%s %s", k.Protocol, netip.AddrPortFrom(k.Address, k.Port))
}

// Compare orders keys by address, protocol, port.
func (k VirtualServerKey) Compare(o VirtualServerKey) int {
	return cmp.Or(k.Address.Compare(o.Address), strings.Compare(string(k.Protocol), string(o.Protocol)), cmp.Compare(k.Port, o.Port))
}

// RealServer is an IPVS destination: an endpoint behind a virtual server,
// reached by masquerading (NAT). Address and Port are its key within the
// virtual server.
type RealServer struct {
	// Address is the endpoint's IP, of the virtual server's family.
	Address netip.Addr
	// Port is the endpoint's port.
	Port uint16
	// Weight is its share of new connections; 0 takes none.
	Weight int
}

// Equal reports whether r and o have the same key and weight.
func (r RealServer) Equal(o RealServer) bool { return r == o }

// AddrPort is the real server's key.
func (r RealServer) AddrPort() netip.AddrPort { return netip.AddrPortFrom(r.Address, r.Port) }

// String prints e.g. "10.244.1.5:8080 weight 1".
func (r RealServer) String() string {
	return fmt.Sprintf("%s weight %d", r.AddrPort(), r.Weight)
}

// compareRealServers orders real servers by address and port.
func compareRealServers(a, b RealServer) int {
	return a.AddrPort().Compare(b.AddrPort())
}
