package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Pinned versions; the build scripts pin the same.
const (
	k8sVersion        = "v1.37.2"
	containerdVersion = "v2.4.2"
)

// goBinaries are the lab's own Go programs, built static (CGO_ENABLED=0) into CacheDir/bin.
var goBinaries = []string{
	"./cmd/plexus-operator",
	"./cmd/plexus-agent",
	"./cmd/plexus-cni",
	"./cmd/plexus-ingress",
	"./hack/images/pause",
	"./hack/images/echo",
	"./hack/images/dnsupstream",
}

// Build builds (or reuses from the cache) everything the lab runs: the Kubernetes components, the
// container runtime and Plexus' own binaries. Each step prints a progress line.
func Build(c Config) error {
	start := time.Now()
	c.step("building or reusing the Kubernetes %s components (cache %s)", k8sVersion, filepath.Join(c.CacheDir, "controlplane"))
	if err := c.run(filepath.Join(c.RepoRoot, "hack/controlplane/build.sh"),
		"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet"); err != nil {
		return fmt.Errorf("build the Kubernetes components: %w", err)
	}
	c.step("building or reusing containerd %s", containerdVersion)
	if err := c.run(filepath.Join(c.RepoRoot, "hack/containerd/build.sh")); err != nil {
		return fmt.Errorf("build containerd: %w", err)
	}
	if err := c.buildCoreDNS(); err != nil {
		return err
	}
	if _, err := os.Stat(c.binaries().runc); err != nil {
		return fmt.Errorf("runc not found at %s: install Debian's runc package (apt-get install runc)", c.binaries().runc)
	}
	bin := filepath.Join(c.CacheDir, "bin")
	c.step("building Plexus binaries and lab programs into %s", bin)
	t := time.Now()
	args := append([]string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin + "/"}, goBinaries...)
	cmd := exec.Command("go", args...)
	cmd.Dir = c.RepoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = c.Out, c.Out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %v: %w", goBinaries, err)
	}
	c.step("Plexus binaries ready in %s", time.Since(t).Round(100*time.Millisecond))
	if err := BuildImages(c); err != nil {
		return err
	}
	c.step("everything built in %s", time.Since(start).Round(time.Second))
	return nil
}

// run runs a build script, its progress lines (stderr) going to Out and its stdout discarded.
func (c Config) run(script string, args ...string) error {
	cmd := exec.Command(script, args...)
	cmd.Dir = c.RepoRoot
	cmd.Stderr = c.Out
	return cmd.Run()
}
