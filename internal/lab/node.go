package lab

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// nodeBindMounts are the machine folders each node sees as its own: inside the node's mount
// namespace a per-node folder is bind-mounted over each. Without its own /run/netns, containerd's
// pod namespaces would show up in the machine's `ip netns list`.
var nodeBindMounts = []string{
	"/run/netns", "/run/containerd", "/run/plexus",
	"/var/lib/containerd", "/var/lib/kubelet", "/var/lib/cni",
	"/var/log/pods", "/var/log/containers",
	"/etc/containerd", "/etc/cni/net.d", "/opt/cni/bin",
}

// bindMounts are the folders bound per node on this machine.
func bindMounts(*State) []string { return nodeBindMounts }

// kernelSysctls are global (not per network namespace) settings the kubelet changes at start; Up
// records the machine's values and Down restores them.
var kernelSysctls = []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"}

func (c Config) nodeDir(n Node) string { return filepath.Join(c.Dir, "nodes", n.Name) }

// containerdSocket is a node's containerd socket as seen from the machine.
func (c Config) containerdSocket(n Node) string {
	return filepath.Join(c.nodeDir(n), "root/run/containerd/containerd.sock")
}

// startNodes prepares and starts every node, imports the lab images into each node's containerd and
// waits for the nodes to register.
func (c Config) startNodes(st *State, p *pki, tk tokens) error {
	if err := c.prepareMachine(st); err != nil {
		return err
	}
	for _, n := range c.nodes() {
		kc := tokenKubeconfig(c.APIServerURL(), p.path("ca.crt"), tk["system:node:"+n.Name])
		if err := c.startNode(st, p, n, kc, c.nodeScript(st, n)); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	specs, err := c.imageSpecs()
	if err != nil {
		return err
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, c.Nodes)
	for i, n := range c.nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.importImages(st, n, specs)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	c.step("%d images imported into %d nodes' containerd in %s", len(specs), c.Nodes, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// prepareMachine creates the mount points the nodes bind over (recording those it creates) and
// records the global sysctls the kubelets will change.
func (c Config) prepareMachine(st *State) error {
	for _, d := range bindMounts(st) {
		var missing []string
		for p := d; p != "/"; p = filepath.Dir(p) {
			if _, err := os.Lstat(p); err == nil {
				break
			}
			missing = append([]string{p}, missing...)
		}
		for _, m := range missing {
			if err := st.record(&st.HostDirs, m); err != nil {
				return err
			}
			if err := os.Mkdir(m, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
		}
	}
	for _, s := range kernelSysctls {
		if _, ok := st.Sysctls[s]; ok {
			continue
		}
		b, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			return err
		}
		st.Sysctls[s] = strings.TrimSpace(string(b))
	}
	return st.save()
}

// nodeCgroupHierarchies are the cgroup v1 hierarchies in which the kubelet's cgroupRoot must exist.
func nodeCgroupHierarchies() []string {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out
}

// startNode writes the node's configuration (kubelet kubeconfig and node script given) and starts
// its containerd and kubelet in the node's own network, mount and UTS namespaces.
func (c Config) startNode(st *State, p *pki, n Node, kubeconfig, script string) error {
	d := c.nodeDir(n)
	for _, m := range bindMounts(st) {
		if err := os.MkdirAll(filepath.Join(d, "root", m), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(d, "mnt/cgroup"), 0o755); err != nil {
		return err
	}
	if err := st.record(&st.Cgroups, c.CgroupRoot()); err != nil {
		return err
	}
	cgroupRoot := "/" + c.CgroupRoot() + "/" + n.Name
	for _, h := range nodeCgroupHierarchies() {
		dir := filepath.Join(h, cgroupRoot)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if filepath.Base(h) == "cpuset" {
			// A new cpuset cgroup starts with no CPUs or memory nodes: copy the parents'.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				for _, sub := range []string{filepath.Join(h, c.CgroupRoot()), dir} {
					if b, err := os.ReadFile(filepath.Join(filepath.Dir(sub), f)); err == nil {
						_ = os.WriteFile(filepath.Join(sub, f), b, 0o644)
					}
				}
			}
		}
	}
	files := map[string]string{
		"containerd.toml":  containerdConfig(),
		"kubelet.yaml":     withLabResolvConf(kubeletConfig(p, n, cgroupRoot), d),
		"node.sh":          script,
		nodeResolvConfFile: c.nodeResolvConf(),
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(d, f), []byte(content), 0o644); err != nil {
			return err
		}
	}
	// The kubeconfig holds the node's credential: owner only.
	if err := os.WriteFile(filepath.Join(d, "kubelet.kubeconfig"), []byte(kubeconfig), 0o600); err != nil {
		return err
	}
	if !alive(st.Processes[n.Name]) {
		// What is left of an earlier start of this node (its containerd, shims, pods) would hold
		// the node's folders: clear it first.
		if _, err := killCgroupTree(filepath.Join(c.CgroupRoot(), n.Name)); err != nil {
			return err
		}
	}
	if err := c.startProcess(st, n.Name, "", filepath.Join(d, "node.log"),
		"unshare", "--mount", "--uts", "--propagation", "private",
		"nsenter", "--net=/run/netns/"+n.Netns, "/bin/sh", filepath.Join(d, "node.sh")); err != nil {
		return err
	}
	return c.waitFor(st, n.Name, filepath.Join(d, "node.log"), 60*time.Second, "containerd of "+n.Name+" serving", func() error {
		conn, err := net.Dial("unix", c.containerdSocket(n))
		if err == nil {
			conn.Close()
		}
		return err
	})
}

// nodeScript runs inside the node's fresh mount and UTS namespaces, already in its network
// namespace: it gives the node its own sysfs (for its network namespace) and folders, then runs
// containerd and execs the kubelet.
func (c Config) nodeScript(st *State, n Node) string {
	d := c.nodeDir(n)
	b := c.binaries()
	var mounts strings.Builder
	for _, m := range bindMounts(st) {
		fmt.Fprintf(&mounts, "mount --bind %q %q\n", filepath.Join(d, "root", m), m)
	}
	return fmt.Sprintf(`#!/bin/sh
# Lab node %[1]s: written by plexusctl lab up. Runs in the node's own mount, UTS and network namespaces.
set -eu
hostname %[1]s
# sysfs of this network namespace, with the machine's cgroup hierarchies bound back below it.
mount --rbind /sys/fs/cgroup %[2]q
mount -t sysfs sysfs /sys
mount --rbind %[2]q /sys/fs/cgroup
umount -l %[2]q
%[3]s
export PATH=%[4]s:$PATH
rm -f /run/containerd/containerd.sock  # a socket left by an earlier start of this node
%[5]q --config %[6]q >%[7]q 2>&1 &
i=0
until [ -S /run/containerd/containerd.sock ]; do
  i=$((i + 1)); [ $i -le 600 ] || { echo "containerd did not start: see %[7]s" >&2; exit 1; }
  sleep 0.1
done
exec %[8]q --config %[9]q --kubeconfig %[10]q --hostname-override %[1]s --node-ip %[11]s,%[12]s \
  --container-runtime-endpoint unix:///run/containerd/containerd.sock >%[13]q 2>&1
`, n.Name, filepath.Join(d, "mnt/cgroup"), mounts.String(), filepath.Dir(b.containerd),
		b.containerd, filepath.Join(d, "containerd.toml"), filepath.Join(d, "containerd.log"),
		b.kubelet, filepath.Join(d, "kubelet.yaml"), filepath.Join(d, "kubelet.kubeconfig"), n.IPv4, n.IPv6,
		filepath.Join(d, "kubelet.log"))
}

// containerdConfig is every node's containerd configuration (paths as the node sees them).
func containerdConfig() string {
	return fmt.Sprintf(`version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
# These would make folders on the machine: NRI its socket in /var/run/nri, opt and the image
# verifier /opt/containerd.
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt", "io.containerd.image-verifier.v1.bindir"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.cri.v1.runtime"]
  # The machine drops CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    # Plexus is the only CNI plugin on the node: containerd sets up the pod's loopback itself.
    use_internal_loopback = true
    bin_dirs = ["/opt/cni/bin"]
    conf_dir = "/etc/cni/net.d"

[plugins."io.containerd.cri.v1.images"]
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %q
`, SandboxImage)
}

// kubeletConfig is a node's kubelet configuration: cgroup v1 with cgroupfs under a cgroup of its
// own, nothing enforced on allocatable, eviction thresholds low enough for a shared disk.
func kubeletConfig(p *pki, n Node, cgroupRoot string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: %s
cgroupsPerQOS: true
enforceNodeAllocatable: []
failSwapOn: false
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
clusterDNS: ["10.96.0.10"]
clusterDomain: cluster.local
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization:
  mode: Webhook
serializeImagePulls: false
`, cgroupRoot, p.path("kubelet-"+n.Name+".crt"), p.path("kubelet-"+n.Name+".key"), p.path("ca.crt"))
}

// importImages imports every lab image into the node's containerd (namespace k8s.io, where the CRI
// looks), under the names the manifests use.
func (c Config) importImages(st *State, n Node, specs []imageSpec) error {
	for _, s := range specs {
		out, err := exec.Command(c.binaries().ctr, "--address", c.containerdSocket(n), "--namespace", "k8s.io",
			"images", "import", filepath.Join(c.imageDir(), s.File)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("import %s into %s: %v: %s", s.Ref, n.Name, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
