package labbench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// labName and labSlot make the benchmarks' lab one of its own (namespaces plexus-bench-*,
	// folder bench, underlay 10.99.2.0/24, forwarder 127.0.0.1:36445): never a person's lab (slot 0)
	// nor the e2e suite's (slot 1), so it runs beside them and its Down cannot touch theirs.
	labName = "bench"
	labSlot = 2
	// labNodes is the node count the lab starts with; node-join adds nodes after them.
	labNodes = 3
)

// TestMain lets the test binary serve as the lab's API forwarder: lab up starts its own executable
// as `<exe> lab forward ...`, and under go test that executable is this binary.
func TestMain(m *testing.M) {
	lab.ServeForwarderIfAsked(benchConfig().HostAPIAddress)
	code := m.Run()
	if sharedSkip != "" {
		// A skipped benchmark's reason shows only under -v: say it in every case (make bench too).
		fmt.Printf("--- SKIP: %s\n", sharedSkip)
	}
	if err := downLab(); err != nil {
		fmt.Fprintln(os.Stderr, "labbench: lab down:", err)
		code = 1
	}
	os.Exit(code)
}

// benchLab is the lab the benchmarks share within one run of the test binary.
type benchLab struct {
	cfg   lab.Config
	kube  kubernetes.Interface
	nodes int // nodes in the lab now (node-join adds some)
}

var (
	sharedOnce sync.Once
	shared     *benchLab
	sharedSkip string
	sharedErr  error
)

// startLab starts the benchmarks' lab once per test binary run (later callers reuse it) and removes
// it when the run ends. It skips the benchmark, with the reason, when no lab can run here.
func startLab(b *testing.B) *benchLab {
	b.Helper()
	sharedOnce.Do(func() { shared, sharedSkip, sharedErr = upLab() })
	if sharedSkip != "" {
		b.Skip(sharedSkip)
	}
	if sharedErr != nil {
		b.Fatal(sharedErr)
	}
	return shared
}

// downLab removes the shared lab, if one was started (TestMain calls it after every benchmark ran).
func downLab() error {
	if shared == nil {
		return nil
	}
	err := lab.Down(shared.cfg)
	shared = nil
	return err
}

func upLab() (*benchLab, string, error) {
	if reason := lab.Unavailable(); reason != "" {
		return nil, "labbench: starts a lab (namespaces, mounts, cgroups, kubelets), and here it cannot: " + reason, nil
	}
	cfg := benchConfig()
	cfg.Out = &prefixWriter{w: os.Stderr, prefix: "    labbench: "}
	if lab.Exists(cfg.Dir) {
		// What an aborted run of these benchmarks left.
		if err := lab.Down(cfg); err != nil {
			return nil, "", fmt.Errorf("remove the lab an earlier run left: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join("/run/netns", cfg.UnderlayNetns())); err == nil {
		return nil, "", fmt.Errorf("network namespace %s exists but %s holds no lab: something else made it; remove it first",
			cfg.UnderlayNetns(), cfg.Dir)
	}
	if err := lab.Up(cfg); err != nil {
		_ = lab.Down(cfg)
		return nil, "", fmt.Errorf("lab up (logs in %s): %w", cfg.Dir, err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.AdminKubeconfig())
	if err != nil {
		_ = lab.Down(cfg)
		return nil, "", err
	}
	rc.QPS, rc.Burst = 100, 200
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		_ = lab.Down(cfg)
		return nil, "", err
	}
	return &benchLab{cfg: cfg, kube: kube, nodes: labNodes}, "", nil
}

// benchConfig is the benchmarks' lab: its own name and slot, labNodes nodes.
func benchConfig() lab.Config {
	wd, _ := os.Getwd() // go test runs in the package's folder
	c := lab.NamedConfig(filepath.Clean(filepath.Join(wd, "..", "..")), labName, labSlot)
	c.Nodes = labNodes
	return c
}

// prefixWriter prefixes each line (the lab's progress) so it reads as the benchmark's log.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(p.w, p.prefix+line); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
