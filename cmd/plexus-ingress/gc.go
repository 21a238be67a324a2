package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/plexus-net/plexus/internal/memlimit"
)

// limitedGOGC is plexus-ingress's GOGC when a soft memory limit is in force. Proxying allocates
// a few kilobytes per request over a live heap of a few megabytes, so at the default of 100 the
// collector ran many times a second under load: about 10 % of the proxy's CPU in the nginx
// bench profile (marking, assists, sweeping). Four times the headroom is a quarter of the
// cycles; the soft memory limit still makes the collector work harder before the container's
// limit is reached, so the higher GOGC applies only with one.
const limitedGOGC = 400

// gcPercent is the GOGC plexus-ingress sets: limitedGOGC when a memory limit backs it and
// $GOGC (goGC) does not set one of its own, else none (ok false).
func gcPercent(limited bool, goGC string) (percent int, ok bool) {
	if !limited || goGC != "" {
		return 0, false
	}
	return limitedGOGC, true
}

// applyGC sets the soft memory limit from the container's limit and GOGC from gcPercent, and
// describes what it did, for the log.
func applyGC(containerLimit int64) string {
	desc, limited := memlimit.Apply(containerLimit)
	if p, ok := gcPercent(limited, os.Getenv("GOGC")); ok {
		debug.SetGCPercent(p)
		return fmt.Sprintf("%s, GOGC %d", desc, p)
	}
	return desc
}
