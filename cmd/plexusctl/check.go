package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/plexus-net/plexus/internal/check"
	"github.com/plexus-net/plexus/internal/clusterstatus"
	"github.com/plexus-net/plexus/internal/lab"
)

// errCheckFailed makes plexusctl exit 1 without printing more: the report says what failed.
type errCheckFailed struct{}

func (errCheckFailed) Error() string { return "check failed" }

// checkCommand runs probe pods on every node, prints the matrix and removes them.
func checkCommand(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)")
	image := fs.String("image", "", "image of the probe pods, holding /plexus-agent (default: the agent image Plexus runs)")
	ready := fs.Duration("ready-timeout", 2*time.Minute, "how long to wait for the probe pods")
	keep := fs.Bool("keep", false, "leave the check's namespace for inspection")
	_ = fs.Parse(args)
	cfg, err := clusterstatus.RESTConfig(*kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c, err := clusterstatus.NewClient(cfg)
	if err != nil {
		return err
	}
	// Ctrl-C cancels the check; check.Run still removes what it created.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := check.Run(ctx, cs, c, check.Options{Image: *image, Ready: *ready, Keep: *keep, Progress: os.Stderr})
	if err != nil {
		return err
	}
	check.Format(os.Stdout, rep)
	if !rep.OK() {
		return errCheckFailed{}
	}
	return nil
}

// labCheck ends a lab summary with plexusctl check against the lab: the same probe pods and
// matrix a user runs on any cluster. A failed check fails the command.
func labCheck(c lab.Config, skip bool) error {
	if skip {
		return nil
	}
	fmt.Println("\nplexusctl check (probe pods on every node; -skip-check leaves it out):")
	return checkCommand([]string{"--kubeconfig", c.AdminKubeconfig()})
}
