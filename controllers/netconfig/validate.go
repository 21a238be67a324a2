package netconfig

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/ipfamily"
)

// maxNodeMaskBits is how many bits longer than its pool a node mask may be (65,536 nodes a pool).
const maxNodeMaskBits = 16

// ParseCIDRs parses a list of API CIDRs; invalid entries are reported with their index.
func ParseCIDRs(path *field.Path, cidrs []v1.CIDR) ([]netip.Prefix, field.ErrorList) {
	var errs field.ErrorList
	out := make([]netip.Prefix, 0, len(cidrs))
	for i, c := range cidrs {
		p, err := netip.ParsePrefix(string(c))
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(path.Index(i), c, "must be a CIDR such as 10.244.0.0/16 or fd00:10:244::/56"))
		case p.Masked() != p:
			errs = append(errs, field.Invalid(path.Index(i), c, fmt.Sprintf("must be written as the network address of its range, e.g. %s", p.Masked())))
		default:
			out = append(out, p)
		}
	}
	return out, errs
}

// familyOf is p's family as the API spells it.
func familyOf(p netip.Prefix) v1.IPFamily { return v1.IPFamily(ipfamily.OfPrefix(p).String()) }

// Validate checks an effective (defaulted) spec on its own, without the cluster's state. It repeats
// what the CRD's CEL rules check, so a spec that reached the API server through an older CRD, or a
// plan computed offline, is held to the same rules.
func Validate(spec v1.ClusterNetworkSpec) field.ErrorList {
	root := field.NewPath("spec")
	var errs field.ErrorList

	famPath := root.Child("ipFamilies")
	switch {
	case len(spec.IPFamilies) == 0 || len(spec.IPFamilies) > 2:
		errs = append(errs, field.Invalid(famPath, spec.IPFamilies, "list one or two families: [IPv4], [IPv6], [IPv4, IPv6] or [IPv6, IPv4]"))
	case len(spec.IPFamilies) == 2 && spec.IPFamilies[0] == spec.IPFamilies[1]:
		errs = append(errs, field.Duplicate(famPath.Index(1), spec.IPFamilies[1]))
	}
	hasFamily := map[v1.IPFamily]bool{}
	for i, f := range spec.IPFamilies {
		if f != v1.IPv4 && f != v1.IPv6 {
			errs = append(errs, field.NotSupported(famPath.Index(i), f, []string{"IPv4", "IPv6"}))
		}
		hasFamily[f] = true
	}

	podPath := root.Child("podNetwork", "cidrs")
	pods, perrs := ParseCIDRs(podPath, spec.PodNetwork.CIDRs)
	errs = append(errs, perrs...)
	svcPath := root.Child("serviceNetwork", "cidrs")
	svcs, serrs := ParseCIDRs(svcPath, spec.ServiceNetwork.CIDRs)
	errs = append(errs, serrs...)
	if len(spec.PodNetwork.CIDRs) == 0 {
		errs = append(errs, field.Required(podPath, "list at least one pod CIDR"))
	}
	errs = append(errs, validatePodFamilies(podPath, spec, pods, hasFamily)...)
	errs = append(errs, validateMasks(root.Child("podNetwork"), spec.PodNetwork, pods)...)
	errs = append(errs, validateServiceCIDRs(svcPath, spec, svcs, len(serrs) == 0)...)
	errs = append(errs, validateOverlaps(podPath, pods, svcs)...)
	errs = append(errs, validateNodePortRange(root.Child("serviceNetwork", "nodePortRange"), spec.ServiceNetwork.NodePortRange)...)
	errs = append(errs, validateDNS(root.Child("dns"), spec.DNS, svcs)...)
	if r := spec.Routing; r != nil && r.MTU != nil && hasFamily[v1.IPv6] && *r.MTU < 1280 {
		errs = append(errs, field.Invalid(root.Child("routing", "mtu"), *r.MTU, "must be at least 1280 when IPv6 is enabled (the IPv6 minimum link MTU)"))
	}
	return errs
}

func validatePodFamilies(path *field.Path, spec v1.ClusterNetworkSpec, pods []netip.Prefix, hasFamily map[v1.IPFamily]bool) field.ErrorList {
	var errs field.ErrorList
	seen := map[v1.IPFamily]bool{}
	for i, p := range pods {
		f := familyOf(p)
		seen[f] = true
		if !hasFamily[f] {
			errs = append(errs, field.Invalid(path.Index(i), p.String(), fmt.Sprintf("is %s, which ipFamilies does not list", f)))
		}
	}
	for _, f := range spec.IPFamilies {
		if !seen[f] {
			errs = append(errs, field.Required(path, fmt.Sprintf("ipFamilies lists %s but no %s pod CIDR is given", f, f)))
		}
	}
	if len(pods) > 0 && len(spec.IPFamilies) > 0 && familyOf(pods[0]) != spec.IPFamilies[0] {
		errs = append(errs, field.Invalid(path.Index(0), pods[0].String(), fmt.Sprintf("the first pod CIDR must be of the primary family %s (ipFamilies[0])", spec.IPFamilies[0])))
	}
	return errs
}

