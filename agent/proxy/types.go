package proxy

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

// Family is an IP family of a service port.
type Family = ipfamily.Family

const (
	// IPv4 is the IPv4 family.
	IPv4 = ipfamily.IPv4
	// IPv6 is the IPv6 family.
	IPv6 = ipfamily.IPv6
)

// FamilyOf returns the family of a (IPv4 for an IPv4-mapped address).
func FamilyOf(a netip.Addr) Family { return ipfamily.Of(a) }

// VIPKind says how traffic reaches a virtual address.
type VIPKind uint8

const (
	// ClusterIP is the Service's cluster IP; it uses the cluster endpoints.
	ClusterIP VIPKind = iota + 1
	// NodePort is one of the node's addresses at the Service's node port;
	// it uses the external endpoints.
	NodePort
	// LoadBalancerIP is a status.loadBalancer.ingress IP (ipMode VIP); it
	// uses the external endpoints.
	LoadBalancerIP
	// ExternalIP is one of spec.externalIPs; it uses the external endpoints.
	ExternalIP
)

// String names the kind as the Service API does.
func (k VIPKind) String() string {
	switch k {
	case ClusterIP:
		return "ClusterIP"
	case NodePort:
		return "NodePort"
	case LoadBalancerIP:
		return "LoadBalancerIP"
	case ExternalIP:
		return "ExternalIP"
	}
	return fmt.Sprintf("VIPKind(%d)", k)
}

// External says whether traffic to this kind comes from outside the
// cluster and therefore follows externalTrafficPolicy.
func (k VIPKind) External() bool { return k != ClusterIP }

// VIP is one frontend of a service port: an address and port that traffic
// is sent to.
type VIP struct {
	// Kind is how the address belongs to the Service.
	Kind VIPKind
	// Addr is the virtual (or node) address.
	Addr netip.Addr
	// Port is the port on Addr: the service port, or the node port for
	// NodePort.
	Port uint16
}

// Endpoint is one backend of a service port, from an EndpointSlice.
type Endpoint struct {
	// Addr is the endpoint's address (one per family).
	Addr netip.Addr
	// Port is the port traffic is sent to on Addr.
	Port uint16
	// Ready, Serving and Terminating are the EndpointSlice conditions with
	// their defaults applied (nil ready is true, nil serving is ready, nil
	// terminating is false).
	Ready, Serving, Terminating bool
	// NodeName is the node the endpoint runs on ("" when unknown).
	NodeName string
	// Local is NodeName == the node this model was built for.
	Local bool
	// ZoneHints are the zones in hints.forZones (sorted), empty when none.
	ZoneHints []string
}

// AddrPort is the endpoint's address and port.
func (e Endpoint) AddrPort() netip.AddrPort { return netip.AddrPortFrom(e.Addr, e.Port) }

// String is "addr:port".
func (e Endpoint) String() string { return e.AddrPort().String() }

// Action is what a backend does with new connections to a VIP.
type Action uint8

const (
	// Forward means DNAT to one of the VIP's endpoints.
	Forward Action = iota + 1
	// Reject means the Service has no usable endpoint at all: refuse at
	// once (TCP reset / ICMP unreachable), never let the client time out.
	Reject
	// Drop means endpoints exist but the traffic policy is Local and none
	// runs on this node: drop, as Kubernetes specifies (a load balancer's
	// health check steers traffic away from such nodes).
	Drop
)

// String names the action.
func (a Action) String() string {
	switch a {
	case Forward:
		return "Forward"
	case Reject:
		return "Reject"
	case Drop:
		return "Drop"
	}
	return fmt.Sprintf("Action(%d)", a)
}

// ServicePortName names a port of a Service.
type ServicePortName struct {
	// Namespace and Name are the Service's.
	Namespace, Name string
	// Port is the port's name ("" for a single unnamed port).
	Port string
}

// String is "namespace/name:port".
func (n ServicePortName) String() string { return n.Namespace + "/" + n.Name + ":" + n.Port }

// Key identifies one ServicePort of a Model: a service port in one family.
type Key struct {
	ServicePortName
	// Family is the IP family of this part of the service port.
	Family Family
}

// String is "namespace/name:port/IPv4".
func (k Key) String() string { return k.ServicePortName.String() + "/" + k.Family.String() }

// Compare orders keys by namespace, name, port, family.
func (k Key) Compare(o Key) int {
	for _, c := range [...][2]string{{k.Namespace, o.Namespace}, {k.Name, o.Name}, {k.Port, o.Port}} {
		if c[0] != c[1] {
			if c[0] < c[1] {
				return -1
			}
			return 1
		}
	}
	return int(k.Family) - int(o.Family)
}

