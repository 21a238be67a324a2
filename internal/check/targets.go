package check

import (
	"fmt"
	"net"
	"strconv"

	"github.com/plexus-net/plexus/internal/probe"
)

// The checks, in the matrix's column order.
const (
	CheckPodToPod       = "pod→pod"
	CheckPodToClusterIP = "pod→ClusterIP"
	CheckPodToDNS       = "pod→DNS"
	CheckPodToAPI       = "pod→API"
	CheckIsolation      = "policy isolation"
	CheckNodeToNodePort = "node→NodePort"
	CheckNodeToPod      = "node→pod"
	// CheckPodToIngress: HTTP through the ingress controller Plexus runs (its ClusterIPs and
	// load-balancer addresses) to a probe server; only when spec.ingress is enabled.
	CheckPodToIngress = "pod→ingress"
)

// Columns lists every check in the order the matrix prints them.
var Columns = []string{CheckPodToPod, CheckPodToClusterIP, CheckPodToDNS, CheckPodToAPI, CheckIsolation, CheckNodeToNodePort, CheckNodeToPod, CheckPodToIngress}

// Cluster is what the probes aim at, learnt once the servers run.
type Cluster struct {
	Nodes []Node
	// Servers maps a node to its server pod's IPs (every family).
	Servers map[string][]string
	// IsolatedIPs are the isolated pod's IPs; empty when NetworkPolicy is not enforced.
	IsolatedIPs []string
	// ClusterIPs are the check Service's; NodePortTCP its TCP node port.
	ClusterIPs  []string
	NodePortTCP int32
	// APIServer are the `kubernetes` Service's ClusterIPs with its port.
	APIServer []string
	APIPort   int32
	// DNSNames are resolved through the cluster DNS; empty when DNS is not Plexus'.
	DNSNames []string
	// IngressAddresses are host:port of the ingress controller's Service (ClusterIPs and
	// load-balancer addresses, HTTP port); IngressHost the Host its rule for the check matches.
	// Empty when Plexus runs no ingress controller.
	IngressAddresses []string
	IngressHost      string
}

// ColumnsFor lists the checks that apply to c: every one but the ingress check when no ingress
// controller runs.
func ColumnsFor(c Cluster) []string {
	if len(c.IngressAddresses) > 0 {
		return Columns
	}
	out := make([]string, 0, len(Columns))
	for _, col := range Columns {
		if col != CheckPodToIngress {
			out = append(out, col)
		}
	}
	return out
}

func hostPort(ip string, port int32) string { return net.JoinHostPort(ip, strconv.Itoa(int(port))) }

func family(ip string) string {
	if p := net.ParseIP(ip); p != nil && p.To4() == nil {
		return "v6"
	}
	return "v4"
}

// PodTargets are the probes a pod-network client runs: every server pod in every family, the
// ClusterIP in every family over TCP and UDP, DNS names, the API server, and the isolated pod
// (which must not answer).
func PodTargets(c Cluster) []probe.Target {
	var out []probe.Target
	for _, n := range c.Nodes {
		for _, ip := range c.Servers[n.Name] {
			out = append(out, probe.Target{Check: CheckPodToPod, Name: fmt.Sprintf("%s %s", n.Name, ip), Kind: probe.TCP, Address: hostPort(ip, ServerPort)})
		}
	}
	for _, ip := range c.ClusterIPs {
		for _, k := range []probe.Kind{probe.TCP, probe.UDP} {
			out = append(out, probe.Target{Check: CheckPodToClusterIP, Name: fmt.Sprintf("%s %s", k, ip), Kind: k, Address: hostPort(ip, ServerPort)})
		}
	}
	for _, name := range c.DNSNames {
		out = append(out, probe.Target{Check: CheckPodToDNS, Name: name, Kind: probe.DNS, Address: name})
	}
	for _, ip := range c.APIServer {
		out = append(out, probe.Target{Check: CheckPodToAPI, Name: ip, Kind: probe.Connect, Address: hostPort(ip, c.APIPort)})
	}
	for _, a := range c.IngressAddresses {
		out = append(out, probe.Target{Check: CheckPodToIngress, Name: a + " " + c.IngressHost, Kind: probe.HTTP, Address: a, Host: c.IngressHost})
	}
	for _, ip := range c.IsolatedIPs {
		out = append(out, probe.Target{Check: CheckIsolation, Name: ip + " (must be refused)", Kind: probe.TCP, Address: hostPort(ip, ServerPort), ExpectDenied: true})
	}
	return out
}

// HostTargets are the probes a host-network client runs: the NodePort on every node's addresses and
// every server pod (the node reaches pods; a policy never blocks its own node, but here most pods are
// on other nodes, and none is isolated).
func HostTargets(c Cluster) []probe.Target {
	var out []probe.Target
	for _, n := range c.Nodes {
		for _, ip := range n.IPs {
			out = append(out, probe.Target{Check: CheckNodeToNodePort, Name: fmt.Sprintf("%s %s", n.Name, ip), Kind: probe.TCP, Address: hostPort(ip, c.NodePortTCP)})
		}
	}
	for _, n := range c.Nodes {
		for _, ip := range c.Servers[n.Name] {
			out = append(out, probe.Target{Check: CheckNodeToPod, Name: fmt.Sprintf("%s %s", n.Name, ip), Kind: probe.TCP, Address: hostPort(ip, ServerPort)})
		}
	}
	return out
}
