package proxybench

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

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/plexus-net/plexus/internal/controlplane"
	"github.com/plexus-net/plexus/internal/lab"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// benchNamespace holds the benchmark's Services and EndpointSlices.
	benchNamespace = "proxybench"
	// nodeName is the Node both proxies run as; every endpoint is on other nodes.
	nodeName = "proxybench-node"
	portName = "http"
	// servicePort and targetPort of every Service.
	servicePort = 80
	targetPort  = 8080
	perService  = 10
	// Addresses on the namespace's loopback.
	apiAddr            = "127.0.0.1:6443"
	kubeProxyMetrics   = "127.0.0.1:10249"
	kubeProxyHealthz   = "127.0.0.1:10256"
	plexusStateAddr    = "127.0.0.1:10299"
	etcdClientURL      = "http://127.0.0.1:2379"
	etcdPeerURL        = "http://127.0.0.1:2380"
	stopTimeout        = 15 * time.Second
	fieldManagedBy     = "proxybench"
	processReadyBudget = 90 * time.Second
	// envLogDir, when set by the user, is a directory that keeps the processes' logs (otherwise
	// they go to the benchmark's temporary directory and are removed with it).
	envLogDir = "PROXYBENCH_LOG_DIR"
)

// Ranges of the benchmark (checked against the machine before anything is created, although
// nothing of them is routed: they exist only as rules inside the namespace).
var (
	serviceCIDR  = "10.96.0.0/16"
	clusterCIDR  = "10.224.0.0/12" // endpoints: 10.224.0.0/12; flipped endpoints 10.230.0.0/16
	nodeIP       = "10.223.255.1"
	benchPrefixs = []string{serviceCIDR, clusterCIDR, "10.223.255.0/24"}
)

// controlPlane is etcd and kube-apiserver inside a throwaway network namespace, and a client of
// this process that dials into it.
type controlPlane struct {
	ns     *testnet.Netns
	dir    string
	assets string
	token  string
	cs     kubernetes.Interface
	http   *http.Client // plain HTTP client whose connections start in the namespace
	// created counts the scale Services (svc-0 … svc-created-1) in the API.
	created int
}

// ensureKubeProxy builds kube-proxy into dir with hack/controlplane/build.sh when it is missing
// (seconds when the module cache is warm, several minutes cold).
func ensureKubeProxy(b *testing.B, dir string) string {
	bin := filepath.Join(dir, "kube-proxy")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	b.Logf("building kube-proxy %s into %s (hack/controlplane/build.sh kube-proxy)", controlplane.KubernetesVersion, dir)
	cmd := exec.Command(filepath.Join("..", "..", "hack", "controlplane", "build.sh"), "kube-proxy")
	cmd.Env = append(os.Environ(), "PLEXUS_CONTROLPLANE_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build kube-proxy: %v\n%s", err, out)
	}
	return bin
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
	ensureKubeProxy(b, assets)
	var prefixes []netip.Prefix
	for _, p := range benchPrefixs {
		prefixes = append(prefixes, netip.MustParsePrefix(p))
	}
	if err := testnet.CheckNoOverlap(prefixes...); err != nil {
		b.Fatalf("refusing to start: %v", err)
	}
	cp := &controlPlane{ns: testnet.NewNetns(b, "pbench"), dir: b.TempDir(), assets: assets, token: randomHex(16)}
	nsPath := cp.ns.Path()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return lab.DialInNetns(ctx, nsPath, network, addr)
	}
	cp.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: dial, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed, namespace-local
		MaxIdleConnsPerHost: 4,
	}}
	if err := os.WriteFile(filepath.Join(cp.dir, "tokens.csv"), []byte(cp.token+",proxybench-admin,proxybench-admin,\"system:masters\"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	writeServiceAccountKey(b, cp.dir)

	// The API server's advertised address must not be loopback: the node address on lo.
	cp.ns.Exec(b, "ip", "addr", "add", nodeIP+"/32", "dev", "lo")
	etcd := cp.start(b, "etcd", filepath.Join(assets, "etcd"),
		"--name", "proxybench", "--data-dir", filepath.Join(cp.dir, "etcd"),
		"--listen-client-urls", etcdClientURL, "--advertise-client-urls", etcdClientURL,
		"--listen-peer-urls", etcdPeerURL, "--initial-advertise-peer-urls", etcdPeerURL,
		"--initial-cluster", "proxybench="+etcdPeerURL, "--unsafe-no-fsync", "--log-level", "warn")
	cp.waitHTTP(b, etcd, etcdClientURL+"/health", "")
	apiserver := cp.start(b, "kube-apiserver", filepath.Join(assets, "kube-apiserver"),
		"--etcd-servers", etcdClientURL,
		"--bind-address", "127.0.0.1", "--advertise-address", nodeIP, "--secure-port", "6443",
		"--cert-dir", filepath.Join(cp.dir, "certs"),
		"--service-cluster-ip-range", serviceCIDR,
		"--token-auth-file", filepath.Join(cp.dir, "tokens.csv"), "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", filepath.Join(cp.dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(cp.dir, "sa.key"),
		// Bulk creation from parallel clients.
		"--max-requests-inflight", "2000", "--max-mutating-requests-inflight", "1000",
		"--profiling=false", "--v=0")
	cp.waitHTTP(b, apiserver, "https://"+apiAddr+"/readyz", cp.token)

	cfg := &rest.Config{
		Host: "https://" + apiAddr, BearerToken: cp.token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		ContentConfig:   rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf"},
		QPS:             5000, Burst: 10000, Dial: dial,
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cp.cs = cs
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{"kubernetes.io/hostname": nodeName}},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP}}},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	return cp
}

