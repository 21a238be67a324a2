package bench

import "time"

// CPUTime is the user plus system CPU time that process pid and its descendants have used so
// far (for benchmarks that run the proxies elsewhere, e.g. on the lab).
func CPUTime(pid int) (time.Duration, error) { return cpuTime(pid) }

// OwnCPUTime is the user plus system CPU time this process has used so far.
func OwnCPUTime() (time.Duration, error) { return ownCPUTime() }
