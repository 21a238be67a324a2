package knpbench

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/plexus-net/plexus/internal/controlplane"
	"github.com/plexus-net/plexus/internal/lab"
	"github.com/plexus-net/plexus/internal/testnet"
)

// Addresses inside the node namespace. The API server listens on the node address (not only on
// loopback) because KNP reaches it as in a cluster, through KUBERNETES_SERVICE_HOST, and the
// API server's self-signed certificate names its advertise address.
const (
	nodeIP             = "10.223.254.1"
	apiPort            = "6443"
	etcdClientURL      = "http://127.0.0.1:2379"
	etcdPeerURL        = "http://127.0.0.1:2380"
	stopTimeout        = 15 * time.Second
	processReadyBudget = 90 * time.Second
	// envLogDir, when set by the user, keeps the processes' logs in that directory.
	envLogDir = "KNPBENCH_LOG_DIR"
)

// benchPrefixes are the ranges the benchmark puts in its namespaces (the fixture's pod
// addresses and the node address), checked against the machine before anything is created.
var benchPrefixes = []string{"10.64.0.0/14", "fd10::/64", "10.223.254.0/24", "10.96.0.0/16"}

// controlPlane is etcd and kube-apiserver inside the node namespace, and a client of this
// process that dials into it.
type controlPlane struct {
	ns     *testnet.Netns
	dir    string
	assets string
	token  string
	cs     kubernetes.Interface
	http   *http.Client
}

// startControlPlane starts etcd and kube-apiserver in a new namespace; everything is stopped and
// removed when b ends.
func startControlPlane(b *testing.B) *controlPlane {
	assets := controlplane.AssetsDir()
	for _, c := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(assets, c)); err != nil {
			b.Fatalf("no %s in %s: run `make controlplane` first (%v)", c, assets, err)
		}
	}
	var prefixes []netip.Prefix
	for _, p := range benchPrefixes {
		prefixes = append(prefixes, netip.MustParsePrefix(p))
	}
	if err := testnet.CheckNoOverlap(prefixes...); err != nil {
		b.Fatalf("refusing to start: %v", err)
	}
	cp := &controlPlane{ns: testnet.NewNetns(b, "knpb"), dir: b.TempDir(), assets: assets, token: randomHex(16)}
	nsPath := cp.ns.Path()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return lab.DialInNetns(ctx, nsPath, network, addr)
	}
	cp.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed, namespace-local
	}}
	if err := os.WriteFile(filepath.Join(cp.dir, "tokens.csv"), []byte(cp.token+",knpbench-admin,knpbench-admin,\"system:masters\"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	writeServiceAccountKey(b, cp.dir)
	cp.ns.Exec(b, "ip", "addr", "add", nodeIP+"/32", "dev", "lo")
	etcd := cp.start(b, "etcd", nil, filepath.Join(assets, "etcd"),
		"--name", "knpbench", "--data-dir", filepath.Join(cp.dir, "etcd"),
		"--listen-client-urls", etcdClientURL, "--advertise-client-urls", etcdClientURL,
		"--listen-peer-urls", etcdPeerURL, "--initial-advertise-peer-urls", etcdPeerURL,
		"--initial-cluster", "knpbench="+etcdPeerURL, "--unsafe-no-fsync", "--log-level", "warn")
	cp.waitHTTP(b, etcd, etcdClientURL+"/health", "")
	apiserver := cp.start(b, "kube-apiserver", nil, filepath.Join(assets, "kube-apiserver"),
		"--etcd-servers", etcdClientURL,
		"--bind-address", nodeIP, "--advertise-address", nodeIP, "--secure-port", apiPort,
		"--cert-dir", filepath.Join(cp.dir, "certs"),
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--token-auth-file", filepath.Join(cp.dir, "tokens.csv"), "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", filepath.Join(cp.dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(cp.dir, "sa.key"),
		"--max-requests-inflight", "2000", "--max-mutating-requests-inflight", "1000",
		// No controller manager makes the namespaces' default service accounts, and no pod runs.
		"--disable-admission-plugins", "ServiceAccount",
		"--profiling=false", "--v=0")
	cp.waitHTTP(b, apiserver, cp.apiURL()+"/readyz", cp.token)

	cfg := &rest.Config{
		Host: cp.apiURL(), BearerToken: cp.token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		ContentConfig:   rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf"},
		QPS:             5000, Burst: 10000, Dial: dial,
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cp.cs = cs
	return cp
}

func (cp *controlPlane) apiURL() string { return "https://" + net.JoinHostPort(nodeIP, apiPort) }

// proc is a process started inside the namespace (`ip netns exec` and what it runs exec the
// command, so the pid is the command's own).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	once sync.Once
}

// start starts bin inside the namespace with env added to this process's environment and its
// output in a log file; it is stopped when b ends (if not before).
func (cp *controlPlane) start(b *testing.B, name string, env []string, bin string, args ...string) *proc {
	dir := cp.dir
	if d := os.Getenv(envLogDir); d != "" {
		dir = d
	}
	logPath := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", cp.ns.Name(), bin}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		b.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	b.Cleanup(p.stop)
	return p
}

// stop sends SIGTERM (KNP also needs SIGINT: it listens for nothing else), waits, then kills;
// safe to call twice.
func (p *proc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process's log, for failure messages.
func (p *proc) tail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return string(data)
}

// memory reads VmRSS and VmHWM (peak RSS) of the process, in MiB.
func (p *proc) memory() (rss, peak float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}

func (cp *controlPlane) get(url, token string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cp.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), err
}

func (cp *controlPlane) waitHTTP(b *testing.B, p *proc, url, token string) {
	var err error
	if testnet.Poll(processReadyBudget, 200*time.Millisecond, func() bool {
		if p.exited() {
			b.Fatalf("%s exited:\n%s", p.name, p.tail())
		}
		_, err = cp.get(url, token)
		return err == nil
	}) {
		return
	}
	b.Fatalf("%s not ready after %s: %v\n%s", p.name, processReadyBudget, err, p.tail())
}

// nft runs nft inside the namespace.
func (cp *controlPlane) nft(args ...string) (string, error) {
	return cp.ns.TryExec(append([]string{"nft"}, args...)...)
}

func writeServiceAccountKey(b *testing.B, dir string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		b.Fatal(err)
	}
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}
