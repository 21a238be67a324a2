// Package ipam cuts per-node pod CIDRs out of the cluster's pod CIDRs. It is pure and in memory:
// the operator rebuilds an Allocator from the NodeNetworks the API server holds, so allocations
// survive restarts without any state of its own.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

// ErrExhausted is returned when no pool of a family has a free node CIDR.
var ErrExhausted = errors.New("pod CIDR pool exhausted")

// Family is an address family.
type Family = ipfamily.Family

// Address families.
const (
	IPv4 = ipfamily.IPv4
	IPv6 = ipfamily.IPv6
)

// FamilyOf returns the family of a prefix.
func FamilyOf(p netip.Prefix) Family { return ipfamily.OfPrefix(p) }

// Pool is one pod CIDR cut into node CIDRs of one size.
type Pool struct {
	CIDR     netip.Prefix
	MaskSize int
	taken    bitmap
	next     int
}

// Usage reports the state of one pool.
type Usage struct {
	CIDR      netip.Prefix
	MaskSize  int
	Capacity  int
	Allocated int
}

// Allocator hands out node CIDRs from pools, first pool first.
type Allocator struct {
	pools []*Pool
}

// New builds an allocator over the pod CIDRs, with node mask sizes per family. It refuses a pool
// that would hold more than 65536 node CIDRs or whose prefix is longer than the mask size.
func New(cidrs []netip.Prefix, maskSizeIPv4, maskSizeIPv6 int) (*Allocator, error) {
	a := &Allocator{}
	for _, c := range cidrs {
		mask := maskSizeIPv4
		if FamilyOf(c) == IPv6 {
			mask = maskSizeIPv6
		}
		if mask < c.Bits() || mask-c.Bits() > 16 || mask > c.Addr().BitLen() {
			return nil, fmt.Errorf("pod CIDR %s cannot be cut into /%d node CIDRs (need %d <= mask <= %d)", c, mask, c.Bits(), c.Bits()+16)
		}
		a.pools = append(a.pools, &Pool{CIDR: c.Masked(), MaskSize: mask, taken: newBitmap(subnetCount(c, mask))})
	}
	return a, nil
}

// poolFor finds the pool that contains p.
func (a *Allocator) poolFor(p netip.Prefix) *Pool {
	for _, pool := range a.pools {
		if pool.CIDR.Contains(p.Addr()) && FamilyOf(pool.CIDR) == FamilyOf(p) {
			return pool
		}
	}
	return nil
}

// Reserve marks an existing node CIDR as taken. It fails when p lies in no pool, has the wrong size,
// or is already taken (two nodes must never share a CIDR).
func (a *Allocator) Reserve(p netip.Prefix) error {
	pool := a.poolFor(p)
	if pool == nil {
		return fmt.Errorf("%s is outside every pod CIDR", p)
	}
	i, err := subnetIndex(pool.CIDR, pool.MaskSize, p)
	if err != nil {
		return err
	}
	if pool.taken.isSet(i) {
		return fmt.Errorf("%s is already allocated", p)
	}
	pool.taken.set(i)
	return nil
}

// Allocate returns a free node CIDR of the family and marks it taken. Within a pool it continues
// after the last allocation, so a CIDR released a moment ago is not handed out again at once.
func (a *Allocator) Allocate(f Family) (netip.Prefix, error) {
	hasPool := false
	for _, pool := range a.pools {
		if FamilyOf(pool.CIDR) != f {
			continue
		}
		hasPool = true
		i := pool.taken.firstFree(pool.next)
		if i < 0 {
			continue
		}
		pool.taken.set(i)
		pool.next = (i + 1) % pool.taken.size
		return nthSubnet(pool.CIDR, pool.MaskSize, i), nil
	}
	if !hasPool {
		return netip.Prefix{}, fmt.Errorf("no %s pod CIDR is configured", f)
	}
	return netip.Prefix{}, fmt.Errorf("%w: every %s pod CIDR is fully allocated", ErrExhausted, f)
}

// Usage reports capacity and use of every pool, in configuration order.
func (a *Allocator) Usage() []Usage {
	out := make([]Usage, 0, len(a.pools))
	for _, p := range a.pools {
		out = append(out, Usage{CIDR: p.CIDR, MaskSize: p.MaskSize, Capacity: p.taken.size, Allocated: p.taken.used})
	}
	return out
}
