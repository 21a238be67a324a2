package nftables

import (
	"context"
	"fmt"
	"slices"

	"github.com/plexus-net/plexus/agent/policy"
)

// PolicyCounter is one policy's packet count for one direction and
// verdict, read from the kernel.
type PolicyCounter struct {
	Policy    policy.PolicyKey
	Direction policy.Direction
	// Verdict is "allow" (first packets a rule of the policy accepted) or
	// "drop" (first packets dropped while the policy isolated the pod; a
	// drop counts against every policy isolating the pod).
	Verdict string
	Packets uint64
}

// Counters reads the counters of the policies last programmed, sorted by
// policy, direction and verdict. Counters restart at zero when the table
// is rebuilt (a full sync) and when a policy stops selecting local pods.
func (e *Enforcer) Counters(ctx context.Context) ([]PolicyCounter, error) {
	if e.prev == nil {
		return nil, nil
	}
	list, err := e.nft.ListCounters(ctx)
	if err != nil {
		return nil, fmt.Errorf("list counters of %s: %w", TableName, err)
	}
	var out []PolicyCounter
	for _, c := range list {
		id, ok := e.prev.counters[c.Name]
		if !ok {
			continue
		}
		pc := PolicyCounter{Policy: id.policy, Direction: id.direction, Verdict: id.verdict}
		if c.Packets != nil {
			pc.Packets = *c.Packets
		}
		out = append(out, pc)
	}
	slices.SortFunc(out, func(a, b PolicyCounter) int {
		if a.Policy != b.Policy {
			if a.Policy.String() < b.Policy.String() {
				return -1
			}
			return 1
		}
		if a.Direction != b.Direction {
			return int(a.Direction) - int(b.Direction)
		}
		if a.Verdict < b.Verdict {
			return -1
		}
		if a.Verdict > b.Verdict {
			return 1
		}
		return 0
	})
	return out, nil
}
