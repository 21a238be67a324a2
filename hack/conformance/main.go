// Command conformance runs the upstream Kubernetes e2e suite's [sig-network] [Conformance] specs
// (v1.37.2) against a lab of its own with Plexus as the only CNI, service proxy and cluster DNS, and
// prints the pass list, the failures with their first error line, the skips with their reason and
// one summary line, `conformance: N/M passed (T s)`. `make conformance` builds what it needs
// (hack/conformance/build.sh) and runs it under a lock of its own.
//
//	conformance [-procs 6] [-focus RE] [-nodes 3] [-keep] [-dry-run]
//
// The lab is the one called conformance in slot 5 (namespaces plexus-conformance-*, underlay
// 10.99.5.0/24); it is torn down after the run, also when the run fails or is interrupted (unless
// -keep). The e2e test images are built here (images.go) and imported into every node under the
// names the specs pull. The suite runs inside the lab's underlay namespace, beside the control
// plane, so it reaches the nodes' addresses as a runner on a cluster's network does. Exit status: 0
// when every selected spec passed, 1 when one failed, 2 when the run could not start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/plexus-net/plexus/internal/lab"
	"github.com/plexus-net/plexus/internal/suiterun"
)

const (
	k8sVersion = "v1.37.2"
	labName    = "conformance"
	labSlot    = 5
	// defaultFocus selects the specs `make conformance` promises to pass.
	defaultFocus = `\[sig-network\].*\[Conformance\]`
)

// options are the command line.
type options struct {
	repo, focus     string
	procs, nodes    int
	timeout         time.Duration
	keep, dryRun    bool
	cacheDir, runID string
}

func main() {
	lab.ServeForwarderIfAsked(lab.NamedConfig("", labName, labSlot).HostAPIAddress)
	o := parseFlags()
	code, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
	}
	os.Exit(code)
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.repo, "repo", ".", "the Plexus checkout")
	flag.StringVar(&o.focus, "focus", defaultFocus, "regular expression selecting the specs by full name")
	flag.IntVar(&o.procs, "procs", 6, "parallel ginkgo processes (specs marked Serial run alone, at the end)")
	flag.IntVar(&o.nodes, "nodes", 3, "lab nodes")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Hour, "ginkgo's limit for the whole run")
	flag.BoolVar(&o.keep, "keep", false, "leave the lab up after the run (plexusctl lab down -name conformance -slot 5 removes it)")
	flag.BoolVar(&o.dryRun, "dry-run", false, "list the selected specs without a lab (ginkgo --dry-run)")
	flag.Parse()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	o.cacheDir = envOr("PLEXUS_CONFORMANCE_DIR", filepath.Join(cache, "plexus", "conformance", k8sVersion))
	return o
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func step(format string, args ...any) { fmt.Printf("==> [conformance] "+format+"\n", args...) }

