package conntrack

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/plexus-net/plexus/agent/policy"
)

// Fake is an in-memory conntrack table, for unit tests.
type Fake struct {
	mu sync.Mutex
	// Flows are the entries, by the flow the policy data plane decided.
	Flows []policy.Flow
}

var _ Table = &Fake{}

// DeleteMatching implements Table.
func (f *Fake) DeleteMatching(family uint8, match func(policy.Flow) bool) (uint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var kept []policy.Flow
	var n uint
	for _, fl := range f.Flows {
		if fl.Src.Is6() == (family == unix.AF_INET6) && match(fl) {
			n++
			continue
		}
		kept = append(kept, fl)
	}
	f.Flows = kept
	return n, nil
}
