package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// NodeIPAnnotation on a Node overrides the node IPs Plexus uses for it: a comma-separated list
// of at most one address per family, e.g. "10.99.0.11,fd10:99::11". Peers read it too, so they
// route to the same address the node programs.
const NodeIPAnnotation = "plexus.dev/node-ip"

// NodeIPs applies the node IP rule to node: the NodeIPAnnotation if set; else override (the
// agent's --node-ip flag, which only the local node has); else the Node's first InternalIP of each
// family. The result has at most one address per family, IPv4 first unless primary6 (the cluster's
// first IP family is IPv6). No address at all is an error naming the node.
func NodeIPs(node *corev1.Node, override []netip.Addr, primary6 bool) ([]netip.Addr, error) {
	if node == nil {
		return nil, fmt.Errorf("no Node object")
	}
	var ips []netip.Addr
	switch ann, ok := node.Annotations[NodeIPAnnotation]; {
	case ok:
		parsed, err := ParseNodeIPs(ann)
		if err != nil {
			return nil, fmt.Errorf("node %s: annotation %s: %w", node.Name, NodeIPAnnotation, err)
		}
		ips = parsed
	case len(override) > 0:
		ips = slices.Clone(override)
	default:
		for _, a := range node.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			ip, err := netip.ParseAddr(a.Address)
			if err != nil {
				continue // a malformed address is the kubelet's problem; use the others
			}
			ip = ip.Unmap()
			if !slices.ContainsFunc(ips, func(o netip.Addr) bool { return o.Is4() == ip.Is4() }) {
				ips = append(ips, ip)
			}
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("node %s has no InternalIP (set one, the --node-ip flag or the %s annotation)", node.Name, NodeIPAnnotation)
	}
	slices.SortStableFunc(ips, func(a, b netip.Addr) int { return familyRank(a, primary6) - familyRank(b, primary6) })
	return ips, nil
}

// familyRank orders the primary family first.
func familyRank(a netip.Addr, primary6 bool) int {
	if a.Is6() == primary6 {
		return 0
	}
	return 1
}

// ParseNodeIPs parses a comma-separated list of at most one address per family (the format of
// NodeIPAnnotation and of the --node-ip flag).
func ParseNodeIPs(s string) ([]netip.Addr, error) {
	var ips []netip.Addr
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address", f)
		}
		ip = ip.Unmap()
		if slices.ContainsFunc(ips, func(o netip.Addr) bool { return o.Is4() == ip.Is4() }) {
			return nil, fmt.Errorf("%q: two addresses of one family", s)
		}
		ips = append(ips, ip)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no address in %q", s)
	}
	return ips, nil
}