// run does the whole run and returns the exit status.
func run(o options) (int, error) {
	start := time.Now()
	focus, err := regexp.Compile(o.focus)
	if err != nil {
		return 2, fmt.Errorf("-focus: %w", err)
	}
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return 2, err
	}
	bin := filepath.Join(o.cacheDir, "bin")
	e2eTest, ginkgo := filepath.Join(bin, "e2e.test"), filepath.Join(bin, "ginkgo")
	for _, p := range []string{e2eTest, ginkgo, filepath.Join(bin, "agnhost")} {
		if _, err := os.Stat(p); err != nil {
			return 2, fmt.Errorf("%s missing: run hack/conformance/build.sh (make conformance does): %w", p, err)
		}
	}
	runDir := filepath.Join(o.cacheDir, "last-run")
	if err := os.RemoveAll(runDir); err != nil {
		return 2, err
	}
	if err := os.MkdirAll(filepath.Join(runDir, "etc"), 0o755); err != nil {
		return 2, err
	}
	if o.dryRun {
		return dryRun(o, ginkgo, e2eTest, runDir, focus)
	}
	if os.Geteuid() != 0 {
		return 2, errors.New("the lab creates namespaces, mounts and cgroups: run as root")
	}

	c := lab.NamedConfig(repo, labName, labSlot)
	c.Nodes = o.nodes
	listed, err := listImages(e2eTest)
	if err != nil {
		return 2, err
	}
	refs, err := resolveImages(listed)
	if err != nil {
		return 2, err
	}
	m := machineFiles{agnhost: filepath.Join(bin, "agnhost"), pause: filepath.Join(c.CacheDir, "bin", "pause"), etcDir: filepath.Join(runDir, "etc")}
	if c.ExtraImages, err = extraImages(refs, m); err != nil {
		return 2, err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A lab of this name left by an aborted run is removed first: every run starts clean.
	if err := lab.Down(c); err != nil {
		return 2, fmt.Errorf("remove the previous conformance lab: %w", err)
	}
	defer func() {
		if o.keep {
			step("lab kept (-keep): kubeconfig %s; remove it with plexusctl lab down -name %s -slot %d", c.AdminKubeconfig(), labName, labSlot)
			return
		}
		step("tearing the lab down")
		if err := lab.Down(c); err != nil {
			fmt.Fprintln(os.Stderr, "conformance: lab down:", err)
		}
	}()
	step("starting lab %q (slot %d, %d nodes) with %d e2e test images", labName, labSlot, o.nodes, len(c.ExtraImages))
	if err := lab.Up(c); err != nil {
		return 2, fmt.Errorf("lab up: %w", err)
	}
	if ctx.Err() != nil {
		return 2, ctx.Err()
	}
	kubeconfig, err := underlayKubeconfig(c, runDir)
	if err != nil {
		return 2, err
	}
	t0 := time.Now()
	report := filepath.Join(runDir, "report.json")
	logFile := filepath.Join(runDir, "ginkgo.log")
	step("running the specs matching %s with ginkgo --procs=%d (output: %s)", o.focus, o.procs, logFile)
	args := append([]string{"netns", "exec", c.UnderlayNetns(), ginkgo}, ginkgoArgs(o, runDir, false)...)
	args = append(args, e2eTest, "--")
	args = append(args, suiteArgs(kubeconfig, filepath.Join(c.CacheDir, "controlplane", k8sVersion, "kubectl"))...)
	if err := runLogged(ctx, logFile, "ip", args...); err != nil && ctx.Err() != nil {
		return 2, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	reports, err := readReport(report)
	if err != nil {
		return 2, fmt.Errorf("%w (ginkgo output: %s)", err, logFile)
	}
	s := summarize(reports, focus)
	step("specs ran in %s; report %s, JUnit %s", time.Since(t0).Round(time.Second), report, filepath.Join(runDir, "junit.xml"))
	s.print(os.Stdout, time.Since(start))
	if s.total() == 0 {
		return 1, fmt.Errorf("no spec matched %s", o.focus)
	}
	if !s.ok() {
		return 1, nil
	}
	return 0, nil
}

// ginkgoArgs are the ginkgo CLI's flags: reports into runDir, parallel processes.
func ginkgoArgs(o options, runDir string, dryRun bool) []string {
	// --silence-skips: the thousands of specs outside the focus would each print an S.
	args := []string{"--focus", o.focus, "--no-color", "--silence-skips", "--timeout", o.timeout.String(),
		"--output-dir", runDir, "--json-report", "report.json", "--junit-report", "junit.xml"}
	if dryRun {
		return append(args, "--dry-run")
	}
	// Serial specs run after the parallel ones, on one process, whatever --procs says.
	return append(args, fmt.Sprintf("--procs=%d", o.procs), "--poll-progress-after=5m")
}

// suiteArgs are the e2e suite's own flags: the local provider (no cloud), the lab's kubeconfig and
// the kubectl the specs exec with.
func suiteArgs(kubeconfig, kubectl string) []string {
	return []string{"--provider=local", "--kubeconfig=" + kubeconfig, "--kubectl-path=" + kubectl}
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

// runLogged runs a command with its output in logFile, printing a line every minute while it runs.
// Cancelling ctx interrupts it (SIGINT, so ginkgo stops its processes and writes its report).
func runLogged(ctx context.Context, logFile, name string, args ...string) error {
	return suiterun.Run(ctx, logFile, nil, time.Minute, 2*time.Minute, func(elapsed time.Duration) {
		step("%s: %d specs finished so far (output: %s)", elapsed, specsDone(logFile), logFile)
	}, name, args...)
}

// specsDone counts the specs that ran to the end in ginkgo's output so far: its default output
// prints one • per spec that passed or failed (skips are silenced).
func specsDone(logFile string) int {
	f, err := os.Open(logFile)
	if err != nil {
		return 0
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return strings.Count(string(b), "•")
}

// dryRun lists the specs the focus selects (ginkgo --dry-run needs no cluster) and their count.
func dryRun(o options, ginkgo, e2eTest, runDir string, focus *regexp.Regexp) (int, error) {
	args := append(ginkgoArgs(o, runDir, true), e2eTest, "--")
	args = append(args, suiteArgs(filepath.Join(runDir, "kubeconfig"), "kubectl")...)
	logFile := filepath.Join(runDir, "ginkgo.log")
	if err := runLogged(context.Background(), logFile, ginkgo, args...); err != nil {
		return 2, fmt.Errorf("ginkgo --dry-run: %w (output: %s)", err, logFile)
	}
	reports, err := readReport(filepath.Join(runDir, "report.json"))
	if err != nil {
		return 2, err
	}
	s := summarize(reports, focus)
	for _, l := range [][]outcome{s.passed, s.failed, s.skipped} {
		for _, sp := range l {
			fmt.Println("  " + sp.name)
		}
	}
	fmt.Printf("conformance: %d specs selected by %s (dry run)\n", s.total(), o.focus)
	return 0, nil
}
