package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/api/resource"
)

const (
	// envMemoryLimit is the variable --memory-limit defaults to. The DaemonSet sets it to the
	// agent container's memory limit (downward API, limits.memory, in bytes).
	envMemoryLimit = "PLEXUS_MEMORY_LIMIT"
	// envGoMemLimit is the Go runtime's own soft limit variable; when set it wins.
	envGoMemLimit = "GOMEMLIMIT"
	// memoryLimitShare is the part of the container limit the Go heap may grow to before the
	// garbage collector works harder to stay under it. The rest is for what the Go runtime does
	// not count (thread stacks of cgo calls, the kernel's page cache charged to the container)
	// and for the collector to catch up before the kernel's OOM killer acts.
	memoryLimitShare = 0.9
)

// memoryLimitFlag is --memory-limit: a Kubernetes quantity ("512Mi") or a number of bytes.
type memoryLimitFlag struct{ bytes int64 }

func (f *memoryLimitFlag) String() string {
	if f == nil || f.bytes == 0 {
		return ""
	}
	return resource.NewQuantity(f.bytes, resource.BinarySI).String()
}

func (f *memoryLimitFlag) Set(s string) error {
	if s == "" {
		f.bytes = 0
		return nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("want a quantity like 512Mi or a number of bytes: %w", err)
	}
	if q.Sign() < 0 {
		return fmt.Errorf("%s is negative", s)
	}
	f.bytes = q.Value()
	return nil
}

// defaultMemoryLimit is --memory-limit from $PLEXUS_MEMORY_LIMIT (unset or invalid: none).
func defaultMemoryLimit() *memoryLimitFlag {
	f := &memoryLimitFlag{}
	if err := f.Set(os.Getenv(envMemoryLimit)); err != nil {
		return &memoryLimitFlag{}
	}
	return f
}

// softMemoryLimit returns the Go runtime's soft memory limit for a container limit of
// containerLimit bytes (0: none), and false when the agent should leave the runtime's limit as
// it is: without a container limit, or when $GOMEMLIMIT (goMemLimit) sets it explicitly.
func softMemoryLimit(containerLimit int64, goMemLimit string) (int64, bool) {
	if goMemLimit != "" || containerLimit <= 0 {
		return 0, false
	}
	return int64(float64(containerLimit) * memoryLimitShare), true
}

// applyMemoryLimit sets the Go runtime's soft memory limit from the container's memory limit and
// describes what it did, for the log. The garbage collector then runs more often as the heap
// nears the limit instead of letting it reach twice its live size (GOGC=100), which would have
// the kernel kill the agent of a large cluster at the container limit while half of its heap is
// garbage. It changes nothing while the heap stays far below the limit.
func applyMemoryLimit(containerLimit int64) string {
	goMemLimit := os.Getenv(envGoMemLimit)
	limit, ok := softMemoryLimit(containerLimit, goMemLimit)
	switch {
	case goMemLimit != "":
		return fmt.Sprintf("Go memory limit from $%s=%s", envGoMemLimit, goMemLimit)
	case !ok:
		return "no Go memory limit (no --memory-limit)"
	}
	debug.SetMemoryLimit(limit)
	return fmt.Sprintf("Go memory limit %s (%.0f%% of --memory-limit %s)", mib(limit), memoryLimitShare*100, mib(containerLimit))
}

func mib(b int64) string { return fmt.Sprintf("%.0fMiB", float64(b)/(1<<20)) }
