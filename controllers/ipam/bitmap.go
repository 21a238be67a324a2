package ipam

import "math/bits"

// bitmap tracks which subnets of a pool are taken.
type bitmap struct {
	words []uint64
	size  int
	used  int
}

func newBitmap(size int) bitmap {
	return bitmap{words: make([]uint64, (size+63)/64), size: size}
}

func (b *bitmap) isSet(i int) bool { return b.words[i/64]&(1<<(i%64)) != 0 }

func (b *bitmap) set(i int) {
	if !b.isSet(i) {
		b.words[i/64] |= 1 << (i % 64)
		b.used++
	}
}

func (b *bitmap) clear(i int) {
	if b.isSet(i) {
		b.words[i/64] &^= 1 << (i % 64)
		b.used--
	}
}

// firstFree returns the first free index at or after start, wrapping around, or -1 when full.
// It skips whole taken words, so filling a pool is linear in the pool size overall.
func (b *bitmap) firstFree(start int) int {
	if b.used >= b.size {
		return -1
	}
	for pass := 0; pass < 2; pass++ {
		from, to := start, b.size
		if pass == 1 {
			from, to = 0, start
		}
		for i := from; i < to; {
			w := b.words[i/64] | (1<<(i%64) - 1) // bits below i count as taken
			if w == ^uint64(0) {
				i = (i/64 + 1) * 64
				continue
			}
			j := i/64*64 + bits.TrailingZeros64(^w)
			if j < to {
				return j
			}
			break
		}
	}
	return -1
}
