// Package lab runs a real multi-node Kubernetes cluster on one machine: a control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler) and N nodes, each a kubelet with its own
// containerd in its own network, mount and UTS namespaces, wired to an underlay bridge in a namespace
// of the lab's own. Plexus is installed into it as a user installs it (config/default) and is the
// cluster's only CNI and service proxy.
//
// Everything Up creates is recorded in a state file before it is created, so Down removes exactly
// that, also after an aborted Up. plexusctl (lab up|down|status) and the e2e suites use this package.
package lab

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Names and addresses every lab shares. Each lab lives in namespaces of its own, so these never
// clash between two labs on one machine.
const (
	// DefaultName is the name of the lab a person starts (make lab, plexusctl lab up).
	DefaultName = "lab"
	// BridgeName is the underlay bridge inside the lab's underlay namespace.
	BridgeName = "br-lab"
	// NodeLink is each node's underlay interface, inside the node's namespace.
	NodeLink = "eth0"
	// APIServerPort is the API server's port on the underlay address.
	APIServerPort = 6443
	// DefaultHostAPIAddress is where the forwarder of the default lab serves the API server on the
	// machine; a lab in slot s uses the port 36443+s.
	DefaultHostAPIAddress = "127.0.0.1:36443"
	// FieldManager owns what the lab applies besides config/default.
	FieldManager = "plexus-lab"
	// SandboxImage is containerd's sandbox image; the lab builds it as a tiny pause program.
	SandboxImage = "registry.k8s.io/pause:3.10"
	// NodeNamePrefix names nodes lab-node-1, lab-node-2, ... (names inside the lab's own cluster).
	NodeNamePrefix = "lab-node-"
	// hostAPIBasePort is the forwarder port of slot 0.
	hostAPIBasePort = 36443
	// MaxSlot is the highest slot (NamedConfig): the slot is the third octet of the underlay's IPv4 range.
	MaxSlot = 255
)

// validName is what a lab name may look like: it goes into namespace and cgroup names.
var validName = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// Config says where the lab lives and how big it is. Several labs run side by side on one
// machine when their names and slots differ (a person's lab and the e2e suite's, for instance).
type Config struct {
	// Name tells this lab from the others on the machine: its network namespaces are
	// plexus-<Name>-underlay and plexus-<Name>-node-<i>, its cgroup (in every hierarchy)
	// plexus-<Name>. DefaultName for a person's lab.
	Name string
	// UnderlayV4 and UnderlayV6 are the underlay ranges: the bridge (and so the API server) holds
	// .1, node i holds .(10+i). CheckRanges refuses to start when they clash with the machine.
	UnderlayV4, UnderlayV6 netip.Prefix
	// Nodes is the number of nodes (default 3).
	Nodes int
	// RepoRoot is the Plexus checkout (config/, cmd/, hack/).
	RepoRoot string
	// CacheDir is ${XDG_CACHE_HOME:-$HOME/.cache}/plexus: built binaries and images live under it.
	CacheDir string
	// Dir is the lab's own folder (labDir): state, certificates, logs, node roots.
	Dir string
	// HostAPIAddress is the machine-side address of the API server forwarder.
	HostAPIAddress string
	// ReadyTimeout bounds the wait for nodes to turn Ready.
	ReadyTimeout time.Duration
	// Out receives progress lines.
	Out io.Writer
	// LoadBalancerPoolBits is the prefix length of the load-balancer pool (28, 14 addresses, when
	// zero; see LoadBalancerPool). A run that holds many LoadBalancer Services at once, like the
	// Gateway API suite with a Service per Gateway, needs a wider pool.
	LoadBalancerPoolBits int
	// ExtraImages are built and imported into every node with the lab's own images (none by default).
	ExtraImages []ExtraImage
	// Install is how Plexus is installed (InstallKustomize when empty).
	Install InstallMode
	// HelmChart is the chart (folder or packaged .tgz) InstallHelm installs; config/helm/plexus
	// when empty.
	HelmChart string
	// AfterInstall are manifests (YAML) applied right after Plexus is installed, before up waits
	// for the operator and the nodes. The Helm e2e gives the previous chart's release, which runs
	// this checkout's images, the RBAC this checkout's operator needs with them.
	AfterInstall string
}

// DefaultConfig returns the configuration plexusctl uses, for the checkout at repoRoot: the lab
// named DefaultName in slot 0 (underlay 10.99.0.0/24 and fd10:99::/64, forwarder 127.0.0.1:36443).
func DefaultConfig(repoRoot string) Config { return NamedConfig(repoRoot, DefaultName, 0) }

// NamedConfig returns the configuration of the lab called name in slot (0..255): its folder is
// labDir(name) in the cache, its underlay 10.99.<slot>.0/24 and fd10:99:<slot>::/64, its forwarder
// 127.0.0.1:<36443+slot>. Labs with different names and slots run side by side; slot 0 is the
// default lab's, and each test suite that starts a lab picks a slot of its own.
func NamedConfig(repoRoot, name string, slot int) Config {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	c := filepath.Join(cache, "plexus")
	v4, v6 := underlayOfSlot(slot)
	return Config{
		Name:           name,
		UnderlayV4:     v4,
		UnderlayV6:     v6,
		Nodes:          3,
		RepoRoot:       repoRoot,
		CacheDir:       c,
		Dir:            filepath.Join(c, labDir(name)),
		HostAPIAddress: fmt.Sprintf("127.0.0.1:%d", hostAPIBasePort+slot),
		ReadyTimeout:   4 * time.Minute,
		Out:            os.Stdout,
	}
}

