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
	"time"
)

// Names and addresses of the lab. The underlay ranges are private ranges the machine does not use;
// CheckRanges refuses to start when they clash with anything on the machine.
const (
	// NetnsPrefix starts the name of every network namespace the lab creates.
	NetnsPrefix = "plexus-lab"
	// UnderlayNetns holds the underlay bridge and the control plane.
	UnderlayNetns = NetnsPrefix + "-underlay"
	// BridgeName is the underlay bridge inside UnderlayNetns.
	BridgeName = "br-lab"
	// NodeLink is each node's underlay interface, inside the node's namespace.
	NodeLink = "eth0"
	// CgroupRoot is the cgroup (in every v1 hierarchy) under which every lab process runs.
	CgroupRoot = "plexus-lab"
	// APIServerPort is the API server's port on the underlay address.
	APIServerPort = 6443
	// DefaultHostAPIAddress is where the lab's forwarder serves the API server on the machine.
	DefaultHostAPIAddress = "127.0.0.1:36443"
	// FieldManager owns what the lab applies besides config/default.
	FieldManager = "plexus-lab"
	// SandboxImage is containerd's sandbox image; the lab builds it as a tiny pause program.
	SandboxImage = "registry.k8s.io/pause:3.10"
	// NodeNamePrefix names nodes lab-node-1, lab-node-2, ...
	NodeNamePrefix = "lab-node-"
)

// Underlay addressing: the bridge (and so the API server) holds .1, node i holds .(10+i).
var (
	UnderlayV4 = netip.MustParsePrefix("10.99.0.0/24")
	UnderlayV6 = netip.MustParsePrefix("fd10:99::/64")
)

// Config says where the lab lives and how big it is.
type Config struct {
	// Nodes is the number of nodes (default 3).
	Nodes int
	// RepoRoot is the Plexus checkout (config/, cmd/, hack/).
	RepoRoot string
	// CacheDir is ${XDG_CACHE_HOME:-$HOME/.cache}/plexus: built binaries and images live under it.
	CacheDir string
	// Dir is the lab's own folder (CacheDir/lab): state, certificates, logs, node roots.
	Dir string
	// HostAPIAddress is the machine-side address of the API server forwarder.
	HostAPIAddress string
	// ReadyTimeout bounds the wait for nodes to turn Ready.
	ReadyTimeout time.Duration
	// Out receives progress lines.
	Out io.Writer
}

// DefaultConfig returns the configuration plexusctl uses, for the checkout at repoRoot.
func DefaultConfig(repoRoot string) Config {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	c := filepath.Join(cache, "plexus")
	return Config{
		Nodes:          3,
		RepoRoot:       repoRoot,
		CacheDir:       c,
		Dir:            filepath.Join(c, "lab"),
		HostAPIAddress: DefaultHostAPIAddress,
		ReadyTimeout:   4 * time.Minute,
		Out:            os.Stdout,
	}
}

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
		out = append(out, nodeAt(i))
	}
	return out
}

func nodeAt(i int) Node {
	v4 := UnderlayV4.Addr().As4()
	v4[3] = byte(10 + i)
	v6 := UnderlayV6.Addr().As16()
	v6[15] = byte(0x10 + i)
	return Node{
		Name:  fmt.Sprintf("%s%d", NodeNamePrefix, i),
		Netns: fmt.Sprintf("%s-node-%d", NetnsPrefix, i),
		Port:  fmt.Sprintf("n%d", i),
		IPv4:  netip.AddrFrom4(v4),
		IPv6:  netip.AddrFrom16(v6),
	}
}

// gateway returns the underlay's own address of each family (the bridge, where the API server listens).
func gatewayV4() netip.Addr { a := UnderlayV4.Addr().As4(); a[3] = 1; return netip.AddrFrom4(a) }
func gatewayV6() netip.Addr { a := UnderlayV6.Addr().As16(); a[15] = 1; return netip.AddrFrom16(a) }

// APIServerURL is the API server's address as nodes and host-network pods reach it.
func APIServerURL() string { return fmt.Sprintf("https://%s:%d", gatewayV4(), APIServerPort) }

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
