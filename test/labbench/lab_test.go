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
	// labDirName is the benchmarks' lab folder under the Plexus cache: never a person's lab (lab)
	// nor the e2e suite's (e2e-lab), so the benchmarks' Down cannot touch theirs.
	labDirName = "labbench-lab"
	// hostAPIAddress is this lab's API server forwarder on the machine (a person's lab uses
	// 127.0.0.1:36443, the e2e suite's 127.0.0.1:36444).
	hostAPIAddress = "127.0.0.1:36445"
	// labNodes is the node count the lab starts with; node-join adds nodes after them.
	labNodes = 3
)

// TestMain lets the test binary serve as the lab's API forwarder: lab up starts its own executable
// as `<exe> lab forward ...`, and under go test that executable is this binary.
func TestMain(m *testing.M) {
	lab.ServeForwarderIfAsked(hostAPIAddress)
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
// it when the run ends. It skips the benchmark, with the reason, when not root or when another lab
// runs on the machine (the lab's namespace names are fixed, so two labs would clash).
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
	if os.Geteuid() != 0 {
		return nil, "labbench: starts a lab (namespaces, mounts, cgroups, kubelets): run `go test -bench . ./test/labbench/` as root", nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, "", err
	}
	cfg := lab.DefaultConfig(filepath.Clean(filepath.Join(wd, "..", "..")))
	cfg.Dir = filepath.Join(cfg.CacheDir, labDirName)
	cfg.HostAPIAddress = hostAPIAddress
	cfg.Nodes = labNodes
	cfg.Out = &prefixWriter{w: os.Stderr, prefix: "    labbench: "}
	if _, err := os.Stat(filepath.Join("/run/netns", lab.UnderlayNetns)); err == nil {
		if !lab.Exists(cfg.Dir) {
			return nil, fmt.Sprintf("labbench: a lab already runs on this machine (network namespace %s exists, not made by "+
				"these benchmarks); the lab's names are fixed, so a second one would clash: run `plexusctl lab down` "+
				"(or wait for the e2e suite) first", lab.UnderlayNetns), nil
		}
		// What an aborted run of these benchmarks left.
		if err := lab.Down(cfg); err != nil {
			return nil, "", fmt.Errorf("remove the lab an earlier run left: %w", err)
		}
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
