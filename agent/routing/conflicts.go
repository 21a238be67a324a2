package routing

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

// claim is one node's claim on a pod CIDR.
type claim struct {
	owner string
	cidr  netip.Prefix
	local bool
}

// podCIDRConflicts finds the peer pod CIDRs that must not be routed because
// they clash with another node's, and says why:
//   - a peer CIDR overlapping a local pod CIDR (either way round);
//   - a peer CIDR equal to another peer's (both, as neither can be trusted);
//   - a peer CIDR covering another peer's (the covering one: it would
//     route the other node's pods to the wrong node where the specific
//     route is missing).
//
// It sorts once and sweeps with a stack of enclosing CIDRs, O(n log n) for
// the thousands of peers a cluster may have. Only valid CIDRs take part.
func podCIDRConflicts(local LocalNode, peers []Peer) map[claim]string {
	var claims []claim
	add := func(cl claim) {
		if checkPodCIDR(cl.cidr) == nil {
			claims = append(claims, cl)
		}
	}
	for _, c := range local.PodCIDRs {
		add(claim{owner: local.Name, cidr: c, local: true})
	}
	for _, p := range peers {
		for _, c := range p.PodCIDRs {
			add(claim{owner: p.Name, cidr: c})
		}
	}
	// Address order, shorter prefixes first: an enclosing CIDR comes before
	// everything inside it.
	slices.SortStableFunc(claims, func(a, b claim) int { return ipfamily.ComparePrefix(a.cidr, b.cidr) })
	// A node listing a CIDR twice is no conflict. The sort is stable and
	// each node's claims were added together, so such twins are adjacent.
	claims = slices.CompactFunc(claims, func(a, b claim) bool { return a == b })

	out := map[claim]string{}
	refuse := func(victim claim, format string, other claim) {
		if victim.local {
			return
		}
		if _, done := out[victim]; !done {
			out[victim] = fmt.Sprintf(format, other.cidr, other.owner)
		}
	}
	var stack []claim // enclosing CIDRs of the current one, outermost first
	for _, c := range claims {
		for len(stack) > 0 && !stack[len(stack)-1].cidr.Contains(c.cidr.Addr()) {
			stack = stack[:len(stack)-1]
		}
		for _, outer := range stack {
			switch {
			case outer.cidr == c.cidr:
				refuse(c, "equals pod CIDR %s of node %s", outer)
				refuse(outer, "equals pod CIDR %s of node %s", c)
			case outer.local:
				refuse(c, "lies inside pod CIDR %s of node %s", outer)
			default:
				refuse(outer, "covers pod CIDR %s of node %s", c)
			}
		}
		stack = append(stack, c)
	}
	return out
}
