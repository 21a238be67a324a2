package probe

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Main is `plexus-agent probe serve|run ...`, what `plexusctl check` runs in its pods.
func Main(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: plexus-agent probe serve [--listen :8080] [--http-listen :8081] | run --targets JSON [--timeout 2s] [--retry-for 15s]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	switch args[0] {
	case "serve":
		fs := flag.NewFlagSet("probe serve", flag.ContinueOnError)
		listen := fs.String("listen", ":8080", "address to answer TCP and UDP probes on")
		httpListen := fs.String("http-listen", "", "address to answer HTTP probes on (empty: none)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		host, _ := os.Hostname()
		if *httpListen != "" {
			errs := make(chan error, 2)
			go func() { errs <- ServeHTTP(ctx, *httpListen, host) }()
			go func() { errs <- Serve(ctx, *listen, host) }()
			return <-errs
		}
		return Serve(ctx, *listen, host)
	case "run":
		fs := flag.NewFlagSet("probe run", flag.ContinueOnError)
		raw := fs.String("targets", "", "the targets, a JSON list")
		timeout := fs.Duration("timeout", 2*time.Second, "timeout of one probe")
		retryFor := fs.Duration("retry-for", 15*time.Second, "repeat the probes that did not give the expected outcome until this long has passed (the network converges after the pods start)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var targets []Target
		if err := json.Unmarshal([]byte(*raw), &targets); err != nil {
			return fmt.Errorf("--targets: %w", err)
		}
		return Encode(os.Stdout, RunUntil(ctx, targets, *timeout, *retryFor))
	}
	return fmt.Errorf("probe %s: want serve or run", args[0])
}

// RunUntil runs the targets, then runs again those whose outcome was not the expected one until
// they are or retryFor has passed; it returns each target's last result.
func RunUntil(ctx context.Context, targets []Target, timeout, retryFor time.Duration) []Result {
	deadline := time.Now().Add(retryFor)
	out := Run(ctx, targets, timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var again []int
		for i, r := range out {
			if !r.Passed() {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
		sub := make([]Target, len(again))
		for j, i := range again {
			sub[j] = targets[i]
		}
		for j, r := range Run(ctx, sub, timeout) {
			out[again[j]] = r
		}
	}
	return out
}