// ServicePort is one port of one Service in one family, with everything a
// backend programs for it. Treat it as immutable once built.
type ServicePort struct {
	// Key identifies it.
	Key Key
	// Protocol is TCP, UDP or SCTP.
	Protocol corev1.Protocol
	// ClusterIP is the Service's cluster IP of this family.
	ClusterIP netip.Addr
	// Port is the service port (on the ClusterIP, LB and external IPs).
	Port uint16
	// NodePort is the node port, 0 when none.
	NodePort uint16
	// VIPs are all frontends, sorted by kind, then address.
	VIPs []VIP
	// SessionAffinity is ClientIP affinity.
	SessionAffinity bool
	// AffinityTimeoutSeconds is the affinity timeout (default 10800).
	AffinityTimeoutSeconds int32
	// InternalPolicyLocal and ExternalPolicyLocal are the traffic policies.
	InternalPolicyLocal, ExternalPolicyLocal bool
	// HealthCheckNodePort is the port of the eTP Local health check (0 when
	// none): it answers 200 when LocalEndpoints > 0, 503 otherwise.
	HealthCheckNodePort uint16
	// Endpoints are all endpoints of the port in this family, sorted and
	// de-duplicated, whatever their state.
	Endpoints []Endpoint
	// ClusterEndpoints receive traffic to the ClusterIP: internal traffic
	// policy, terminating fallback and topology hints applied.
	ClusterEndpoints []Endpoint
	// ExternalEndpoints receive traffic to NodePort, LB and external IPs.
	ExternalEndpoints []Endpoint
	// LocalEndpoints counts the usable endpoints on this node (for the
	// health check).
	LocalEndpoints int
	// UsesTopology says topology hints narrowed the cluster endpoints.
	UsesTopology bool

	hash uint64
}

// EndpointsFor returns the endpoints that traffic to a VIP of kind gets.
func (sp *ServicePort) EndpointsFor(kind VIPKind) []Endpoint {
	if kind.External() {
		return sp.ExternalEndpoints
	}
	return sp.ClusterEndpoints
}

// ActionFor returns what to do with new connections to a VIP of kind.
func (sp *ServicePort) ActionFor(kind VIPKind) Action {
	if len(sp.EndpointsFor(kind)) > 0 {
		return Forward
	}
	local := sp.InternalPolicyLocal
	if kind.External() {
		local = sp.ExternalPolicyLocal
	}
	if local && slices.ContainsFunc(sp.Endpoints, usable) {
		return Drop
	}
	return Reject
}

// MasqueradeFor says whether traffic to a VIP of kind is source-NATed to
// the node: external traffic unless externalTrafficPolicy is Local (which
// preserves the client's address). Hairpin traffic (an endpoint reaching
// itself through the Service) is masqueraded whatever the kind; that is
// the backend's job, as only it sees the packet.
func (sp *ServicePort) MasqueradeFor(kind VIPKind) bool {
	return kind.External() && !sp.ExternalPolicyLocal
}

// Hash is a digest of everything a backend programs for the port; two
// ServicePorts with equal keys and hashes program the same. It is stable
// across processes.
func (sp *ServicePort) Hash() uint64 { return sp.hash }

// NodeInfo is what the model needs to know about the node it is built for.
type NodeInfo struct {
	// Name is the node's name (endpoints with this nodeName are local).
	Name string
	// Zone is the node's topology.kubernetes.io/zone ("" when none: hints
	// are then ignored).
	Zone string
	// Addresses are the node's addresses, both families mixed; NodePorts
	// listen on those inside NodePortAddresses.
	Addresses []netip.Addr
	// NodePortAddresses limits NodePorts to node addresses in these CIDRs;
	// empty means all of Addresses.
	NodePortAddresses []netip.Prefix
}

// Model is the desired state of the service proxy on one node.
type Model struct {
	// Ports holds every service port per family.
	Ports map[Key]*ServicePort

	// gen identifies a Model made by a Tracker; base is the gen of the
	// Model it was derived from and touched the keys it may have changed
	// since, so Diff against base inspects only those (0: unknown).
	gen, base uint64
	touched   []Key
	// counts, when set, are the Counts a Tracker kept up to date
	// (nil: Counts walks Ports).
	counts *Counts
}

// Keys returns the model's keys, sorted.
func (m Model) Keys() []Key {
	keys := make([]Key, 0, len(m.Ports))
	for k := range m.Ports {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, Key.Compare)
	return keys
}

// Counts are figures for NodeNetwork status.
type Counts struct {
	// Services is the number of distinct Services, ServicePorts the number
	// of service ports per family, VIPs the frontends, Endpoints the
	// endpoints (per port and family) that receive traffic.
	Services, ServicePorts, VIPs, Endpoints int
}

// Counts returns the model's counts: kept by the Tracker as it updates the
// model (a sync at 10k Services must not walk every port for status
// figures), computed from Ports for a Model made by Build.
func (m Model) Counts() Counts {
	if m.counts != nil {
		return *m.counts
	}
	var c Counts
	svcs := map[[2]string]bool{}
	for k, sp := range m.Ports {
		svcs[[2]string{k.Namespace, k.Name}] = true
		c.addPort(sp, 1)
	}
	c.Services = len(svcs)
	return c
}

// addPort adds (sign 1) or removes (sign -1) one service port's figures,
// but not its Service.
func (c *Counts) addPort(sp *ServicePort, sign int) {
	c.ServicePorts += sign
	c.VIPs += sign * len(sp.VIPs)
	c.Endpoints += sign * len(sp.ClusterEndpoints)
}

// addService adds or removes the ports of one Service, and the Service
// when it has any.
func (c *Counts) addService(sps []*ServicePort, sign int) {
	if len(sps) > 0 {
		c.Services += sign
	}
	for _, sp := range sps {
		c.addPort(sp, sign)
	}
}
