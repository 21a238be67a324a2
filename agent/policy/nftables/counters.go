package nftables

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/plexus-net/plexus/agent/policy"
)

// PolicyCounter is one policy's packet count for one direction and
// verdict, read from the kernel.
type PolicyCounter struct {
	Policy    policy.PolicyKey
	Direction policy.Direction
	// Verdict is "allow" or "drop": first packets allowed, or dropped,
	// while the policy isolated the pod (in that direction). The kernel
	// counts per set of isolating policies (one lookup decides for all
	// of them, see names.go), so a packet counts against every policy
	// isolating its pod, whichever rule of whichever policy allowed it;
	// plexusctl trace names the policy and rule that allow a flow.
	Verdict string
	Packets uint64
}

// Counters reads the counters of the policies last programmed, sorted by
// policy, direction and verdict: per policy the sum of the counters of
// the policy-set chains it is part of. Counters restart at zero when the
// table is rebuilt (a full sync) and when a set of policies stops
// isolating local pods (its chain goes).
func (e *Enforcer) Counters(ctx context.Context) ([]PolicyCounter, error) {
	if e.prev == nil {
		return nil, nil
	}
	list, err := e.nft.ListCounters(ctx)
	if err != nil {
		return nil, fmt.Errorf("list counters of %s: %w", TableName, err)
	}
	type key struct {
		policy    policy.PolicyKey
		direction policy.Direction
		verdict   string
	}
	sums := map[key]uint64{}
	for _, c := range list {
		id, ok := e.prev.counters[c.Name]
		if !ok {
			continue
		}
		var n uint64
		if c.Packets != nil {
			n = *c.Packets
		}
		for _, k := range id.policies {
			sums[key{k, id.direction, id.verdict}] += n
		}
	}
	out := make([]PolicyCounter, 0, len(sums))
	for k, n := range sums {
		out = append(out, PolicyCounter{Policy: k.policy, Direction: k.direction, Verdict: k.verdict, Packets: n})
	}
	slices.SortFunc(out, func(a, b PolicyCounter) int {
		return cmp.Or(strings.Compare(a.Policy.String(), b.Policy.String()),
			cmp.Compare(a.Direction, b.Direction), strings.Compare(a.Verdict, b.Verdict))
	})
	return out, nil
}
