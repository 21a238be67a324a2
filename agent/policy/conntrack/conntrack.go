// Package conntrack cuts established connections that a NetworkPolicy
// change no longer allows, by deleting their conntrack entries over
// netlink. Without this, a removed allow would stop only new connections:
// the policy table accepts packets of established connections first.
//
// Call Cut after the new model is programmed: a packet of a cut connection
// then finds no entry, counts as new (or invalid) and meets the new rules;
// cut earlier, it would recreate its entry under the old rules.
package conntrack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/plexus-net/plexus/agent/policy"
)

// Table is the conntrack table of the caller's network namespace.
type Table interface {
	// DeleteMatching deletes every entry of family (unix.AF_INET or
	// AF_INET6) for which match is true and returns how many it deleted.
	// Entries that vanish meanwhile are no error.
	DeleteMatching(family uint8, match func(policy.Flow) bool) (uint, error)
}

// Netlink is the kernel's conntrack table through netlink.
type Netlink struct{}

var _ Table = Netlink{}

// DeleteMatching implements Table: one dump, then one delete per match
// (netlink.ConntrackDeleteFilters does both).
func (Netlink) DeleteMatching(family uint8, match func(policy.Flow) bool) (uint, error) {
	n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.InetFamily(family), matcher(match))
	if err != nil {
		return n, fmt.Errorf("delete conntrack entries (family %d): %w", family, err)
	}
	return n, nil
}

// matcher adapts a flow predicate to netlink's filter interface.
type matcher func(policy.Flow) bool

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (m matcher) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	flow, ok := FlowOf(f)
	return ok && m(flow)
}

// FlowOf returns the flow the policy data plane decided for a conntrack
// entry: the original source, and the reply direction's source and source
// port as destination (the endpoint after any DNAT, which is what the
// policy table saw).
func FlowOf(f *netlink.ConntrackFlow) (policy.Flow, bool) {
	src, ok1 := addrOf(f.Forward.SrcIP)
	dst, ok2 := addrOf(f.Reverse.SrcIP)
	if !ok1 || !ok2 {
		return policy.Flow{}, false
	}
	flow := policy.Flow{Src: src, Dst: dst, Protocol: policy.Protocol(f.Forward.Protocol)}
	switch flow.Protocol {
	case policy.TCP, policy.UDP, policy.SCTP:
		flow.Port = f.Reverse.SrcPort
	}
	return flow, true
}

func addrOf(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// Cutter cuts the connections a model change stops allowing.
type Cutter struct {
	table Table
	// keep leaves established connections alone (the ClusterNetwork
	// setting that keeps them); only new connections meet new rules.
	keep bool
}

// NewCutter returns a Cutter over table; keepEstablished turns cutting off.
func NewCutter(table Table, keepEstablished bool) *Cutter {
	return &Cutter{table: table, keep: keepEstablished}
}

// Cut deletes the conntrack entries of both families that prev allowed and
// next denies (policy.Cuts) and returns how many it deleted. prev nil
// means nothing was enforced before.
func (c *Cutter) Cut(prev, next *policy.Model) (uint, error) {
	if c.keep || next == nil {
		return 0, nil
	}
	match := func(f policy.Flow) bool { return policy.Cuts(prev, next, f) }
	var total uint
	var errs []error
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		n, err := c.table.DeleteMatching(fam, match)
		total += n
		errs = append(errs, err)
	}
	return total, errors.Join(errs...)
}
