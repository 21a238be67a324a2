package ipvsvm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

const (
	// DefaultTimeout bounds a whole run (boot, test, power off) when
	// RunOptions.Timeout is zero. A run takes 4-8 s under TCG; the margin is
	// for a loaded 2-core machine.
	DefaultTimeout = 3 * time.Minute
	// guestMemory is the VM's memory: the initramfs (kernel modules, busybox,
	// a 20-40 MB test binary) unpacks into it.
	guestMemory = "512"
	// kernelCmdline: console on the serial port that -nographic wires to
	// stdio; panic=-1 with -no-reboot turns a kernel panic into qemu exiting
	// instead of a hang.
	kernelCmdline = "console=ttyS0 panic=-1 quiet"
	// kvmModulesDir lists the loaded modules (also where /proc/modules is
	// missing).
	kvmModulesDir = "/sys/module"
)

// kvmModules are the host modules that mean /dev/kvm can boot a stock
// kernel. /dev/kvm alone is not enough: a nested software backend (kvm_pvm)
// also provides it and fails on Debian's kernel.
var kvmModules = []string{"kvm_intel", "kvm_amd"}

// consoleEscapes are the terminal control sequences SeaBIOS and qemu write
// (reset, clear screen, wrap mode): noise in a test log.
var consoleEscapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[a-zA-Z]|c)`)

// RunOptions says what to run in the guest.
type RunOptions struct {
	// Binary is a statically linked executable (CGO_ENABLED=0), e.g. from
	// `go test -c`.
	Binary string
	// Args are its arguments.
	Args []string
	// HostBinaries are host programs (a name on PATH or a path) copied into
	// the guest's /bin with their shared libraries, e.g. "nft".
	HostBinaries []string
	// Env is exported in the guest before the binary starts.
	Env map[string]string
	// Console receives the guest's console (kernel messages and the
	// binary's output) as it comes; nil discards it.
	Console io.Writer
	// Timeout bounds the run; zero means DefaultTimeout.
	Timeout time.Duration
}

// Result is the outcome of a run that got as far as the marker line.
type Result struct {
	// ExitCode is the binary's exit code, from the marker line.
	ExitCode int
	// Accel is "tcg" or "kvm".
	Accel string
	// Boot is the time from starting qemu to the first line the guest's
	// /init prints (kernel start and initramfs unpack).
	Boot time.Duration
	// Total is the wall time from starting qemu to its exit.
	Total time.Duration
}

// Accel returns the accelerator Run uses: "kvm" only when kvm_intel or
// kvm_amd is loaded and /dev/kvm exists, "tcg" otherwise.
func Accel() string {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return "tcg"
	}
	for _, m := range kvmModules {
		if _, err := os.Stat(filepath.Join(kvmModulesDir, m)); err == nil {
			return "kvm"
		}
	}
	return "tcg"
}

// Run boots the VM with opts.Binary as the payload of /init and waits for it
// to power off. It returns an error when the guest never printed the marker
// line (kernel panic, timeout, the binary killed the guest); a binary that
// fails is a Result with a non-zero ExitCode and no error.
func (vm *VM) Run(ctx context.Context, opts RunOptions) (Result, error) {
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	console := opts.Console
	if console == nil {
		console = io.Discard
	}
	initrd, err := vm.buildInitramfs(opts)
	if err != nil {
		return Result{}, fmt.Errorf("build initramfs: %w", err)
	}
	tmp, err := os.MkdirTemp("", "ipvsvm-")
	if err != nil {
		return Result{}, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	initrdPath := filepath.Join(tmp, "initrd.cpio.gz")
	if err := os.WriteFile(initrdPath, initrd, 0o600); err != nil {
		return Result{}, fmt.Errorf("write initramfs: %w", err)
	}

	res := Result{Accel: Accel(), ExitCode: -1}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	cpu := "max"
	if res.Accel == "kvm" {
		cpu = "host"
	}
	// The default machine, not microvm: microvm hangs under TCG.
	cmd := exec.CommandContext(ctx, qemuBinary,
		"-accel", res.Accel, "-cpu", cpu, "-smp", "1", "-m", guestMemory,
		"-kernel", filepath.Join(vm.Dir, kernelFile), "-initrd", initrdPath,
		"-append", kernelCmdline,
		"-nographic", "-no-reboot", "-nic", "none")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, fmt.Errorf("qemu stdout: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", qemuBinary, err)
	}
	found := false
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := consoleEscapes.ReplaceAllString(strings.TrimRight(sc.Text(), "\r"), "")
		if res.Boot == 0 && strings.Contains(line, initStartedLine) {
			res.Boot = time.Since(start)
		}
		fmt.Fprintln(console, line)
		if code, ok := parseResult(line); ok {
			res.ExitCode, found = code, true
		}
	}
	waitErr := cmd.Wait()
	res.Total = time.Since(start)
	switch {
	case found:
		return res, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return res, fmt.Errorf("VM run timed out after %s without a result line", opts.Timeout)
	default:
		return res, fmt.Errorf("VM exited without a result line (kernel panic or the guest died): %v", waitErr)
	}
}
