package connectivity

import (
	"net/netip"
	"slices"
	"strings"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Defaults of the probe loop.
const (
	// DefaultPort is the UDP port of every node's probe responder, on its probe addresses only.
	DefaultPort = 9592
	// DefaultFailureThreshold is how many probes in a row a peer must fail to be reported: with
	// DefaultInterval a cut link is reported after about 15 s, and one lost probe never is.
	DefaultFailureThreshold = 3
)

// ProbeAddr is a node's probe address in one of its pod CIDRs: the first (network) address, the
// same address as routing.VTEPAddr, which IPAM never gives to a pod.
func ProbeAddr(podCIDR netip.Prefix) netip.Addr { return podCIDR.Masked().Addr() }

// Peer is a peer node to probe.
type Peer struct {
	// Name is the peer's node name.
	Name string
	// Addrs are its probe addresses, one per family of its pod CIDRs.
	Addrs []netip.Addr
}

// DNSTarget is what the DNS probe asks: Name (a FQDN) of Server (the kube-dns Service IP, port 53).
type DNSTarget struct {
	Server netip.AddrPort
	Name   string
}

// Targets are what one round probes, from the API objects.
type Targets struct {
	// Local are this node's pod CIDRs; none: the node cannot probe yet.
	Local []netip.Prefix
	// ClusterPodCIDRs are the cluster's pod CIDRs: a probe-sized address on lo inside them that
	// is not a current probe address is an old probe address and is removed.
	ClusterPodCIDRs []netip.Prefix
	// Peers are the peer nodes to probe, sorted by name.
	Peers []Peer
	// DNS is the DNS probe's target; nil: DNS is not probed (Plexus runs no cluster DNS).
	DNS *DNSTarget
}

// LocalAddrs are this node's probe addresses.
func (t Targets) LocalAddrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(t.Local))
	for _, p := range t.Local {
		out = append(out, ProbeAddr(p))
	}
	return out
}

// TargetsFrom computes the targets of node self from the ClusterNetwork (its effective, served
// configuration; nil or not served yet: no DNS target) and all NodeNetworks. A peer is probed when
// it has pod CIDRs, is not being deleted, and reports status.connectivity: its agent answers
// probes (an agent that does not, such as an older one during an upgrade, is not reported as
// unreachable). Pure.
func TargetsFrom(self string, cn *v1.ClusterNetwork, nns []v1.NodeNetwork) Targets {
	var t Targets
	for _, nn := range nns {
		cidrs := parsePrefixes(nn.Spec.PodCIDRs)
		if nn.Name == self {
			t.Local = cidrs
			continue
		}
		if len(cidrs) == 0 || nn.DeletionTimestamp != nil || nn.Status.Connectivity == nil {
			continue
		}
		p := Peer{Name: nn.Name}
		for _, c := range cidrs {
			p.Addrs = append(p.Addrs, ProbeAddr(c))
		}
		t.Peers = append(t.Peers, p)
	}
	slices.SortFunc(t.Peers, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	if cn == nil || cn.Status.Effective == nil || cn.Status.AppliedGeneration == 0 {
		return t
	}
	eff := cn.Status.Effective
	t.ClusterPodCIDRs = parsePrefixes(eff.PodNetwork.CIDRs)
	if d := eff.DNS; d != nil && (d.Enabled == nil || *d.Enabled) {
		ip, err := netip.ParseAddr(d.ServiceIP)
		domain := strings.TrimSuffix(d.ClusterDomain, ".")
		if err == nil && domain != "" {
			t.DNS = &DNSTarget{Server: netip.AddrPortFrom(ip, 53), Name: "kubernetes.default.svc." + domain + "."}
		}
	}
	return t
}

func parsePrefixes(cs []v1.CIDR) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cs {
		// A malformed CIDR of one node must not stop the others (CRD validation makes it unlikely).
		if p, err := netip.ParsePrefix(string(c)); err == nil {
			out = append(out, p)
		}
	}
	return out
}