func validateMasks(path *field.Path, pn v1.PodNetwork, pods []netip.Prefix) field.ErrorList {
	var errs field.ErrorList
	for _, p := range pods {
		name, mask := "nodeMaskSizeIPv4", pn.NodeMaskSizeIPv4
		if !p.Addr().Is4() {
			name, mask = "nodeMaskSizeIPv6", pn.NodeMaskSizeIPv6
		}
		if mask == nil {
			continue
		}
		m := int(*mask)
		switch {
		case m < p.Bits():
			errs = append(errs, field.Invalid(path.Child(name), m, fmt.Sprintf("is shorter than the pod CIDR %s: a node's CIDR cannot be larger than the pool; use /%d or longer", p, p.Bits())))
		case m-p.Bits() > maxNodeMaskBits:
			errs = append(errs, field.Invalid(path.Child(name), m, fmt.Sprintf("would cut %s into more than 65536 node CIDRs; use /%d or shorter, or a longer pod CIDR", p, p.Bits()+maxNodeMaskBits)))
		case m > p.Addr().BitLen():
			errs = append(errs, field.Invalid(path.Child(name), m, "is longer than an address"))
		}
	}
	return errs
}

func validateServiceCIDRs(path *field.Path, spec v1.ClusterNetworkSpec, svcs []netip.Prefix, parsed bool) field.ErrorList {
	if !parsed {
		return nil
	}
	msg := "list exactly one CIDR per entry of ipFamilies, in the same order (ipFamilies [IPv4, IPv6] needs e.g. [10.96.0.0/16, fd00:10:96::/112])"
	if len(svcs) != len(spec.IPFamilies) {
		return field.ErrorList{field.Invalid(path, spec.ServiceNetwork.CIDRs, msg)}
	}
	for i, p := range svcs {
		if familyOf(p) != spec.IPFamilies[i] {
			return field.ErrorList{field.Invalid(path.Index(i), p.String(), msg)}
		}
	}
	return nil
}

func validateOverlaps(podPath *field.Path, pods, svcs []netip.Prefix) field.ErrorList {
	var errs field.ErrorList
	for i, a := range pods {
		for j := i + 1; j < len(pods); j++ {
			if a.Overlaps(pods[j]) {
				errs = append(errs, field.Invalid(podPath.Index(j), pods[j].String(), fmt.Sprintf("overlaps pod CIDR %s", a)))
			}
		}
		for _, s := range svcs {
			if a.Overlaps(s) {
				errs = append(errs, field.Invalid(podPath.Index(i), a.String(), fmt.Sprintf("overlaps service CIDR %s: pod and service addresses must be distinct", s)))
			}
		}
	}
	return errs
}

// ParseNodePortRange parses "first-last".
func ParseNodePortRange(s string) (first, last int, err error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("must look like 30000-32767")
	}
	first, err1 := strconv.Atoi(lo)
	last, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("must look like 30000-32767")
	}
	if first < 1 || last > 65535 || first >= last {
		return 0, 0, fmt.Errorf("must be first-last with 1 <= first < last <= 65535")
	}
	return first, last, nil
}

func validateNodePortRange(path *field.Path, s string) field.ErrorList {
	if s == "" {
		return nil
	}
	if _, _, err := ParseNodePortRange(s); err != nil {
		return field.ErrorList{field.Invalid(path, s, err.Error())}
	}
	return nil
}

func validateDNS(path *field.Path, dns *v1.DNS, svcs []netip.Prefix) field.ErrorList {
	if dns == nil || dns.ServiceIP == "" {
		return nil
	}
	ip, err := netip.ParseAddr(dns.ServiceIP)
	if err != nil {
		return field.ErrorList{field.Invalid(path.Child("serviceIP"), dns.ServiceIP, "must be an IP address such as 10.96.0.10")}
	}
	for _, s := range svcs {
		if s.Contains(ip) {
			return nil
		}
	}
	return field.ErrorList{field.Invalid(path.Child("serviceIP"), dns.ServiceIP, "must be inside one of serviceNetwork.cidrs")}
}
