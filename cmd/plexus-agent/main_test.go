package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlags builds the binary and checks that --help documents every flag, and that a missing
// node name is refused with exit code 2 and a message naming the flag.
func TestFlags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "plexus-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	for _, flag := range []string{"node-name", "kubeconfig", "netns", "cni-bin-dir", "cni-conf-dir", "cni-data-dir",
		"cni-plugin-binary", "node-state-file", "node-ip", "metrics-bind-address", "health-probe-bind-address", "resync-period", "memory-limit"} {
		if !strings.Contains(string(help), "-"+flag+" ") {
			t.Errorf("--help does not document --%s:\n%s", flag, help)
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "NODE_NAME=")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--node-name") {
		t.Errorf("without a node name: %v: %s; want exit code 2 naming --node-name", err, out)
	}
}
