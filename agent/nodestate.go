package agent

import (
	"fmt"
	"slices"

	"github.com/plexus-net/plexus/agent/cni"
)

// writeNodeState writes st to path unless the file already holds it, and reports whether it
// wrote. cni.WriteNodeState replaces the file atomically, so the plugin never reads half of it.
func writeNodeState(path string, st cni.NodeState) (bool, error) {
	// A missing or damaged file is simply rewritten: the agent owns it.
	if cur, err := cni.ReadNodeState(path); err == nil && sameNodeState(*cur, st) {
		return false, nil
	}
	if err := cni.WriteNodeState(path, st); err != nil {
		return false, err
	}
	return true, nil
}

func sameNodeState(a, b cni.NodeState) bool {
	return a.Version == b.Version && a.NodeName == b.NodeName && a.PodCIDRs == b.PodCIDRs && a.MTU == b.MTU &&
		slices.Equal(a.ReservedIPs, b.ReservedIPs)
}

// CNIStorePods returns a PodCounter that counts the pod attachments recorded in the CNI
// allocation store in dir (one per container and interface, whatever its number of addresses).
func CNIStorePods(dir string) PodCounter {
	return func() (int, error) {
		s, err := cni.OpenStore(dir)
		if err != nil {
			return 0, err
		}
		defer s.Close()
		var allocs []cni.Allocation
		if err := s.WithLock(func() (err error) { allocs, err = s.List(); return err }); err != nil {
			return 0, fmt.Errorf("list CNI allocations in %s: %w", dir, err)
		}
		owners := map[cni.Owner]bool{}
		for _, a := range allocs {
			owners[a.Owner] = true
		}
		return len(owners), nil
	}
}
