package podnetwork

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-net/plexus/agent/cni"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// uplinkName is each node's underlay interface.
	uplinkName = "eth0"
	// agentStopBound bounds a graceful stop of an agent after SIGTERM.
	agentStopBound = 10 * time.Second
)

// node is one simulated Kubernetes node: a network namespace on the underlay, a Node object, and
// a plexus-agent process programming the namespace from the host.
type node struct {
	name    string
	ns      *testnet.Netns
	ip4     netip.Prefix
	ip6     netip.Prefix
	dir     string // per-node root of the CNI dirs, state file and logs
	agent   *exec.Cmd
	exited  chan error
	health  string // host:port of /healthz and /readyz
	metrics string // host:port of /metrics
	starts  int
	cni     *libcni.CNIConfig
	// top is the test that owns the node: agents started in a subtest outlive it.
	top *testing.T
}

func (n *node) binDir() string    { return filepath.Join(n.dir, "opt", "cni", "bin") }
func (n *node) confDir() string   { return filepath.Join(n.dir, "etc", "cni", "net.d") }
func (n *node) dataDir() string   { return filepath.Join(n.dir, "var", "lib", "cni", "plexus") }
func (n *node) statePath() string { return filepath.Join(n.dir, "run", "plexus", "node-state.json") }
func (n *node) logPath() string   { return filepath.Join(n.dir, fmt.Sprintf("agent-%d.log", n.starts)) }

// nodeObject is the Node a kubelet would register: both underlay addresses as InternalIPs.
func (n *node) nodeObject() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.name},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.ip4.Addr().String()},
			{Type: corev1.NodeInternalIP, Address: n.ip6.Addr().String()},
			{Type: corev1.NodeHostName, Address: n.name},
		}},
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAgent starts the node's plexus-agent process from the host namespace, programming the
// node's namespace through --netns. It is stopped on cleanup.
func (n *node) startAgent(t *testing.T, bins binaries, kubeconfig string) {
	t.Helper()
	n.starts++
	n.health, n.metrics = freeAddr(t), freeAddr(t)
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(n.logPath())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.agent,
		"--node-name", n.name,
		"--kubeconfig", kubeconfig,
		"--netns", n.ns.Path(),
		"--cni-bin-dir", n.binDir(),
		"--cni-conf-dir", n.confDir(),
		"--cni-data-dir", n.dataDir(),
		"--cni-plugin-binary", bins.cni,
		"--node-state-file", n.statePath(),
		"--health-probe-bind-address", n.health,
		"--metrics-bind-address", n.metrics,
		"--zap-log-level", "2",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start agent of %s: %v", n.name, err)
	}
	n.agent, n.exited = cmd, make(chan error, 1)
	exited := n.exited
	go func() { exited <- cmd.Wait(); _ = logf.Close() }()
	n.top.Cleanup(func() { n.stopAgentQuietly(cmd, exited) })
}

// stopAgent sends SIGTERM and waits for a clean exit.
func (n *node) stopAgent(t *testing.T) {
	t.Helper()
	if err := n.agent.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM agent of %s: %v", n.name, err)
	}
	select {
	case err := <-n.exited:
		n.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("agent of %s exited with %v after SIGTERM; log:\n%s", n.name, err, n.log())
		}
	case <-time.After(agentStopBound):
		t.Fatalf("agent of %s did not stop within %s of SIGTERM", n.name, agentStopBound)
	}
}

// stopAgentQuietly is the cleanup: SIGTERM, then SIGKILL if it lingers; always reaped.
func (n *node) stopAgentQuietly(cmd *exec.Cmd, exited chan error) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
	case <-time.After(agentStopBound):
		_ = cmd.Process.Kill()
		exited <- <-exited
	}
}

// log returns the current agent process's log.
func (n *node) log() string {
	b, _ := os.ReadFile(n.logPath())
	return string(b)
}

// ready reports whether the agent's /readyz answers 200.
func (n *node) ready() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + n.health + "/readyz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// metricsText scrapes /metrics.
func (n *node) metricsText(t *testing.T) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + n.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics of %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil {
			break
		}
	}
	return b.String()
}

// conflist loads the conflist the agent installed.
func (n *node) conflist(t *testing.T) *libcni.NetworkConfigList {
	t.Helper()
	list, err := libcni.NetworkConfFromFile(filepath.Join(n.confDir(), cni.ConflistFileName))
	if err != nil {
		t.Fatalf("load the conflist the agent of %s installed: %v", n.name, err)
	}
	return list
}

// runtime is the node's container runtime's CNI side: libcni with the agent's bin dir.
func (n *node) runtime(t *testing.T) *libcni.CNIConfig {
	if n.cni == nil {
		exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
		n.cni = libcni.NewCNIConfigWithCacheDir([]string{n.binDir()}, filepath.Join(n.dir, "cni-cache"), exec)
	}
	return n.cni
}

// inNode runs fn on a thread inside the node's namespace, so the plugin processes libcni starts
// there inherit it, as on a real node where the runtime lives in the node's namespace.
func (n *node) inNode(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cniTimeout)
	defer cancel()
	return n.ns.Do(func() error { return fn(ctx) })
}

// errAgentExited reports an agent process that died.
var errAgentExited = errors.New("agent process exited")

// alive returns errAgentExited (with the log) if the agent died.
func (n *node) alive() error {
	select {
	case err := <-n.exited:
		n.exited <- err
		return fmt.Errorf("%w: %s: %v; log:\n%s", errAgentExited, n.name, err, n.log())
	default:
		return nil
	}
}
