package testnet

import (
	"fmt"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"

	"github.com/plexus-net/plexus/internal/hostnet"
)

// hostNetns is the machine's network namespace, opened once while the package
// initialises on the main thread, before any test can move a thread. Opening
// /proc/self/ns/net later would follow the main thread, which is wrong if a
// Do goroutine ever ran there.
var hostNetns, hostNetnsErr = netns.Get()

func init() {
	// Keep the main goroutine on the main thread for the whole test binary, so
	// the Go runtime never schedules a Do goroutine there: a locked goroutine
	// that exits on the main thread parks it (inside the test namespace)
	// instead of ending it.
	runtime.LockOSThread()
}

// CheckNoOverlap returns an error naming the clash if any of the given test
// ranges overlaps an address or a route of this machine (hostnet.CheckNoOverlap,
// read in the namespace the test binary started in). Call it before creating anything.
func CheckNoOverlap(prefixes ...netip.Prefix) error {
	if hostNetnsErr != nil {
		return fmt.Errorf("open the host network namespace: %w", hostNetnsErr)
	}
	return hostnet.CheckNoOverlapIn(hostNetns, prefixes...)
}