// labDir is the folder, inside the Plexus cache, of the lab called name: lab for the default lab
// (as always), lab-<name> for the others, so no lab name can be a folder of the cache's builds
// (bin, controlplane, ...), which Down would remove with the lab.
func labDir(name string) string {
	if name == DefaultName {
		return DefaultName
	}
	return "lab-" + name
}

// underlayOfSlot is the underlay of a slot: 10.99.<slot>.0/24 and fd10:99:<slot>::/64 (slot 0:
// 10.99.0.0/24 and fd10:99::/64, the ranges the README shows).
func underlayOfSlot(slot int) (netip.Prefix, netip.Prefix) {
	s := byte(slot)
	v6 := netip.AddrFrom16([16]byte{0xfd, 0x10, 0x00, 0x99, 0x00, s})
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, s, 0}), 24), netip.PrefixFrom(v6, 64)
}

// validate says what is wrong with a configuration before anything is made.
func (c Config) validate() error {
	if !validName.MatchString(c.Name) {
		return fmt.Errorf("lab name %q: want a lowercase letter, then up to 11 lowercase letters or digits", c.Name)
	}
	if !c.UnderlayV4.Addr().Is4() || c.UnderlayV4.Bits() > 24 || !c.UnderlayV6.Addr().Is6() || c.UnderlayV6.Bits() > 64 {
		return fmt.Errorf("lab %s: underlay %s, %s: want an IPv4 range of /24 or wider and an IPv6 one of /64 or wider", c.Name, c.UnderlayV4, c.UnderlayV6)
	}
	if c.Nodes < 1 || c.Nodes > 200 {
		return fmt.Errorf("nodes: %d, want 1..200", c.Nodes)
	}
	return nil
}

// NetnsPrefix starts the name of every network namespace this lab creates (plexus-<Name>).
func (c Config) NetnsPrefix() string { return "plexus-" + c.Name }

// UnderlayNetns is the namespace holding the underlay bridge and the control plane.
func (c Config) UnderlayNetns() string { return c.NetnsPrefix() + "-underlay" }

// CgroupRoot is the cgroup (in every v1 hierarchy) under which every process of this lab runs.
func (c Config) CgroupRoot() string { return "plexus-" + c.Name }

// step prints one progress line.
func (c Config) step(format string, args ...any) {
	fmt.Fprintf(c.Out, "==> [lab] "+format+"\n", args...)
}

// Node is one lab node's identity and addresses.
type Node struct {
	Name  string
	Netns string
	// Port is the underlay end of the node's veth, inside UnderlayNetns.
	Port string
	IPv4 netip.Addr
	IPv6 netip.Addr
}

// nodes returns the identities of the configured nodes.
func (c Config) nodes() []Node {
	var out []Node
	for i := 1; i <= c.Nodes; i++ {
		out = append(out, c.NodeAt(i))
	}
	return out
}

// NodeAt returns the identity of lab node i (1-based): its name, network namespace, underlay port
// and addresses. Nodes beyond Config.Nodes are the ones AddNode starts.
func (c Config) NodeAt(i int) Node {
	v4 := c.UnderlayV4.Addr().As4()
	v4[3] = byte(10 + i)
	v6 := c.UnderlayV6.Addr().As16()
	v6[15] = byte(0x10 + i)
	return Node{
		Name:  fmt.Sprintf("%s%d", NodeNamePrefix, i),
		Netns: fmt.Sprintf("%s-node-%d", c.NetnsPrefix(), i),
		Port:  fmt.Sprintf("n%d", i),
		IPv4:  netip.AddrFrom4(v4),
		IPv6:  netip.AddrFrom16(v6),
	}
}

// gatewayV4 and gatewayV6 are the underlay's own addresses (the bridge, where the API server listens).
func (c Config) gatewayV4() netip.Addr {
	a := c.UnderlayV4.Addr().As4()
	a[3] = 1
	return netip.AddrFrom4(a)
}
func (c Config) gatewayV6() netip.Addr {
	a := c.UnderlayV6.Addr().As16()
	a[15] = 1
	return netip.AddrFrom16(a)
}

// APIServerURL is the API server's address as nodes and host-network pods reach it.
func (c Config) APIServerURL() string {
	return fmt.Sprintf("https://%s:%d", c.gatewayV4(), APIServerPort)
}

// binaries are the paths of every program the lab runs.
type binaries struct {
	etcd, apiserver, controllerManager, scheduler, kubectl, kubelet string
	containerd, shim, ctr, runc                                     string
	self                                                            string
}

func (c Config) binaries() binaries {
	// The build scripts honour the same overrides.
	cp := envOr("PLEXUS_CONTROLPLANE_DIR", filepath.Join(c.CacheDir, "controlplane", k8sVersion))
	ct := envOr("PLEXUS_CONTAINERD_DIR", filepath.Join(c.CacheDir, "containerd", containerdVersion))
	self, _ := os.Executable()
	return binaries{
		etcd: filepath.Join(cp, "etcd"), apiserver: filepath.Join(cp, "kube-apiserver"),
		controllerManager: filepath.Join(cp, "kube-controller-manager"), scheduler: filepath.Join(cp, "kube-scheduler"),
		kubectl: filepath.Join(cp, "kubectl"), kubelet: filepath.Join(cp, "kubelet"),
		containerd: filepath.Join(ct, "containerd"), shim: filepath.Join(ct, "containerd-shim-runc-v2"),
		ctr: filepath.Join(ct, "ctr"), runc: "/usr/sbin/runc", self: self,
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
