// Command plexusctl is the human interface to Plexus:
//
//	plexusctl status [--kubeconfig FILE]  the ClusterNetwork's conditions, effective config and nodes;
//	                              exits 1 when the network is not Ready (the last line says why)
//	plexusctl plan -f FILE | --patch P  what applying a ClusterNetwork would do, changing nothing;
//	                              exits 2 when the API server or the operator would refuse it
//	plexusctl check               probe pods on every node prove pod↔pod, Services, DNS, the API
//	                              server and NetworkPolicy isolation; exits 1 on any failure
//	plexusctl trace SRC DST PORT  what NetworkPolicy does with one connection and why;
//	                              exits 0 allowed, 1 denied, 2 bad input, 3 cluster unreadable
//	plexusctl lab up [-nodes 3] [-install kustomize|helm|manifests]
//	                              build what is missing, start the lab (idempotent), print its status
//	plexusctl lab down            remove everything lab up made, also after an aborted up
//	plexusctl lab status          print the lab summary again
//
// Every lab command takes -name and -slot to address a lab other than the default one (lab, slot
// 0): labs of different names and slots run side by side.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/internal/lab"
)

const usage = `usage:
  plexusctl status [--kubeconfig FILE] [--timeout D]
                                            Plexus' status in any cluster (KUBECONFIG, ~/.kube/config
                                            or in-cluster); exit code 1 when not Ready
  plexusctl plan (-f FILE | --patch JSON|@FILE) [-o text|json] [--kubeconfig FILE]
                                            what applying the ClusterNetwork would do, without
                                            changing anything; exit code 2 when it would be refused
  plexusctl check [--image IMG] [--keep] [--kubeconfig FILE]
                                            probe pods on every node (pod and host network): pod↔pod,
                                            ClusterIP, NodePort, DNS, API server, policy isolation;
                                            prints a matrix, removes them; exit code 1 on a failure
  plexusctl trace [-o json] <ns>/<pod> <ns>/<pod>|<ip> <port>/<proto>
                                            NetworkPolicy's verdict for one connection, with the
                                            policy and rule that decided each side; exit code 0
                                            allowed, 1 denied, 2 bad input, 3 cluster unreadable
  plexusctl lab up [-nodes N] [-repo DIR] [-skip-check] [-install kustomize|helm|manifests]
                                            start (or complete) the local lab, print its status and
                                            end with plexusctl check against it; -install picks the
                                            install path: kustomize (config/default, the default),
                                            helm (config/helm/plexus, the helm of make helm) or
                                            manifests (dist/install.yaml)
  plexusctl lab down [-repo DIR]            remove everything the lab made
  plexusctl lab status [-repo DIR]          print the lab summary
                                            every lab command: [-name lab -slot 0] picks one of
                                            several labs side by side (namespaces plexus-NAME-*,
                                            underlay 10.99.SLOT.0/24, API on 127.0.0.1:36443+SLOT)
`

func main() {
	// plexusctl reports through its own output; without a logger controller-runtime prints a
	// warning with a stack trace once a client is made 30 s after start (after lab up).
	ctrllog.SetLogger(logr.Discard())
	if err := run(os.Args[1:]); err != nil {
		exitError(err)
	}
}

func run(args []string) error {
	if len(args) >= 1 && args[0] == "trace" {
		os.Exit(traceCommand(args[1:], os.Stdout, os.Stderr, connectTrace))
	}
	if len(args) >= 1 && args[0] == "status" {
		return status(args[1:])
	}
	if len(args) >= 1 && args[0] == "plan" {
		return planCommand(args[1:])
	}
	if len(args) >= 1 && args[0] == "check" {
		return checkCommand(args[1:])
	}
	if len(args) < 2 || args[0] != "lab" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, rest := args[1], args[2:]
	if cmd == "forward" { // internal: the lab's API server forwarder, started by lab up
		return lab.ForwardCommand(rest, lab.DefaultHostAPIAddress)
	}
	fs := flag.NewFlagSet("lab "+cmd, flag.ExitOnError)
	nodes := fs.Int("nodes", 3, "number of nodes (up)")
	repo := fs.String("repo", "", "the Plexus checkout (default: found from the working directory)")
	timeout := fs.Duration("ready-timeout", 4*time.Minute, "how long up waits for nodes to turn Ready")
	name := fs.String("name", lab.DefaultName, "the lab's name (namespaces plexus-NAME-*, folder NAME in the Plexus cache)")
	slot := fs.Int("slot", 0, "the lab's slot, 0..255: underlay 10.99.SLOT.0/24 and fd10:99:SLOT::/64, API forwarder port 36443+SLOT")
	skipCheck := fs.Bool("skip-check", false, "up, status: leave out plexusctl check at the end of the summary")
	install := fs.String("install", string(lab.InstallKustomize), "up: how Plexus is installed: kustomize (kubectl apply -k config/default), "+
		"helm (helm install of config/helm/plexus; make helm builds the CLI) or manifests (kubectl apply -f dist/install.yaml)")
	helmChart := fs.String("helm-chart", "", "up with -install helm: the chart to install, a folder or a packaged .tgz (default config/helm/plexus)")
	_ = fs.Parse(rest)
	mode, err := lab.ParseInstallMode(*install)
	if err != nil {
		return err
	}
	if *helmChart != "" && mode != lab.InstallHelm {
		return fmt.Errorf("-helm-chart %s: only with -install helm", *helmChart)
	}
	root := *repo
	if root == "" {
		var err error
		if root, err = findRepo(); err != nil {
			return err
		}
	}
	if *slot < 0 || *slot > lab.MaxSlot {
		return fmt.Errorf("-slot %d: want 0..%d", *slot, lab.MaxSlot)
	}
	c := lab.NamedConfig(root, *name, *slot)
	c.Nodes = *nodes
	c.ReadyTimeout = *timeout
	c.Install = mode
	if *helmChart != "" {
		if c.HelmChart, err = filepath.Abs(*helmChart); err != nil {
			return err
		}
	}
	switch cmd {
	case "up":
		if err := lab.Up(c); err != nil {
			return err
		}
		return labCheck(c, *skipCheck)
	case "down":
		return lab.Down(c)
	case "status":
		if err := lab.Status(c); err != nil {
			return err
		}
		return labCheck(c, *skipCheck)
	}
	fmt.Fprint(os.Stderr, usage)
	os.Exit(2)
	return nil
}

// findRepo walks up from the working directory to the Plexus checkout.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/plexus-net/plexus\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the Plexus checkout: run from it or pass -repo")
		}
		dir = parent
	}
}
