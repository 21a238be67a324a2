package testnet

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

var sweepOnce sync.Once

// sweepStaleOnce deletes harness namespaces left behind by test processes
// that died without running their cleanups (a `go test -timeout` panic or a
// kill). It only touches names whose embedded process id no longer exists,
// so namespaces of tests running in parallel (other packages) are safe.
func sweepStaleOnce() {
	sweepOnce.Do(func() {
		entries, err := os.ReadDir(netnsDir)
		if err != nil {
			return
		}
		for _, e := range entries {
			pid, ok := pidFromName(e.Name())
			if !ok || processAlive(pid) {
				continue
			}
			_ = exec.Command(ipCommand, "netns", "del", e.Name()).Run()
		}
	})
}

// pidFromName extracts the hex process id from NamePrefix[prefix-]pid-rand.
func pidFromName(name string) (int, bool) {
	if !strings.HasPrefix(name, NamePrefix) {
		return 0, false
	}
	parts := strings.Split(strings.TrimPrefix(name, NamePrefix), "-")
	if len(parts) < 2 {
		return 0, false
	}
	pid, err := strconv.ParseInt(parts[len(parts)-2], 16, 32)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return int(pid), true
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
