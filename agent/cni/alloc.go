package cni

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
)

// ErrPoolExhausted is returned (wrapped) by [NextFree] when every usable address of a pool is taken.
var ErrPoolExhausted = errors.New("no free address")

// NextFree returns the first address of pool that is usable and not in used, searching upward
// from the address after `after` and wrapping around to the start of pool.
//
// Starting after the address handed out last (rather than at the start of the pool) avoids
// giving a just-released address to the next pod: peers, conntrack entries and NetworkPolicy
// caches may still associate it with the old pod for a while.
//
// The network address itself (.0, or the IPv6 subnet-router anycast address) is never returned:
// every pod gets a /32 or /128, so there is no broadcast address to skip, but the first address
// is still treated as special by many tools. An invalid or out-of-pool `after` starts the search
// at the beginning of the pool. The function is pure: it reads nothing but its arguments.
func NextFree(pool netip.Prefix, used map[netip.Addr]bool, after netip.Addr) (netip.Addr, error) {
	if !pool.IsValid() {
		return netip.Addr{}, fmt.Errorf("invalid pool %v", pool)
	}
	pool = pool.Masked()
	first := pool.Addr().Next() // skip the network address
	if !first.IsValid() || !pool.Contains(first) {
		return netip.Addr{}, fmt.Errorf("pool %s has no usable address: %w", pool, ErrPoolExhausted)
	}
	start := first
	if after.IsValid() && pool.Contains(after) {
		if n := after.Next(); n.IsValid() && pool.Contains(n) {
			start = n
		}
	}
	// The loop visits at most every usable address once; it ends early at the first free one,
	// which for a large (IPv6) pool is at most len(used)+1 steps away.
	a := start
	for {
		if !used[a] {
			return a, nil
		}
		a = a.Next()
		if !a.IsValid() || !pool.Contains(a) {
			a = first
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("pool %s: all %s usable addresses are allocated: %w",
				pool, UsableAddresses(pool), ErrPoolExhausted)
		}
	}
}

// UsableAddresses returns how many addresses of pool plexus-cni can hand to pods: every address
// but the network address. It is a decimal string because an IPv6 pool does not fit in 64 bits.
func UsableAddresses(pool netip.Prefix) string {
	hostBits := pool.Addr().BitLen() - pool.Bits()
	if !pool.IsValid() || hostBits < 0 {
		return "0"
	}
	n := new(big.Int).Lsh(big.NewInt(1), uint(hostBits))
	n.Sub(n, big.NewInt(1))
	return n.String()
}
