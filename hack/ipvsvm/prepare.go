package ipvsvm

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	// kernelFile, busyboxFile, modulesDir, loadOrderFile, releaseFile and
	// completeStamp are the names prepare.sh writes in the cache directory.
	kernelFile    = "vmlinuz"
	busyboxFile   = "busybox"
	modulesDir    = "modules"
	loadOrderFile = "modules.load"
	releaseFile   = "kernel.release"
	completeStamp = ".complete"
	// qemuBinary is the emulator Run boots; prepare.sh installs it when
	// missing and allowed to (root).
	qemuBinary = "qemu-system-x86_64"
)

// RequireEnv, when set (make test sets it), makes the VM tests fail instead of skipping when qemu
// cannot be had: the IPVS backend is then unproven, which must not pass as green.
const RequireEnv = "PLEXUS_REQUIRE_IPVS_VM"

// ErrNoQEMU is wrapped by Prepare's error when qemu is not installed and
// could not be (not root, or the install failed).
var ErrNoQEMU = errors.New(qemuBinary + " is not installed and could not be installed")

//go:embed prepare.sh
var prepareScript []byte

// VM is a prepared cache directory: a kernel, its modules in load order and
// a static busybox. It is read-only once prepared; Run may be called
// concurrently.
type VM struct {
	// Dir is the cache directory.
	Dir string
	// KernelRelease is the kernel version, e.g. 6.1.0-56-cloud-amd64.
	KernelRelease string
	// Modules are the module paths relative to Dir/modules, in load order.
	Modules []string
}

// Prepare runs the embedded prepare.sh (downloading and caching on first
// use, a few seconds without network afterwards) with its progress lines
// going to progress, and opens the resulting cache directory. It fails when
// the kernel cannot be had or qemu is missing and cannot be installed.
func Prepare(ctx context.Context, progress io.Writer) (*VM, error) {
	if progress == nil {
		progress = io.Discard
	}
	cmd := exec.CommandContext(ctx, "bash", "-s")
	cmd.Stdin = bytes.NewReader(prepareScript)
	cmd.Stderr = progress
	out, err := cmd.Output()
	if _, lookErr := exec.LookPath(qemuBinary); lookErr != nil {
		return nil, fmt.Errorf("prepare the IPVS VM: %w", ErrNoQEMU)
	}
	if err != nil {
		return nil, fmt.Errorf("prepare the IPVS VM (hack/ipvsvm/prepare.sh): %w", err)
	}
	dir := strings.TrimSpace(string(out))
	return Open(dir)
}

// Open reads a cache directory that prepare.sh completed.
func Open(dir string) (*VM, error) {
	if _, err := os.Stat(filepath.Join(dir, completeStamp)); err != nil {
		return nil, fmt.Errorf("open IPVS VM cache %s: not prepared (run hack/ipvsvm/prepare.sh): %w", dir, err)
	}
	release, err := os.ReadFile(filepath.Join(dir, releaseFile))
	if err != nil {
		return nil, fmt.Errorf("open IPVS VM cache %s: %w", dir, err)
	}
	order, err := os.ReadFile(filepath.Join(dir, loadOrderFile))
	if err != nil {
		return nil, fmt.Errorf("open IPVS VM cache %s: %w", dir, err)
	}
	return &VM{
		Dir:           dir,
		KernelRelease: strings.TrimSpace(string(release)),
		Modules:       strings.Fields(string(order)),
	}, nil
}
