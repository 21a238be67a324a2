package ipvs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/hack/ipvsvm"
)

const (
	// guestEnv is set in the VM: it switches the TestGuest* tests on and
	// TestIPVSInVM off.
	guestEnv = "PLEXUS_IPVS_GUEST"
	// guestTests selects the tests the VM runs.
	guestTests = "^TestGuest"
	// guestTimeout bounds the tests inside the VM: each sync of the mode's
	// nftables table runs nft a dozen times, slow under TCG.
	guestTimeout = "4m"
	// vmTimeout bounds the whole VM run (boot, tests, power off).
	vmTimeout = 5 * time.Minute
)

// inGuest reports whether this test binary runs inside the IPVS VM.
func inGuest() bool { return os.Getenv(guestEnv) == "1" }

// requireGuest skips a TestGuest* test outside the VM.
func requireGuest(t *testing.T) {
	t.Helper()
	if !inGuest() {
		t.Skip("runs inside the IPVS VM only (TestIPVSInVM boots it)")
	}
}

// TestIPVSInVM builds this package's test binary statically, boots it in a
// VM whose kernel has IPVS (this host's kernel has none) and runs the
// TestGuest* tests there: real IPVS, a real dummy device, real TCP through
// the virtual IPs. It skips only when not root or when qemu is missing and
// cannot be installed.
func TestIPVSInVM(t *testing.T) {
	if inGuest() {
		t.Skip("already inside the VM")
	}
	if os.Geteuid() != 0 {
		t.Skip("boots a VM with a kernel fetched into root's cache and may install qemu: needs root")
	}
	ctx := context.Background()
	vm, err := ipvsvm.Prepare(ctx, logWriter{t})
	if errors.Is(err, ipvsvm.ErrNoQEMU) && os.Getenv(ipvsvm.RequireEnv) == "" {
		t.Skipf("no VM here: %v (make test sets %s=1 and fails instead)", err, ipvsvm.RequireEnv)
	}
	if err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(t.TempDir(), "ipvs.test")
	start := time.Now()
	build := exec.CommandContext(ctx, goCommand(), "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the static test binary: %v\n%s", err, out)
	}
	t.Logf("static test binary built in %s", time.Since(start).Round(time.Millisecond))

	var console bytes.Buffer
	res, err := vm.Run(ctx, ipvsvm.RunOptions{
		Binary: bin,
		Args:   []string{"-test.v", "-test.count=1", "-test.run", guestTests, "-test.timeout", guestTimeout},
		Env:    map[string]string{guestEnv: "1"},
		// knftables runs nft; the guest has busybox only.
		HostBinaries: []string{"nft"},
		Console:      io.MultiWriter(&console, logWriter{t}),
		Timeout:      vmTimeout,
	})
	if err != nil {
		t.Fatalf("VM run: %v", err)
	}
	t.Logf("VM run (%s, kernel %s): boot %s, total %s", res.Accel, vm.KernelRelease,
		res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	if res.ExitCode != 0 {
		t.Fatalf("the tests in the VM failed (exit code %d); console above", res.ExitCode)
	}
	// A guest that skipped everything would pass too: require the tests.
	for _, name := range []string{"TestGuestKernelInterface", "TestGuestDummyBinder", "TestGuestServiceTraffic", "TestGuestMasquerade", "TestGuestUDP",
		"TestGuestHealthCheck", "TestGuestSysctls", "TestGuestRemove", "TestGuestUDPFlowLeavesRemovedEndpoint"} {
		if !strings.Contains(console.String(), "--- PASS: "+name) {
			t.Errorf("%s did not pass in the VM", name)
		}
	}
}

// goCommand is the go tool that runs this test.
func goCommand() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// logWriter sends each line to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(l)
	}
	return len(p), nil
}
