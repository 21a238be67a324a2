// Package e2e is the end-to-end suite of the lab: it starts its own lab (internal/lab: a real
// control plane and kubelets with their own containerd in their own namespaces, Plexus installed
// from config/default), checks what a cluster operator would notice — bootstrap, nodes joining and
// leaving, ClusterNetwork edits under live traffic, agent and operator restarts, RBAC — and always
// removes the lab again. Needs root; skips otherwise, and skips when another lab runs on the machine
// (the lab's namespace names are fixed).
//
//	go test ./test/e2e/ -v                 # figures are printed and attached as report entries
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// labDirName is the suite's lab folder under the Plexus cache: never the folder of a lab a
	// person runs (lab), so the suite's Down cannot touch it.
	labDirName = "e2e-lab"
	// hostAPIAddress is the suite lab's API server forwarder on the machine (a person's lab uses
	// lab.DefaultHostAPIAddress).
	hostAPIAddress = "127.0.0.1:36444"
	// labNodes is the node count the suite starts with; addedNode joins later.
	labNodes  = 3
	addedNode = 4
)

var (
	labCfg  lab.Config
	k8s     client.Client
	ctx     context.Context
	cancel  context.CancelFunc
	bootLog *nodeWatch
)

// TestMain lets the test binary serve as the lab's API forwarder: lab up starts its own executable
// as `<exe> lab forward ...`, and under go test that executable is this binary.
func TestMain(m *testing.M) {
	lab.ServeForwarderIfAsked(hostAPIAddress)
	os.Exit(m.Run())
}

func TestE2E(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("e2e: starts a lab (namespaces, mounts, cgroups, kubelets): run `go test ./test/e2e/` as root")
	}
	if reason := otherLab(); reason != "" {
		t.Skip(reason)
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Plexus on a real multi-node lab")
}

// suiteConfig is the suite's lab: its own folder and forwarder address, labNodes nodes.
func suiteConfig() lab.Config {
	c := lab.DefaultConfig(repoRoot())
	c.Dir = filepath.Join(c.CacheDir, labDirName)
	c.HostAPIAddress = hostAPIAddress
	c.Nodes = labNodes
	return c
}

// otherLab says why the suite cannot run when a lab it did not start runs on the machine: the lab's
// namespace names, cgroup and node folders are fixed, so two labs would share (and tear down) each
// other's. A lab this suite left behind (its state is in the suite's folder) is removed instead.
func otherLab() string {
	if _, err := os.Stat(filepath.Join("/run/netns", lab.UnderlayNetns)); err != nil {
		return ""
	}
	if lab.Exists(suiteConfig().Dir) {
		return ""
	}
	return fmt.Sprintf("e2e: another lab runs on this machine (network namespace %s exists and the suite's state folder %s has no lab); "+
		"lab names are fixed, so the suite would clash with it: stop it (plexusctl lab down) and run again", lab.UnderlayNetns, suiteConfig().Dir)
}

// repoRoot is the checkout (two levels up from this package).
func repoRoot() string {
	wd, _ := os.Getwd() // go test runs in the package's folder
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	DeferCleanup(func() { cancel() })

	labCfg = suiteConfig()
	labCfg.Out = GinkgoWriter
	if reason := otherLab(); reason != "" {
		Skip(reason) // started in the meantime
	}
	if lab.Exists(labCfg.Dir) {
		By("removing what an aborted run of this suite left")
		Expect(lab.Down(labCfg)).To(Succeed())
	}
	snap := takeMachineSnapshot()
	// Registered before Up: the lab is removed even when Up fails halfway. AfterSuite also removes
	// it; the second Down finds no state and does nothing.
	DeferCleanup(func() {
		Expect(downLab()).To(Succeed())
		checkMachineRestored(snap)
	})

	bootLog = watchNodes(labCfg.AdminKubeconfig())
	t0 := time.Now()
	err := lab.Up(labCfg)
	bootLog.stop()
	Expect(err).NotTo(HaveOccurred(), "lab up (logs in %s)", labCfg.Dir)
	AddReportEntry("lab up", time.Since(t0).Round(100*time.Millisecond).String())

	rc, err := clientcmd.BuildConfigFromFlags("", labCfg.AdminKubeconfig())
	Expect(err).NotTo(HaveOccurred())
	rc.QPS, rc.Burst = 50, 100
	k8s, err = client.New(rc, client.Options{Scheme: controllers.NewScheme()})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if labCfg.Dir == "" {
		return
	}
	Expect(downLab()).To(Succeed())
})

// downLab removes the suite's lab. lab.Down gives a process 30s to die after SIGKILL; on this
// machine a process can sit in uninterruptible sleep longer than that (seen once: the kernel's
// network namespace teardown, with other tests creating and deleting namespaces, held it). So a
// failed Down is reported with what was left, and retried, up to three times.
func downLab() error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = lab.Down(labCfg); err == nil {
			return nil
		}
		left := leftProcesses()
		fmt.Fprintf(GinkgoWriter, "lab down, attempt %d: %v\nprocesses left in the lab's cgroup:\n%s\n", attempt, err, left)
		AddReportEntry(fmt.Sprintf("lab down, attempt %d failed", attempt), fmt.Sprintf("%v\n%s", err, left))
	}
	return err
}

// leftProcesses describes the processes still in the lab's tracking cgroup (pid, state, kernel
// wait channel, command).
func leftProcesses() string {
	var out []string
	_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup/pids", lab.CgroupRoot), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, pid := range strings.Fields(string(b)) {
			stat, _ := os.ReadFile("/proc/" + pid + "/stat")
			wchan, _ := os.ReadFile("/proc/" + pid + "/wchan")
			cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			out = append(out, fmt.Sprintf("%s stat=%q wchan=%s cmd=%s", pid, strings.TrimSpace(string(stat)), wchan,
				strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
		return nil
	})
	return strings.Join(out, "\n")
}
