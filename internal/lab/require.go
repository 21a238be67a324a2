package lab

import (
	"fmt"
	"os"
	"os/exec"
)

// RequireEnv, when set to anything, tells the lab's test suites that a machine which cannot run a
// lab is a failure, not a reason to skip: make test sets it, so it never reports ok for a suite
// that did not run.
const RequireEnv = "PLEXUS_REQUIRE_LAB"

// Unavailable says why no lab can run on this machine, or "" when one can: the lab needs root
// (namespaces, mounts, cgroups), the cgroup v1 pids hierarchy it tracks its processes in, and
// iproute2.
func Unavailable() string {
	if os.Geteuid() != 0 {
		return "the lab makes network namespaces, mounts and cgroups: run as root"
	}
	if _, err := os.Stat(trackingHierarchy); err != nil {
		return fmt.Sprintf("the lab tracks its processes in the cgroup v1 pids hierarchy, and %s is missing", trackingHierarchy)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "the lab needs the ip command (iproute2): run make deps"
	}
	return ""
}

// Required says whether RequireEnv is set.
func Required() bool { return os.Getenv(RequireEnv) != "" }
