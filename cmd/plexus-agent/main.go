// Command plexus-agent runs on every node (host network, NET_ADMIN): it programs the node's pod
// routes and masquerade from the ClusterNetwork, NodeNetworks and Nodes, installs plexus-cni and
// reports the node's NodeNetwork status. The wiring lives in package agent/agentrun, the loop in package agent.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/plexus-net/plexus/agent/agentrun"
	"github.com/plexus-net/plexus/internal/memlimit"
	"github.com/plexus-net/plexus/internal/probe"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" { // plexusctl check's probe pods
		if err := probe.Main(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "sysctl" {
		if err := runSysctl(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	fs := flag.NewFlagSet("plexus-agent", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: plexus-agent [flags]\n       plexus-agent sysctl net.ipv4.ip_forward=1 ...\n\n"+
			"Programs this node's pod network (routes, VXLAN, masquerade), installs plexus-cni and\n"+
			"reports the node's NodeNetwork status. SIGTERM stops it and leaves the data plane in place.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var opts agentrun.Options
	opts.BindFlags(fs)
	memLimit := memlimit.Default()
	fs.Var(memLimit, "memory-limit", "Memory limit of the agent's container (a quantity like 512Mi, or bytes; default: $"+memlimit.EnvMemoryLimit+
		"). The Go runtime's soft memory limit is set to 90% of it, so the garbage collector works harder rather than "+
		"let the heap reach the limit; $"+memlimit.EnvGoMemLimit+", when set, takes precedence. Empty or 0: no limit.")
	zopts := zap.Options{}
	zopts.BindFlags(fs)
	_ = fs.Parse(os.Args[1:])
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zopts)))
	logger := ctrl.Log.WithName("plexus-agent")
	if err := opts.Complete(); err != nil {
		logger.Error(err, "Invalid flags")
		os.Exit(2)
	}
	limitDesc, _ := memlimit.Apply(memLimit.Bytes)
	logger.Info(limitDesc)
	ctx := log.IntoContext(ctrl.SetupSignalHandler(), logger)
	if err := agentrun.Run(ctx, opts); err != nil {
		logger.Error(err, "plexus-agent failed")
		os.Exit(1)
	}
}
