// Command run runs the upstream Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance
// v1.6.3, built by hack/gateway-conformance/build.sh) with the GATEWAY-HTTP profile against a lab
// of its own with plexus-ingress serving the GatewayClass plexus, and prints the pass list, the
// failures with their first error, the skips with their reason and one summary line,
// `gateway-conformance: N/M core passed, K extended`. `make gateway-conformance` builds what it
// needs and runs it under a lock.
//
//	run [-slot 6] [-nodes 2] [-run-test NAME] [-keep] [-debug]
//
// The lab (namespaces plexus-gwconf-*, underlay 10.99.<slot>.0/24) is torn down after the run, also
// when it fails or is interrupted (unless -keep). The echo-basic images are built from the suite's
// echo-basic binary, its CoreDNS image from the lab's CoreDNS, and imported into every node under
// the exact names the suite's manifests use.
// The suite runs inside the lab's underlay namespace: that is where the lab routes its
// load-balancer pool (10.99.<slot>.192/26) to a node, so a Gateway's address — the address of
// plexus-ingress's LoadBalancer Service — is reached there as a client outside the cluster reaches
// it. A whole run writes the suite's conformance report to docs/gateway-conformance-report.yaml.
// Exit status: 0 when every test that ran passed, 1 when one failed, 2 when the run could not start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/plexus-net/plexus/internal/lab"
)

const (
	gatewayAPIVersion = "v1.6.3"
	labName           = "gwconf"
	defaultSlot       = 6
	gatewayClass      = "plexus"
	profileName       = "GATEWAY-HTTP"
	reportInRepo      = "docs/gateway-conformance-report.yaml"
)

// options are the command line.
type options struct {
	repo, runTest, cacheDir string
	slot, nodes             int
	timeout                 time.Duration
	keep, debug             bool
}

func main() {
	// The lab re-executes this binary as its API forwarder (with -listen given).
	lab.ServeForwarderIfAsked(lab.NamedConfig("", labName, defaultSlot).HostAPIAddress)
	o := parseFlags()
	code, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway-conformance:", err)
	}
	os.Exit(code)
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.repo, "repo", ".", "the Plexus checkout")
	flag.IntVar(&o.slot, "slot", defaultSlot, "the lab's slot (underlay 10.99.<slot>.0/24, API forwarder port 36443+slot)")
	flag.IntVar(&o.nodes, "nodes", 2, "lab nodes")
	flag.StringVar(&o.runTest, "run-test", "", "run only this conformance test (its short name); the report is then not written to docs/")
	flag.DurationVar(&o.timeout, "timeout", time.Hour, "limit for the suite's run")
	flag.BoolVar(&o.keep, "keep", false, "leave the lab up after the run (plexusctl lab down -name gwconf -slot N removes it)")
	flag.BoolVar(&o.debug, "debug", false, "the suite's -debug: print every request and response")
	flag.Parse()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	o.cacheDir = os.Getenv("PLEXUS_GATEWAY_CONFORMANCE_DIR")
	if o.cacheDir == "" {
		o.cacheDir = filepath.Join(cache, "plexus", "gateway-conformance", gatewayAPIVersion)
	}
	return o
}

func step(format string, args ...any) {
	fmt.Printf("==> [gateway-conformance] "+format+"\n", args...)
}

