// Command vmrun boots a static binary in the IPVS test VM by hand:
//
//	CGO_ENABLED=0 go test -c -o /tmp/ipvs.test ./agent/proxy/ipvs
//	go run ./hack/ipvsvm/vmrun -env PLEXUS_IPVS_GUEST=1 /tmp/ipvs.test -test.v -test.run ^TestGuest
//
// It prepares the cache if needed, streams the console and exits with the
// binary's exit code (125 when the VM gave no result).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/plexus-net/plexus/hack/ipvsvm"
)

// noResultExit is the exit code when the guest printed no result line.
const noResultExit = 125

// envFlags collects repeated -env KEY=VALUE flags.
type envFlags map[string]string

func (e envFlags) String() string { return fmt.Sprint(map[string]string(e)) }

func (e envFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	e[k] = v
	return nil
}

func main() {
	env := envFlags{}
	flag.Var(env, "env", "KEY=VALUE exported in the guest (repeatable)")
	timeout := flag.Duration("timeout", ipvsvm.DefaultTimeout, "bound on the whole run")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: vmrun [-env K=V]... [-timeout d] BINARY [ARGS...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx := context.Background()
	vm, err := ipvsvm.Prepare(ctx, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(noResultExit)
	}
	res, err := vm.Run(ctx, ipvsvm.RunOptions{
		Binary: flag.Arg(0), Args: flag.Args()[1:], Env: env, Console: os.Stdout, Timeout: *timeout,
	})
	fmt.Fprintf(os.Stderr, "==> [ipvsvm] %s, boot %s, total %s\n", res.Accel, res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(noResultExit)
	}
	os.Exit(res.ExitCode)
}
