package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/internal/clusterstatus"
	"github.com/plexus-net/plexus/internal/plan"
)

// errRefused makes plexusctl exit 2: the plan printed why.
type errRefused struct{}

func (errRefused) Error() string { return "refused" }

// planCommand prints what applying a ClusterNetwork would do; exit 2 when it would be refused.
func planCommand(args []string) error {
	fs := flag.NewFlagSet("plan", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)")
	file := fs.String("f", "", "the ClusterNetwork to plan, as you would apply it (- for stdin)")
	patch := fs.String("patch", "", "a JSON merge patch (JSON or YAML; @FILE reads it from a file) applied to the live ClusterNetwork")
	output := fs.String("o", "text", "text or json")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the API server")
	_ = fs.Parse(args)
	if *output != "text" && *output != "json" {
		return fmt.Errorf("-o %s: want text or json", *output)
	}
	cfg, err := clusterstatus.RESTConfig(*kubeconfig)
	if err != nil {
		return err
	}
	cfg.Timeout = *timeout
	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	live := &v1.ClusterNetwork{}
	if err := c.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, live); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("read ClusterNetwork %s: %w", v1.DefaultClusterNetworkName, err)
		}
		live = nil
	}
	proposal, err := plan.Proposal(live, *file, *patch)
	if err != nil {
		return err
	}
	res, err := plan.Make(ctx, c, proposal)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		plan.Format(os.Stdout, res)
	}
	if res.Refused() {
		return errRefused{}
	}
	return nil
}
