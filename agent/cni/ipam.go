package cni

import (
	"errors"
	"fmt"
	"net/netip"
)

// PoolExhaustedError says which pod CIDR has no free address; it wraps [ErrPoolExhausted].
type PoolExhaustedError struct {
	// Pool is the exhausted pod CIDR.
	Pool netip.Prefix
	// Reserved is how many of its addresses the agent reserved for itself (NodeState.ReservedIPs).
	Reserved int
}

// Error implements error.
func (e *PoolExhaustedError) Error() string {
	msg := fmt.Sprintf("pod CIDR %s is exhausted: all %s usable addresses are allocated", e.Pool, UsableAddresses(e.Pool))
	if e.Reserved > 0 {
		msg += fmt.Sprintf(" (%d of them reserved by the plexus agent)", e.Reserved)
	}
	return msg
}

// Unwrap lets errors.Is match ErrPoolExhausted.
func (e *PoolExhaustedError) Unwrap() error { return ErrPoolExhausted }

// assignAddresses returns owner's addresses, one per pod CIDR of the node, allocating those it
// does not hold yet. Calling it again for the same owner returns the same addresses (ADD is
// idempotent). An address owner holds outside the current pod CIDRs (the agent changed them) is
// released. If one family fails, addresses allocated by this call are released again. The caller
// holds the store lock.
func assignAddresses(s *Store, st *NodeState, owner Owner) ([]netip.Addr, error) {
	allocs, err := s.List()
	if err != nil {
		return nil, err
	}
	used := map[netip.Addr]bool{}
	for _, ip := range st.ReservedIPs {
		used[ip] = true
	}
	var mine []netip.Addr
	for _, a := range allocs {
		used[a.IP] = true
		if a.Owner == owner {
			mine = append(mine, a.IP)
		}
	}

	var out, fresh []netip.Addr
	rollback := func() {
		for _, ip := range fresh {
			_ = s.Release(ip) // best effort: the error being returned matters more
		}
	}
	pools := st.PodCIDRs.List()
	for _, pool := range pools {
		if ip, ok := held(mine, pool); ok {
			out = append(out, ip)
			continue
		}
		ip, err := NextFree(pool, used, s.LastReserved(familyName(pool.Addr())))
		if errors.Is(err, ErrPoolExhausted) {
			rollback()
			return nil, &PoolExhaustedError{Pool: pool, Reserved: countIn(st.ReservedIPs, pool)}
		}
		if err != nil {
			rollback()
			return nil, err
		}
		if err := s.Reserve(Allocation{IP: ip, Owner: owner}); err != nil {
			rollback()
			return nil, err
		}
		fresh = append(fresh, ip)
		used[ip] = true
		if err := s.SetLastReserved(ip); err != nil {
			rollback()
			return nil, fmt.Errorf("record last reserved address: %w", err)
		}
		out = append(out, ip)
	}
	// Addresses from a pod CIDR the node no longer has would never be routed to this node.
	for _, ip := range mine {
		if !inAny(ip, pools) {
			if err := s.Release(ip); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// releaseOwner frees every address owner holds and returns them. The caller holds the lock.
func releaseOwner(s *Store, owner Owner) ([]netip.Addr, error) {
	allocs, err := s.List()
	if err != nil {
		return nil, err
	}
	var freed []netip.Addr
	for _, a := range allocs {
		if a.Owner != owner {
			continue
		}
		if err := s.Release(a.IP); err != nil {
			return freed, err
		}
		freed = append(freed, a.IP)
	}
	return freed, nil
}

// staleOwners returns the owners in allocs that are not in valid, each once, in address order.
// An unreadable record (empty Owner) counts as stale, so GC frees its address.
func staleOwners(allocs []Allocation, valid map[Owner]bool) []Owner {
	seen := map[Owner]bool{}
	var out []Owner
	for _, a := range allocs {
		if valid[a.Owner] || seen[a.Owner] {
			continue
		}
		seen[a.Owner] = true
		out = append(out, a.Owner)
	}
	return out
}

// ownedAddresses returns the addresses owner holds. The caller holds the lock.
func ownedAddresses(s *Store, owner Owner) ([]netip.Addr, error) {
	allocs, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range allocs {
		if a.Owner == owner {
			out = append(out, a.IP)
		}
	}
	return out, nil
}

func held(mine []netip.Addr, pool netip.Prefix) (netip.Addr, bool) {
	for _, ip := range mine {
		if pool.Contains(ip) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func inAny(ip netip.Addr, pools []netip.Prefix) bool {
	for _, p := range pools {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func countIn(ips []netip.Addr, pool netip.Prefix) int {
	n := 0
	for _, ip := range ips {
		if pool.Contains(ip) {
			n++
		}
	}
	return n
}
