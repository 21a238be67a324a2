// Package e2e is the end-to-end suite of the lab: it starts its own lab (internal/lab: a real
// control plane and kubelets with their own containerd in their own namespaces, Plexus installed
// from config/default), checks what a cluster operator would notice — bootstrap, nodes joining and
// leaving, ClusterNetwork edits under live traffic, agent and operator restarts, RBAC — and always
// removes the lab again. Its lab has a name, namespaces, address ranges, cgroup, folder and forwarder
// port of its own (lab.NamedConfig), so it runs beside a person's lab (make lab) and never touches
// it. Needs root: skips otherwise, and fails instead under make test (lab.RequireEnv).
//
//	go test ./test/e2e/ -v                 # figures are printed and attached as report entries
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	// labName and labSlot make the suite's lab one of its own: namespaces plexus-e2e-*, cgroup
	// plexus-e2e, folder e2e under the Plexus cache, underlay 10.99.1.0/24 and fd10:99:1::/64,
	// forwarder 127.0.0.1:36444. A person's lab (lab, slot 0) keeps running beside it.
	labName = "e2e"
	labSlot = 1
	// labNodes is the node count the suite starts with; addedNode joins later.
	labNodes  = 3
	addedNode = 4
)

var (
	// labCfg is set at package initialisation: container nodes (Describe bodies) already name the
	// lab's nodes while the spec tree is built, before BeforeSuite runs.
	labCfg  = suiteConfig()
	k8s     client.Client
	ctx     context.Context
	cancel  context.CancelFunc
	bootLog *nodeWatch
)

// TestMain lets the test binary serve as the lab's API forwarder: lab up starts its own executable
// as `<exe> lab forward ...`, and under go test that executable is this binary.
func TestMain(m *testing.M) {
	lab.ServeForwarderIfAsked(suiteConfig().HostAPIAddress)
	os.Exit(m.Run())
}

func TestE2E(t *testing.T) {
	if reason := lab.Unavailable(); reason != "" {
		reason = "e2e: starts a lab (namespaces, mounts, cgroups, kubelets), and here it cannot: " + reason
		if lab.Required() {
			t.Fatal(reason)
		}
		t.Skip(reason)
	}
	RegisterFailHandler(Fail)
	if !RunSpecs(t, "Plexus on a real multi-node lab") {
		printFailureDigest()
	}
}

// suiteConfig is the suite's lab: its own name and slot, labNodes nodes.
func suiteConfig() lab.Config {
	name, slot := labName, labSlot
	// PLEXUS_E2E_SLOT runs the suite in another slot (lab e2e<slot>), beside a run in the default
	// one: two checkouts of the project on one machine can each run the suite.
	if v := os.Getenv("PLEXUS_E2E_SLOT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > lab.MaxSlot {
			panic(fmt.Sprintf("PLEXUS_E2E_SLOT=%q: want a slot 0..%d", v, lab.MaxSlot))
		}
		name, slot = fmt.Sprintf("%s%d", labName, n), n
	}
	c := lab.NamedConfig(repoRoot(), name, slot)
	c.Nodes = labNodes
	return c
}

// repoRoot is the checkout (two levels up from this package).
func repoRoot() string {
	wd, _ := os.Getwd() // go test runs in the package's folder
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	DeferCleanup(func() { cancel() })

	labCfg.Out = GinkgoWriter
	if lab.Exists(labCfg.Dir) {
		By("removing what an aborted run of this suite left")
		Expect(lab.Down(labCfg)).To(Succeed())
	}
	_, err := os.Stat(filepath.Join("/run/netns", labCfg.UnderlayNetns()))
	Expect(os.IsNotExist(err)).To(BeTrue(), "network namespace %s exists but the suite's folder %s holds no lab: "+
		"something else made it; remove it (ip netns delete) and run again", labCfg.UnderlayNetns(), labCfg.Dir)
	snap := takeMachineSnapshot()
	// Registered before Up: the lab is removed even when Up fails halfway. AfterSuite also removes
	// it; the second Down finds no state and does nothing.
	DeferCleanup(func() {
		Expect(downLab()).To(Succeed())
		checkMachineRestored(snap)
	})

	bootLog = watchNodes(labCfg.AdminKubeconfig())
	t0 := time.Now()
	err = lab.Up(labCfg)
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
	_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup/pids", labCfg.CgroupRoot()), func(p string, d os.DirEntry, err error) error {
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
