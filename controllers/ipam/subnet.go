package ipam

import (
	"fmt"
	"math/big"
	"net/netip"
)

// subnetCount is how many /maskSize subnets a prefix holds. Callers keep maskSize-bits ≤ 16.
func subnetCount(pool netip.Prefix, maskSize int) int {
	return 1 << (maskSize - pool.Bits())
}

// nthSubnet returns subnet number n of size /maskSize inside pool.
func nthSubnet(pool netip.Prefix, maskSize, n int) netip.Prefix {
	addrBits := pool.Addr().BitLen()
	base := new(big.Int).SetBytes(pool.Addr().AsSlice())
	off := new(big.Int).Lsh(big.NewInt(int64(n)), uint(addrBits-maskSize))
	base.Add(base, off)
	buf := make([]byte, addrBits/8)
	base.FillBytes(buf)
	addr, _ := netip.AddrFromSlice(buf)
	return netip.PrefixFrom(addr, maskSize)
}

// subnetIndex is the inverse of nthSubnet: the index of sub inside pool, or an error when sub is
// not a /maskSize subnet aligned inside pool.
func subnetIndex(pool netip.Prefix, maskSize int, sub netip.Prefix) (int, error) {
	if sub.Bits() != maskSize {
		return 0, fmt.Errorf("%s is a /%d, the node mask size is /%d", sub, sub.Bits(), maskSize)
	}
	if sub.Addr().Is4() != pool.Addr().Is4() || !pool.Contains(sub.Addr()) {
		return 0, fmt.Errorf("%s is outside the pod CIDR %s", sub, pool)
	}
	if sub.Masked() != sub {
		return 0, fmt.Errorf("%s has host bits set", sub)
	}
	addrBits := pool.Addr().BitLen()
	a := new(big.Int).SetBytes(sub.Addr().AsSlice())
	b := new(big.Int).SetBytes(pool.Addr().AsSlice())
	a.Sub(a, b)
	a.Rsh(a, uint(addrBits-maskSize))
	return int(a.Int64()), nil
}
