package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/plexus-net/plexus/internal/clusterstatus"
)

// errNotReady makes plexusctl exit 1 without printing more: the report's last line says why.
type errNotReady struct{}

func (errNotReady) Error() string { return "not Ready" }

// status prints the cluster network's status report and fails when it is not Ready.
func status(args []string) error {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for the API server")
	_ = fs.Parse(args)
	cfg, err := clusterstatus.RESTConfig(*kubeconfig)
	if err != nil {
		return err
	}
	cfg.Timeout = *timeout
	c, err := clusterstatus.NewClient(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	snap, err := clusterstatus.Fetch(ctx, c, time.Now())
	if err != nil {
		return err
	}
	clusterstatus.Format(os.Stdout, snap)
	if ok, _ := clusterstatus.Verdict(snap); !ok {
		return errNotReady{}
	}
	return nil
}

// exitError prints err (unless the report already said it) and exits non-zero.
func exitError(err error) {
	if _, refused := err.(errRefused); refused {
		os.Exit(2)
	}
	_, failed := err.(errCheckFailed)
	if _, quiet := err.(errNotReady); !quiet && !failed {
		fmt.Fprintln(os.Stderr, "plexusctl:", err)
	}
	os.Exit(1)
}