// run does the whole run and returns the exit status.
func run(o options) (int, error) {
	start := time.Now()
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return 2, err
	}
	if os.Geteuid() != 0 {
		return 2, errors.New("the lab creates namespaces, mounts and cgroups: run as root")
	}
	suiteBin := filepath.Join(o.cacheDir, "bin", "gateway-conformance.test")
	echoBin := filepath.Join(o.cacheDir, "bin", "echo-basic")
	for _, p := range []string{suiteBin, echoBin} {
		if _, err := os.Stat(p); err != nil {
			return 2, fmt.Errorf("%s missing: run hack/gateway-conformance/build.sh (make gateway-conformance does): %w", p, err)
		}
	}
	refs, corednsRef, err := suiteImageRefs(filepath.Join(o.cacheDir, "images.txt"))
	if err != nil {
		return 2, err
	}
	runDir := filepath.Join(o.cacheDir, "last-run")
	if err := os.RemoveAll(runDir); err != nil {
		return 2, err
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return 2, err
	}

	c := lab.NamedConfig(repo, labName, o.slot)
	c.Nodes = o.nodes
	// Every Gateway holds a load-balancer address, and the parallel tests with the extended
	// features claimed hold more than the default pool's 14 at once (they then wait out their
	// timeouts for an address): 62 addresses, 10.99.<slot>.192/26.
	c.LoadBalancerPoolBits = 26
	c.ExtraImages = echoImages(refs, echoBin)
	if corednsRef != "" {
		img, err := corednsImage(corednsRef, c.CacheDir)
		if err != nil {
			return 2, err
		}
		c.ExtraImages = append(c.ExtraImages, img)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A lab of this name left by an aborted run is removed first: every run starts clean.
	if err := lab.Down(c); err != nil {
		return 2, fmt.Errorf("remove the previous gateway-conformance lab: %w", err)
	}
	defer func() {
		if o.keep {
			step("lab kept (-keep): kubeconfig %s; remove it with plexusctl lab down -name %s -slot %d", c.AdminKubeconfig(), labName, o.slot)
			return
		}
		step("tearing the lab down")
		if err := lab.Down(c); err != nil {
			fmt.Fprintln(os.Stderr, "gateway-conformance: lab down:", err)
		}
	}()
	step("starting lab %q (slot %d, %d nodes) with %d images of the suite", labName, o.slot, o.nodes, len(c.ExtraImages))
	if err := lab.Up(c); err != nil {
		return 2, fmt.Errorf("lab up: %w", err)
	}
	if ctx.Err() != nil {
		return 2, ctx.Err()
	}
	t0 := time.Now()
	features, lbAddress, err := enableGatewayAPI(ctx, c.AdminKubeconfig())
	if err != nil {
		return 2, err
	}
	step("GatewayClass %s accepted %s after enabling, at %s; supported features: %s", gatewayClass, time.Since(t0).Round(time.Second), lbAddress, strings.Join(features, ","))

	kubeconfig, err := underlayKubeconfig(c, runDir)
	if err != nil {
		return 2, err
	}
	reportFile := filepath.Join(runDir, "report.yaml")
	eventsFile := filepath.Join(runDir, "suite.json")
	version := implementationVersion(repo)
	t1 := time.Now()
	step("running the suite in %s (GATEWAY-HTTP; output: %s)", c.UnderlayNetns(), eventsFile)
	suiteErr := runSuite(ctx, eventsFile, kubeconfig, c.UnderlayNetns(), suiteBin, suiteArgs(o, features, reportFile, version))
	if ctx.Err() != nil {
		return 2, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	f, err := os.Open(eventsFile)
	if err != nil {
		return 2, err
	}
	res, err := readEvents(f)
	f.Close()
	if err != nil {
		return 2, err
	}
	rep, err := readReport(reportFile)
	if err != nil {
		return 2, fmt.Errorf("%w (the suite: %v; output: %s)", err, suiteErr, eventsFile)
	}
	p, ok := rep.profileNamed(profileName)
	if !ok {
		return 2, fmt.Errorf("the report %s has no %s profile", reportFile, profileName)
	}
	step("suite ran in %s; report %s", time.Since(t1).Round(time.Second), reportFile)
	if o.runTest == "" {
		if err := copyFile(reportFile, filepath.Join(repo, reportInRepo)); err != nil {
			return 2, err
		}
		step("report written to %s", reportInRepo)
	}
	printResults(os.Stdout, res, p, res.features, time.Since(start))
	if len(res.failed) > 0 || res.suiteFailed != "" || p.Core.Statistics.Failed > 0 {
		return 1, nil
	}
	if len(res.passed) == 0 {
		return 1, errors.New("no conformance test passed")
	}
	return 0, nil
}

// suiteArgs are the conformance suite's flags: the class, the features plexus-ingress claims, the
// profile and the report with the implementation's details.
func suiteArgs(o options, features []string, reportFile, version string) []string {
	args := []string{
		"-test.v=test2json", "-test.run", "^TestConformance$", "-test.timeout", o.timeout.String(),
		"-gateway-class", gatewayClass,
		"-supported-features", strings.Join(features, ","),
		"-conformance-profiles", profileName,
		"-report-output", reportFile,
		"-organization", "plexus-net", "-project", "plexus",
		"-url", "https://github.com/plexus-net/plexus", "-version", version,
		"-contact", "https://github.com/plexus-net/plexus/issues",
	}
	if o.runTest != "" {
		args = append(args, "-run-test", o.runTest)
	}
	if o.debug {
		args = append(args, "-debug")
	}
	return args
}

// implementationVersion names the checkout the run tested: its commit, marked dirty when changed.
func implementationVersion(repo string) string {
	out, err := exec.Command("git", "-C", repo, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "dev"
	}
	return "dev-" + strings.TrimSpace(string(out))
}

// underlayKubeconfig writes the lab's admin kubeconfig with the API server's underlay address
// (the suite runs in the underlay namespace, where the machine's forwarder port is not).
func underlayKubeconfig(c lab.Config, runDir string) (string, error) {
	b, err := os.ReadFile(c.AdminKubeconfig())
	if err != nil {
		return "", fmt.Errorf("the lab's kubeconfig: %w", err)
	}
	s := strings.ReplaceAll(string(b), "https://"+c.HostAPIAddress, c.APIServerURL())
	if s == string(b) {
		return "", fmt.Errorf("the lab's kubeconfig %s does not name https://%s", c.AdminKubeconfig(), c.HostAPIAddress)
	}
	out := filepath.Join(runDir, "kubeconfig")
	return out, os.WriteFile(out, []byte(s), 0o600)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
