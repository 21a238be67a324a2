// Package hostport programs pod host ports (the CNI portMappings capability) into one small
// nftables table, inet plexus-hostport, whose object count never depends on the number of pods:
// a fixed set of chains, rules, maps and sets, with one map element per mapping and one set
// element per pod that has any (for hairpin masquerade). plexus-cni writes it at ADD, DEL and GC
// from the mappings it records for every pod on the node.
package hostport

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

// RuntimePortMapping is one entry of the runtime's `runtimeConfig.portMappings` (the CNI
// convention for the portMappings capability; kubelet fills it from a pod's hostPort fields).
type RuntimePortMapping struct {
	// HostPort is the port on the node.
	HostPort int `json:"hostPort"`
	// ContainerPort is the port in the pod.
	ContainerPort int `json:"containerPort"`
	// Protocol is tcp, udp or sctp (any case); empty means tcp.
	Protocol string `json:"protocol"`
	// HostIP is the node address the port is bound to: empty for every local address of every
	// family the pod has, 0.0.0.0 or :: for every local address of that family.
	HostIP string `json:"hostIP"`
}

// Mapping is one programmed host port: traffic to HostIP (any local address when HostIP is the
// zero Addr) on Protocol and HostPort goes to PodIP:ContainerPort. HostIP, when set, and PodIP
// are of one family.
type Mapping struct {
	HostIP        netip.Addr `json:"hostIP,omitzero"`
	HostPort      uint16     `json:"hostPort"`
	Protocol      string     `json:"protocol"`
	PodIP         netip.Addr `json:"podIP"`
	ContainerPort uint16     `json:"containerPort"`
}

// Family is the mapping's IP family (the pod address's).
func (m Mapping) Family() ipfamily.Family { return ipfamily.Of(m.PodIP) }

// Frontend is what the mapping claims on the node, as a message names it and as the key of
// conflicts: "tcp 10.0.0.1:80", "udp *:53 (IPv6)".
func (m Mapping) Frontend() string {
	if !m.HostIP.IsValid() {
		return fmt.Sprintf("%s *:%d (%s)", m.Protocol, m.HostPort, m.Family())
	}
	return fmt.Sprintf("%s %s", m.Protocol, netip.AddrPortFrom(m.HostIP, m.HostPort))
}

// String is the mapping as messages show it: "tcp 10.0.0.1:80 -> 10.244.0.5:8080".
func (m Mapping) String() string {
	return m.Frontend() + " -> " + netip.AddrPortFrom(m.PodIP, m.ContainerPort).String()
}

// compare orders mappings by family, protocol, host address, port and target.
func compare(a, b Mapping) int {
	return cmp.Or(
		cmp.Compare(a.Family(), b.Family()), cmp.Compare(a.Protocol, b.Protocol),
		a.HostIP.Compare(b.HostIP), cmp.Compare(a.HostPort, b.HostPort),
		a.PodIP.Compare(b.PodIP), cmp.Compare(a.ContainerPort, b.ContainerPort))
}

// protocols are the protocols a host port may use, as nft spells them.
var protocols = []string{"tcp", "udp", "sctp"}

// Expand turns the runtime's port mappings of one pod with addresses podIPs into Mappings: a
// mapping without a host IP becomes one per family the pod has, a specific one targets the pod
// address of its family. The result is sorted and free of duplicates. A mapping the pod cannot
// honour (bad port or protocol, a host IP of a family the pod has no address in) is an error.
func Expand(pms []RuntimePortMapping, podIPs []netip.Addr) ([]Mapping, error) {
	var out []Mapping
	for _, pm := range pms {
		ms, err := expandOne(pm, podIPs)
		if err != nil {
			return nil, fmt.Errorf("port mapping %s: %w", describe(pm), err)
		}
		out = append(out, ms...)
	}
	slices.SortFunc(out, compare)
	return slices.Compact(out), nil
}

func expandOne(pm RuntimePortMapping, podIPs []netip.Addr) ([]Mapping, error) {
	proto := strings.ToLower(pm.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	if !slices.Contains(protocols, proto) {
		return nil, fmt.Errorf("protocol %q: want tcp, udp or sctp", pm.Protocol)
	}
	for name, p := range map[string]int{"hostPort": pm.HostPort, "containerPort": pm.ContainerPort} {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("%s %d: want 1-65535", name, p)
		}
	}
	base := Mapping{HostPort: uint16(pm.HostPort), Protocol: proto, ContainerPort: uint16(pm.ContainerPort)}
	if pm.HostIP == "" {
		var out []Mapping
		for _, ip := range podIPs {
			m := base
			m.PodIP = ip.Unmap()
			out = append(out, m)
		}
		return out, nil
	}
	host, err := netip.ParseAddr(pm.HostIP)
	if err != nil {
		return nil, fmt.Errorf("hostIP %q is not an IP address", pm.HostIP)
	}
	host = host.Unmap()
	pod, ok := ipfamily.First(podIPs, ipfamily.Of(host))
	if !ok {
		return nil, fmt.Errorf("hostIP %s is %s but the pod has no %s address", host, ipfamily.Of(host), ipfamily.Of(host))
	}
	m := base
	m.PodIP = pod
	if !host.IsUnspecified() {
		m.HostIP = host
	}
	return []Mapping{m}, nil
}

func describe(pm RuntimePortMapping) string {
	host := pm.HostIP
	if host == "" {
		host = "*"
	}
	return fmt.Sprintf("%s %s:%s -> %d", cmp.Or(pm.Protocol, "tcp"), host, strconv.Itoa(pm.HostPort), pm.ContainerPort)
}

// Conflict returns an error naming the first frontend of add that one of held (the mappings of
// other pods) already claims, nil if none. A wildcard and a specific host IP on the same port do
// not conflict here: the specific one wins for its address (the scheduler keeps such pods apart
// anyway).
func Conflict(held, add []Mapping) error {
	claimed := map[string]Mapping{}
	for _, m := range held {
		claimed[m.Frontend()] = m
	}
	for _, m := range add {
		if other, ok := claimed[m.Frontend()]; ok {
			return fmt.Errorf("host port %s is already mapped to %s", m.Frontend(), netip.AddrPortFrom(other.PodIP, other.ContainerPort))
		}
	}
	return nil
}
