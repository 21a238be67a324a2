package cni

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-net/plexus/internal/testnet"
)

// This file is the harness of the real-kernel tests: a "node" network namespace, the real
// plexus-cni binary installed with Install, and libcni driving it as a container runtime does.

const (
	// pluginPackage is built once per test process into a temporary directory.
	pluginPackage = "github.com/plexus-net/plexus/cmd/plexus-cni"
	// podIfName is the interface name the "runtime" asks for.
	podIfName = "eth0"
	// cniTimeout bounds one plugin invocation.
	cniTimeout = 30 * time.Second
	// echoBound bounds how long a connection through fresh veths may take to succeed.
	echoBound = 5 * time.Second
)

// Test ranges. They live only inside namespaces the tests create; CheckNoOverlap makes sure the
// machine itself uses none of them.
var (
	testPods4     = netip.MustParsePrefix("10.244.1.0/24")
	testPods6     = netip.MustParsePrefix("fd10:244:0:1::/64")
	testTinyPods4 = netip.MustParsePrefix("10.244.9.0/30")
	testNodeIP4   = netip.MustParseAddr("10.250.0.1")
	testNodeIP6   = netip.MustParseAddr("fd10:250::1")
	testRanges    = []netip.Prefix{
		netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd10:244::/32"),
		netip.MustParsePrefix("10.250.0.0/24"), netip.MustParsePrefix("fd10:250::/64"),
	}
)

var (
	buildOnce   sync.Once
	builtPlugin string
	buildErr    error
	buildDir    string
)

// TestMain removes the plugin build directory after all tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// pluginBinary builds cmd/plexus-cni once and returns the binary's path.
func pluginBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "plexus-cni-build-")
		if buildErr != nil {
			return
		}
		builtPlugin = filepath.Join(buildDir, PluginType)
		out, err := exec.Command("go", "build", "-o", builtPlugin, pluginPackage).CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build " + pluginPackage + ": " + err.Error() + ": " + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPlugin
}

// testNode is one simulated node: its network namespace, the installed plugin and a runtime.
type testNode struct {
	t         testing.TB
	ns        *testnet.Netns
	statePath string
	dataDir   string
	binDir    string
	list      *libcni.NetworkConfigList
	rt        *libcni.CNIConfig
}

// dualStack4and6 is the node state of a dual-stack node with the standard test CIDRs.
func dualStackState(mtu int) *NodeState {
	return &NodeState{NodeName: "test-node", PodCIDRs: PodCIDRs{IPv4: testPods4, IPv6: testPods6}, MTU: mtu}
}

// newTestNode checks the environment, creates the node namespace (with the node's own addresses
// on its loopback), installs the plugin and writes st as the node state (none if st is nil).
func newTestNode(t testing.TB, st *NodeState) *testNode {
	t.Helper()
	testnet.RequireRoot(t)
	if err := testnet.CheckNoOverlap(testRanges...); err != nil {
		t.Fatalf("test ranges clash with this machine: %v", err)
	}
	root := t.TempDir()
	n := &testNode{
		t:         t,
		statePath: filepath.Join(root, "run", "node-state.json"),
		dataDir:   filepath.Join(root, "var", "lib", "cni", "plexus"),
		binDir:    filepath.Join(root, "opt", "cni", "bin"),
	}
	confDir := filepath.Join(root, "etc", "cni", "net.d")
	if err := Install(pluginBinary(t), n.binDir, confDir, ConfigOptions{NodeStatePath: n.statePath, DataDir: n.dataDir}); err != nil {
		t.Fatal(err)
	}
	list, err := libcni.NetworkConfFromFile(filepath.Join(confDir, ConflistFileName))
	if err != nil {
		t.Fatalf("load installed conflist: %v", err)
	}
	n.list = list
	n.rt = n.newRuntime()
	if st != nil {
		n.writeState(st)
	}
	n.ns = testnet.NewNetns(t, "cninode")
	n.ns.AddAddr(t, "lo", netip.PrefixFrom(testNodeIP4, 32), netip.PrefixFrom(testNodeIP6, 128))
	return n
}