// proc is a process started inside the namespace (`ip netns exec` execs the command, so the pid
// is the command's own).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	once sync.Once
}

// start starts bin inside the namespace with its output in a log file of the temp dir; it is
// stopped when b ends (if not before).
func (cp *controlPlane) start(b *testing.B, name, bin string, args ...string) *proc {
	return cp.startEnv(b, name, nil, bin, args...)
}

func (cp *controlPlane) startEnv(b *testing.B, name string, env []string, bin string, args ...string) *proc {
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

// stop sends SIGTERM, waits, then kills; safe to call twice.
func (p *proc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// exited says whether the process has ended.
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

// serviceIP is the ClusterIP of scale Service i (10.96.0.1 is the kubernetes Service).
func serviceIP(i int) string {
	v := i + 2
	return fmt.Sprintf("10.96.%d.%d", v/256, v%256)
}

// endpointIP is endpoint j of scale Service i, in clusterCIDR.
func endpointIP(i, j int) string {
	k := i*perService + j + 1
	return fmt.Sprintf("10.%d.%d.%d", 224+k>>16, k>>8&255, k&255)
}

func serviceObject(name, ip string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []corev1.ServicePort{{Name: portName, Protocol: corev1.ProtocolTCP, Port: servicePort}},
		},
	}
}

func sliceObject(service string, ips []string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: benchNamespace, Name: service + "-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: fieldManagedBy},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(int32(targetPort))}},
	}
	for j, ip := range ips {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To([]string{"node-a", "node-b"}[j%2]),
		})
	}
	return s
}

// ensureServices creates scale Services svc-created … svc-(n-1) and their EndpointSlices with
// parallel clients; it returns how long that took.
func (cp *controlPlane) ensureServices(b *testing.B, n int) time.Duration {
	start := time.Now()
	ctx := context.Background()
	idx := make(chan int)
	errc := make(chan error, 64)
	var wg sync.WaitGroup
	for w := 0; w < 48; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				name := fmt.Sprintf("svc-%d", i)
				ips := make([]string, perService)
				for j := range ips {
					ips[j] = endpointIP(i, j)
				}
				if _, err := cp.cs.DiscoveryV1().EndpointSlices(benchNamespace).Create(ctx, sliceObject(name, ips), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					errc <- fmt.Errorf("create slice of %s: %w", name, err)
					return
				}
				if _, err := cp.cs.CoreV1().Services(benchNamespace).Create(ctx, serviceObject(name, serviceIP(i)), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					errc <- fmt.Errorf("create %s: %w", name, err)
					return
				}
			}
		}()
	}
	failed := false
feed:
	for i := cp.created; i < n; i++ {
		select {
		case idx <- i:
		case err := <-errc:
			b.Error(err)
			failed = true
			break feed
		}
	}
	close(idx)
	wg.Wait()
	close(errc)
	for err := range errc {
		b.Error(err)
		failed = true
	}
	if failed {
		b.FailNow()
	}
	cp.created = max(cp.created, n)
	return time.Since(start)
}

// deleteServices deletes Services and their slices by name (ignoring those already gone).
func (cp *controlPlane) deleteServices(b *testing.B, names []string) {
	ctx := context.Background()
	for _, n := range names {
		if err := cp.cs.CoreV1().Services(benchNamespace).Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			b.Fatal(err)
		}
		if err := cp.cs.DiscoveryV1().EndpointSlices(benchNamespace).Delete(ctx, n+"-1", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			b.Fatal(err)
		}
	}
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
