package netconfig

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// maxListed bounds how many CIDRs or nodes a message names.
const maxListed = 5

// changeCheck refuses the changes from lastApplied to next that one component cannot make on a
// running cluster. lastApplied is never nil here; allocated are the node CIDRs in use.
type changeCheck func(root *field.Path, lastApplied, next v1.ClusterNetworkSpec, allocated []netip.Prefix) field.ErrorList

// changeChecks are the per-component checks IsChangeSafe runs, one per component with a change it
// must refuse. Ingress and the policy engine have none yet (enabling, disabling and re-sizing them
// is safe); their checks go here when they gain one.
var changeChecks = []changeCheck{checkNetworkChange, checkDNSChange}

// IsChangeSafe decides whether the running network may move from lastApplied (the configuration
// being served; nil when none is) to next (both effective). allocated are the node CIDRs in use.
// The checks that guard allocations are made against allocated, not lastApplied, so they hold even
// when the status that records lastApplied was lost.
func IsChangeSafe(lastApplied *v1.ClusterNetworkSpec, next v1.ClusterNetworkSpec, allocated []netip.Prefix) field.ErrorList {
	root := field.NewPath("spec")
	errs := checkAllocationsKept(root.Child("podNetwork"), lastApplied, next, allocated)
	if lastApplied == nil {
		return errs
	}
	for _, check := range changeChecks {
		errs = append(errs, check(root, *lastApplied, next, allocated)...)
	}
	return errs
}

// checkNetworkChange refuses changes of the service CIDRs and of the IP families: the API server
// and every running pod hold addresses from them. (Pod CIDR changes are guarded by allocation, in
// checkAllocationsKept.)
func checkNetworkChange(root *field.Path, lastApplied, next v1.ClusterNetworkSpec, _ []netip.Prefix) field.ErrorList {
	var errs field.ErrorList
	if !slices.Equal(lastApplied.ServiceNetwork.CIDRs, next.ServiceNetwork.CIDRs) {
		errs = append(errs, field.Forbidden(root.Child("serviceNetwork", "cidrs"), fmt.Sprintf(
			"changing the service CIDRs from %v to %v is not supported: the API server allocates ClusterIPs from them; revert to %v",
			lastApplied.ServiceNetwork.CIDRs, next.ServiceNetwork.CIDRs, lastApplied.ServiceNetwork.CIDRs)))
	}
	if !slices.Equal(lastApplied.IPFamilies, next.IPFamilies) {
		errs = append(errs, field.Forbidden(root.Child("ipFamilies"), fmt.Sprintf("changing ipFamilies from %v to %v is not supported", lastApplied.IPFamilies, next.IPFamilies)))
	}
	return errs
}

// checkDNSChange refuses changes of the cluster domain and the DNS service IP: every kubelet and
// every pod's resolver configuration holds them.
func checkDNSChange(root *field.Path, lastApplied, next v1.ClusterNetworkSpec, _ []netip.Prefix) field.ErrorList {
	if lastApplied.DNS == nil || next.DNS == nil {
		return nil
	}
	var errs field.ErrorList
	if lastApplied.DNS.ClusterDomain != next.DNS.ClusterDomain {
		errs = append(errs, field.Forbidden(root.Child("dns", "clusterDomain"), fmt.Sprintf(
			"changing the cluster domain from %q to %q is not supported: every kubelet and pod resolver uses it; revert to %q",
			lastApplied.DNS.ClusterDomain, next.DNS.ClusterDomain, lastApplied.DNS.ClusterDomain)))
	}
	if lastApplied.DNS.ServiceIP != next.DNS.ServiceIP {
		errs = append(errs, field.Forbidden(root.Child("dns", "serviceIP"), fmt.Sprintf(
			"changing the DNS service IP from %s to %s is not supported: every kubelet's clusterDNS points at it; revert to %s",
			lastApplied.DNS.ServiceIP, next.DNS.ServiceIP, lastApplied.DNS.ServiceIP)))
	}
	return errs
}