// newRuntime returns a libcni runtime with an empty result cache: what a container runtime looks
// like after it lost its state (or a second runtime on the node). The exec is passed explicitly:
// with nil, libcni creates one lazily on first use, which races when goroutines share the runtime.
func (n *testNode) newRuntime() *libcni.CNIConfig {
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	return libcni.NewCNIConfigWithCacheDir([]string{n.binDir}, n.t.TempDir(), exec)
}

func (n *testNode) writeState(st *NodeState) {
	n.t.Helper()
	if err := WriteNodeState(n.statePath, *st); err != nil {
		n.t.Fatal(err)
	}
}

// newPod creates an empty pod network namespace.
func (n *testNode) newPod(name string) *testnet.Netns {
	return testnet.NewNetns(n.t, "cnipod-"+name)
}

// inNode runs fn on a thread inside the node namespace, so the plugin processes libcni starts
// there inherit it, as they would on a real node.
func (n *testNode) inNode(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cniTimeout)
	defer cancel()
	return n.ns.Do(func() error { return fn(ctx) })
}

func runtimeConf(netnsPath, containerID string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: containerID, NetNS: netnsPath, IfName: podIfName}
}

// addWith runs ADD through rt for the pod at netnsPath.
func (n *testNode) addWith(rt *libcni.CNIConfig, netnsPath, containerID string) (*types100.Result, error) {
	var res types.Result
	err := n.inNode(func(ctx context.Context) (err error) {
		res, err = rt.AddNetworkList(ctx, n.list, runtimeConf(netnsPath, containerID))
		return err
	})
	if err != nil {
		return nil, err
	}
	return types100.NewResultFromResult(res)
}

func (n *testNode) add(pod *testnet.Netns, containerID string) (*types100.Result, error) {
	return n.addWith(n.rt, pod.Path(), containerID)
}

// mustAdd is add that fails the test on error.
func (n *testNode) mustAdd(pod *testnet.Netns, containerID string) *types100.Result {
	n.t.Helper()
	res, err := n.add(pod, containerID)
	if err != nil {
		n.t.Fatalf("ADD %s: %v", containerID, err)
	}
	return res
}

func (n *testNode) del(netnsPath, containerID string) error {
	return n.inNode(func(ctx context.Context) error {
		return n.rt.DelNetworkList(ctx, n.list, runtimeConf(netnsPath, containerID))
	})
}

func (n *testNode) check(pod *testnet.Netns, containerID string) error {
	return n.inNode(func(ctx context.Context) error {
		return n.rt.CheckNetworkList(ctx, n.list, runtimeConf(pod.Path(), containerID))
	})
}

// gcWith runs GC through rt with the given containers (interface eth0) as the valid attachments.
func (n *testNode) gcWith(rt *libcni.CNIConfig, validContainers ...string) error {
	args := &libcni.GCArgs{}
	for _, id := range validContainers {
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: id, IfName: podIfName})
	}
	return n.inNode(func(ctx context.Context) error { return rt.GCNetworkList(ctx, n.list, args) })
}

func (n *testNode) status() error {
	return n.inNode(func(ctx context.Context) error { return n.rt.GetStatusNetworkList(ctx, n.list) })
}

// allocations lists the allocation store as the plugin left it.
func (n *testNode) allocations() []Allocation {
	n.t.Helper()
	s, err := OpenStore(n.dataDir)
	if err != nil {
		n.t.Fatal(err)
	}
	defer s.Close()
	var out []Allocation
	if err := s.WithLock(func() (err error) { out, err = s.List(); return err }); err != nil {
		n.t.Fatal(err)
	}
	return out
}

// podAddrs returns the IPv4 and IPv6 address of an ADD result (zero if absent).
func podAddrs(t testing.TB, res *types100.Result) (v4, v6 netip.Addr) {
	t.Helper()
	for _, c := range res.IPs {
		ip, _ := netip.AddrFromSlice(c.Address.IP)
		ip = ip.Unmap()
		ones, bits := c.Address.Mask.Size()
		if ones != bits {
			t.Errorf("pod address %s is not a single-address prefix", c.Address.String())
		}
		if ip.Is4() {
			v4 = ip
		} else {
			v6 = ip
		}
	}
	return v4, v6
}

// cniError returns err as a CNI error, failing the test if it is not one.
func cniError(t testing.TB, err error) *types.Error {
	t.Helper()
	var ce *types.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a CNI error", err, err)
	}
	return ce
}
