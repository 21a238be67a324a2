package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/internal/clusterstatus"
	"github.com/plexus-net/plexus/internal/trace"
)

// Exit codes of plexusctl trace.
const (
	traceAllowed  = 0
	traceDenied   = 1
	traceBadInput = 2
	// traceNoAnswer: the cluster could not be read; no verdict.
	traceNoAnswer = 3
)

const traceUsage = `usage: plexusctl trace [--kubeconfig FILE] [--timeout D] [-o text|json] <ns>/<pod> <ns>/<pod>|<ip> <port>/<proto>
  prints what NetworkPolicy does with one connection: the source's egress on its node, the
  destination's ingress on its node, the policy and rule that decided each, and the verdict.
  exit code: 0 allowed, 1 denied, 2 bad input (pod not found, no IP, host network, bad port),
  3 the cluster could not be read
`

// traceCommand runs plexusctl trace with args and returns its exit code. connect makes the
// client (a real API server in main, the test's in tests).
func traceCommand(args []string, stdout, stderr io.Writer, connect func(*rest.Config) (client.Reader, error)) int {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, traceUsage) }
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for the API server")
	output := fs.String("o", "text", "output format: text or json")
	// Flags may come before, between or after the three arguments.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return traceBadInput
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 3 {
		fmt.Fprint(stderr, traceUsage)
		return traceBadInput
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(stderr, "plexusctl trace: -o %q: want text or json\n", *output)
		return traceBadInput
	}
	q, err := trace.ParseQuery(pos[0], pos[1], pos[2])
	if err != nil {
		fmt.Fprintln(stderr, "plexusctl trace:", err)
		return traceBadInput
	}
	cfg, err := clusterstatus.RESTConfig(*kubeconfig)
	if err != nil {
		fmt.Fprintln(stderr, "plexusctl trace:", err)
		return traceNoAnswer
	}
	cfg.Timeout = *timeout
	c, err := connect(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "plexusctl trace:", err)
		return traceNoAnswer
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cluster, err := trace.Fetch(ctx, c)
	if err != nil {
		fmt.Fprintln(stderr, "plexusctl trace:", err)
		return traceNoAnswer
	}
	report, err := trace.Run(cluster, q)
	if err != nil {
		fmt.Fprintln(stderr, "plexusctl trace:", err)
		if _, bad := errors.AsType[*trace.InputError](err); bad {
			return traceBadInput
		}
		return traceNoAnswer
	}
	if *output == "json" {
		if err := trace.FormatJSON(stdout, report); err != nil {
			fmt.Fprintln(stderr, "plexusctl trace:", err)
			return traceNoAnswer
		}
	} else {
		trace.Format(stdout, report)
	}
	if report.Allowed() {
		return traceAllowed
	}
	return traceDenied
}

// connectTrace is the client of a real cluster.
func connectTrace(cfg *rest.Config) (client.Reader, error) {
	s, err := trace.Scheme()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: s})
}