// checkAllocationsKept refuses a node mask change while nodes hold CIDRs of the old size, and the
// removal or shrinking of a pod CIDR that holds node CIDRs.
func checkAllocationsKept(path *field.Path, lastApplied *v1.ClusterNetworkSpec, next v1.ClusterNetworkSpec, allocated []netip.Prefix) field.ErrorList {
	pools, _ := ParseCIDRs(path.Child("cidrs"), next.PodNetwork.CIDRs)
	var errs field.ErrorList
	wrongSize := map[bool][]netip.Prefix{} // by is-IPv4
	var stranded []netip.Prefix
	for _, a := range allocated {
		mask := next.PodNetwork.NodeMaskSizeIPv4
		if !a.Addr().Is4() {
			mask = next.PodNetwork.NodeMaskSizeIPv6
		}
		if mask != nil && int(*mask) != a.Bits() {
			wrongSize[a.Addr().Is4()] = append(wrongSize[a.Addr().Is4()], a)
		}
		if !slices.ContainsFunc(pools, func(p netip.Prefix) bool { return p.Contains(a.Addr()) && p.Bits() <= a.Bits() }) {
			stranded = append(stranded, a)
		}
	}
	for _, is4 := range []bool{true, false} {
		list := wrongSize[is4]
		if len(list) == 0 {
			continue
		}
		name, mask := "nodeMaskSizeIPv4", next.PodNetwork.NodeMaskSizeIPv4
		if !is4 {
			name, mask = "nodeMaskSizeIPv6", next.PodNetwork.NodeMaskSizeIPv6
		}
		errs = append(errs, field.Forbidden(path.Child(name), fmt.Sprintf(
			"cannot change to /%d while %d nodes hold /%d pod CIDRs (%s); node CIDRs are never re-cut under running pods, revert to %d",
			*mask, len(list), list[0].Bits(), listPrefixes(list), list[0].Bits())))
	}
	if len(stranded) > 0 {
		errs = append(errs, field.Forbidden(path.Child("cidrs"), fmt.Sprintf(
			"the change removes or shrinks %s, which holds the pod CIDRs of %d nodes (%s); a pod CIDR in use cannot be removed or shrunk, add CIDRs instead",
			formerPools(lastApplied, stranded), len(stranded), listPrefixes(stranded))))
	}
	return errs
}

// formerPools names the previously served pod CIDRs that held the stranded node CIDRs.
func formerPools(lastApplied *v1.ClusterNetworkSpec, stranded []netip.Prefix) string {
	if lastApplied == nil {
		return "the pod CIDR"
	}
	old, _ := ParseCIDRs(field.NewPath("x"), lastApplied.PodNetwork.CIDRs)
	var names []string
	for _, p := range old {
		if slices.ContainsFunc(stranded, func(s netip.Prefix) bool { return p.Contains(s.Addr()) }) {
			names = append(names, p.String())
		}
	}
	if len(names) == 0 {
		return "the pod CIDR"
	}
	return strings.Join(names, ", ")
}

func listPrefixes(ps []netip.Prefix) string {
	s := make([]string, 0, maxListed)
	sorted := slices.Clone(ps)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Addr().Less(sorted[j].Addr()) })
	for i, p := range sorted {
		if i == maxListed {
			s = append(s, fmt.Sprintf("and %d more", len(sorted)-maxListed))
			break
		}
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// NodeAddresses are the addresses a Node reports.
type NodeAddresses struct {
	Name      string
	Addresses []netip.Addr
}

// CheckNodeOverlap refuses pod and service CIDRs that contain a node's address: packets to that
// node would be routed into the pod network or DNATed as a Service.
func CheckNodeOverlap(spec v1.ClusterNetworkSpec, nodes []NodeAddresses) field.ErrorList {
	var errs field.ErrorList
	check := func(path *field.Path, cidrs []v1.CIDR) {
		pools, _ := ParseCIDRs(path, cidrs)
		for i, p := range pools {
			var clashes []string
			for _, n := range nodes {
				for _, a := range n.Addresses {
					if p.Contains(a) {
						clashes = append(clashes, fmt.Sprintf("%s (%s)", n.Name, a))
					}
				}
			}
			if len(clashes) == 0 {
				continue
			}
			more := ""
			if len(clashes) > maxListed {
				more = fmt.Sprintf(" and %d more", len(clashes)-maxListed)
				clashes = clashes[:maxListed]
			}
			errs = append(errs, field.Invalid(path.Index(i), p.String(), fmt.Sprintf(
				"contains the address of node %s%s: node, pod and service ranges must not overlap; choose a range outside the node network", strings.Join(clashes, ", "), more)))
		}
	}
	check(field.NewPath("spec", "podNetwork", "cidrs"), spec.PodNetwork.CIDRs)
	check(field.NewPath("spec", "serviceNetwork", "cidrs"), spec.ServiceNetwork.CIDRs)
	return errs
}
