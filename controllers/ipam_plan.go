package controllers

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/ipam"
)

// nodeNetworkUpsert is a NodeNetwork to create or update.
type nodeNetworkUpsert struct {
	node      string
	spec      v1.NodeNetworkSpec
	allocated []netip.Prefix // newly allocated or adopted in this pass
	adopted   bool           // taken from Node.spec.podCIDRs
}

// ipamPlan is what one IPAM pass will change. It is computed by planIPAM, a pure function, and
// carried out by reconcileIPAM.
type ipamPlan struct {
	upserts     []nodeNetworkUpsert
	deletes     []v1.NodeNetwork // their Node is gone
	nodePatches map[string][]string
	unallocated []string // nodes missing a pod CIDR of some family
	exhausted   []ipam.Family
	conflicts   []string
	warnings    map[string]string // node → why its Node.spec.podCIDRs were not adopted
	usage       []ipam.Usage
	allocated   int // nodes holding a CIDR of every family
}

// planIPAM decides every node's pod CIDRs from the served configuration, the Nodes and the existing
// NodeNetworks. Existing allocations are kept; a Node that already has spec.podCIDRs keeps them when
// they are valid and free; the rest get fresh CIDRs, primary family first.
func planIPAM(served v1.ClusterNetworkSpec, nodes []corev1.Node, nns []v1.NodeNetwork) (ipamPlan, error) {
	pools := make([]netip.Prefix, 0, len(served.PodNetwork.CIDRs))
	for _, c := range served.PodNetwork.CIDRs {
		p, err := netip.ParsePrefix(string(c))
		if err != nil {
			return ipamPlan{}, fmt.Errorf("served pod CIDR %q: %w", c, err)
		}
		pools = append(pools, p)
	}
	alloc, err := ipam.New(pools, int(*served.PodNetwork.NodeMaskSizeIPv4), int(*served.PodNetwork.NodeMaskSizeIPv6))
	if err != nil {
		return ipamPlan{}, err
	}
	plan := ipamPlan{nodePatches: map[string][]string{}, warnings: map[string]string{}}

	nodeByName := make(map[string]*corev1.Node, len(nodes))
	for i := range nodes {
		nodeByName[nodes[i].Name] = &nodes[i]
	}
	existing := make(map[string]*v1.NodeNetwork, len(nns))
	// Reserve every existing allocation first, in name order, so the outcome never depends on
	// list order; a CIDR claimed twice stays with the first node and is reported.
	sorted := slices.Clone(nns)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := range sorted {
		nn := &sorted[i]
		if _, ok := nodeByName[nn.Name]; !ok {
			plan.deletes = append(plan.deletes, *nn)
			continue
		}
		existing[nn.Name] = nn
		for _, c := range nn.Spec.PodCIDRs {
			p, err := netip.ParsePrefix(string(c))
			if err == nil {
				err = alloc.Reserve(p)
			}
			if err != nil {
				plan.conflicts = append(plan.conflicts, fmt.Sprintf("NodeNetwork %s holds %s: %v", nn.Name, c, err))
			}
		}
	}

	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	exhausted := map[ipam.Family]bool{}
	for _, name := range names {
		node := nodeByName[name]
		up, complete := planNode(served, node, existing[name], alloc, &plan, exhausted)
		if up != nil {
			plan.upserts = append(plan.upserts, *up)
		}
		if !complete {
			plan.unallocated = append(plan.unallocated, name)
			continue
		}
		plan.allocated++
		if *served.PodNetwork.WriteNodePodCIDRs && len(node.Spec.PodCIDRs) == 0 {
			plan.nodePatches[name] = cidrStrings(specOf(up, existing[name]).PodCIDRs)
		}
	}
	for _, f := range []ipam.Family{ipam.IPv4, ipam.IPv6} {
		if exhausted[f] {
			plan.exhausted = append(plan.exhausted, f)
		}
	}
	plan.usage = alloc.Usage()
	return plan, nil
}

// planNode works out one node's NodeNetwork. It returns the upsert (nil when nothing changes) and
// whether the node holds a CIDR of every family afterwards.
func planNode(served v1.ClusterNetworkSpec, node *corev1.Node, nn *v1.NodeNetwork, alloc *ipam.Allocator, plan *ipamPlan, exhausted map[ipam.Family]bool) (*nodeNetworkUpsert, bool) {
	have := map[ipam.Family]netip.Prefix{}
	if nn != nil {
		for _, c := range nn.Spec.PodCIDRs {
			if p, err := netip.ParsePrefix(string(c)); err == nil {
				have[ipam.FamilyOf(p)] = p
			}
		}
	}
	up := nodeNetworkUpsert{node: node.Name}
	adoptable := adoptableCIDRs(node, nn, alloc, plan)
	complete := true
	for _, fam := range served.IPFamilies {
		f := ipam.IPv4
		if fam == v1.IPv6 {
			f = ipam.IPv6
		}
		if _, ok := have[f]; ok {
			continue
		}
		if p, ok := adoptable[f]; ok {
			have[f], up.adopted = p, true
			up.allocated = append(up.allocated, p)
			continue
		}
		p, err := alloc.Allocate(f)
		if err != nil {
			if errors.Is(err, ipam.ErrExhausted) {
				exhausted[f] = true
			}
			complete = false
			continue
		}
		have[f] = p
		up.allocated = append(up.allocated, p)
	}
	for _, fam := range served.IPFamilies {
		f := ipam.IPv4
		if fam == v1.IPv6 {
			f = ipam.IPv6
		}
		if p, ok := have[f]; ok {
			up.spec.PodCIDRs = append(up.spec.PodCIDRs, v1.CIDR(p.String()))
		}
	}
	up.spec.Addresses = usedAddresses(*node)
	if nn != nil && slices.Equal(nn.Spec.PodCIDRs, up.spec.PodCIDRs) && slices.Equal(nn.Spec.Addresses, up.spec.Addresses) {
		return nil, complete
	}
	if len(up.spec.PodCIDRs) == 0 && nn == nil && len(up.spec.Addresses) == 0 {
		return nil, complete
	}
	return &up, complete
}

// adoptableCIDRs returns the Node's own spec.podCIDRs that are valid and free, reserving them. It
// only applies to nodes Plexus has not allocated for yet.
func adoptableCIDRs(node *corev1.Node, nn *v1.NodeNetwork, alloc *ipam.Allocator, plan *ipamPlan) map[ipam.Family]netip.Prefix {
	out := map[ipam.Family]netip.Prefix{}
	if nn != nil && len(nn.Spec.PodCIDRs) > 0 {
		return out
	}
	for _, c := range node.Spec.PodCIDRs {
		p, err := netip.ParsePrefix(c)
		if err == nil {
			err = alloc.Reserve(p)
		}
		if err != nil {
			plan.warnings[node.Name] = fmt.Sprintf("Node.spec.podCIDRs %s cannot be adopted (%v); Plexus allocates the node's pod CIDR itself", c, err)
			continue
		}
		out[ipam.FamilyOf(p)] = p
	}
	return out
}

func specOf(up *nodeNetworkUpsert, nn *v1.NodeNetwork) v1.NodeNetworkSpec {
	if up != nil {
		return up.spec
	}
	return nn.Spec
}

func cidrStrings(cs []v1.CIDR) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}
