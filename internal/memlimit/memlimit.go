// Package memlimit sets the Go runtime's soft memory limit of a Plexus binary from its
// container's memory limit (the downward API's limits.memory, in $PLEXUS_MEMORY_LIMIT), so the
// garbage collector works harder near the limit instead of letting the kernel kill the process.
package memlimit

import (
	"fmt"
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/api/resource"
)

const (
	// EnvMemoryLimit is the variable --memory-limit defaults to. The agent's DaemonSet and the
	// plexus-ingress Deployment set it to their container's memory limit (downward API,
	// limits.memory, in bytes).
	EnvMemoryLimit = "PLEXUS_MEMORY_LIMIT"
	// EnvGoMemLimit is the Go runtime's own soft limit variable; when set it wins.
	EnvGoMemLimit = "GOMEMLIMIT"
	// Share is the part of the container limit the Go heap may grow to before the
	// garbage collector works harder to stay under it. The rest is for what the Go runtime does
	// not count (thread stacks of cgo calls, the kernel's page cache charged to the container)
	// and for the collector to catch up before the kernel's OOM killer acts.
	Share = 0.9
)

// Flag is --memory-limit: a Kubernetes quantity ("512Mi") or a number of bytes.
type Flag struct{ Bytes int64 }

func (f *Flag) String() string {
	if f == nil || f.Bytes == 0 {
		return ""
	}
	return resource.NewQuantity(f.Bytes, resource.BinarySI).String()
}

func (f *Flag) Set(s string) error {
	if s == "" {
		f.Bytes = 0
		return nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("want a quantity like 512Mi or a number of bytes: %w", err)
	}
	if q.Sign() < 0 {
		return fmt.Errorf("%s is negative", s)
	}
	f.Bytes = q.Value()
	return nil
}

// Default is --memory-limit from $PLEXUS_MEMORY_LIMIT (unset or invalid: none).
func Default() *Flag {
	f := &Flag{}
	if err := f.Set(os.Getenv(EnvMemoryLimit)); err != nil {
		return &Flag{}
	}
	return f
}

// Soft returns the Go runtime's soft memory limit for a container limit of containerLimit
// bytes (0: none), and false when the binary should leave the runtime's limit as it is: without a container limit, or when $GOMEMLIMIT (goMemLimit) sets it explicitly.
func Soft(containerLimit int64, goMemLimit string) (int64, bool) {
	if goMemLimit != "" || containerLimit <= 0 {
		return 0, false
	}
	return int64(float64(containerLimit) * Share), true
}

// Apply sets the Go runtime's soft memory limit from the container's memory limit and
// describes what it did, for the log; limited says whether a soft limit is in force (set here or
// by $GOMEMLIMIT). The garbage collector then runs more often as the heap nears the limit
// instead of letting it reach twice its live size (GOGC=100), which would have the kernel kill
// the process (the agent of a large cluster) at the container limit while half of its heap is
// garbage. It changes nothing while the heap stays far below the limit.
func Apply(containerLimit int64) (desc string, limited bool) {
	goMemLimit := os.Getenv(EnvGoMemLimit)
	limit, ok := Soft(containerLimit, goMemLimit)
	switch {
	case goMemLimit != "":
		return fmt.Sprintf("Go memory limit from $%s=%s", EnvGoMemLimit, goMemLimit), true
	case !ok:
		return "no Go memory limit (no --memory-limit)", false
	}
	debug.SetMemoryLimit(limit)
	return fmt.Sprintf("Go memory limit %s (%.0f%% of --memory-limit %s)", mib(limit), Share*100, mib(containerLimit)), true
}

func mib(b int64) string { return fmt.Sprintf("%.0fMiB", float64(b)/(1<<20)) }
