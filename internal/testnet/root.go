package testnet

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

var (
	netnsProbeOnce sync.Once
	netnsProbeErr  string
)

// RequireRoot skips the test, saying why, unless the process runs as root and
// `ip netns` works. Real-kernel tests call it first.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real-kernel test: needs root (creates network namespaces); run `go test` as root")
	}
	netnsProbeOnce.Do(func() {
		if _, err := exec.LookPath(ipCommand); err != nil {
			netnsProbeErr = "real-kernel test: the `ip` command (iproute2) is not installed"
			return
		}
		if out, err := exec.Command(ipCommand, "netns", "list").CombinedOutput(); err != nil {
			netnsProbeErr = "real-kernel test: `ip netns list` fails: " + err.Error() + ": " + string(out)
		}
	})
	if netnsProbeErr != "" {
		t.Skip(netnsProbeErr)
	}
}
