// Package suiterun runs an upstream test suite (the Kubernetes e2e binary, the Gateway API
// conformance suite) as a child process whose output goes to a file, with a progress line at a
// fixed interval, for the make targets that run them against a lab.
package suiterun

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Run runs name with args, its stdout and stderr in logFile, and calls progress with the time
// elapsed every interval while it runs. Cancelling ctx interrupts it with SIGINT (so ginkgo and
// go test stop their processes and write their reports) and kills it after waitDelay. env, when
// not empty, is appended to this process's environment.
func Run(ctx context.Context, logFile string, env []string, interval, waitDelay time.Duration,
	progress func(elapsed time.Duration), name string, args ...string) error {
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t0 := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			progress(time.Since(t0).Round(time.Second))
		}
	}
}
