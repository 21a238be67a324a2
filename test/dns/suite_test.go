// Package clusterdns proves the Corefile Plexus renders by running it: the CoreDNS that hack/coredns
// builds serves the rendered Corefile on loopback, its kubernetes plugin watching a real
// kube-apiserver (envtest, v1.37.2), its upstreams and forward zones answered by
// internal/dnsupstream servers on loopback. Lookups go through github.com/miekg/dns.
package clusterdns

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/controlplane"
	"github.com/plexus-net/plexus/internal/dnsupstream"
)

// corednsVersion is the version hack/coredns/build.sh builds.
const corednsVersion = "v1.15.0"

var (
	testEnv *envtest.Environment
	k8s     client.Client
	workDir string
	// kubeconfig is what the kubernetes plugin uses to reach the API server.
	kubeconfig string
	cancelAll  context.CancelFunc
	suiteCtx   context.Context
)

func TestDNS(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "CoreDNS serving the rendered Corefile")
}

var _ = BeforeSuite(func() {
	suiteCtx, cancelAll = context.WithCancel(context.Background())
	dir := controlplane.AssetsDir()
	_, err := os.Stat(filepath.Join(dir, "kube-apiserver"))
	Expect(err).NotTo(HaveOccurred(), "no kube-apiserver in %s: run `make controlplane` first", dir)
	_, err = os.Stat(corednsBinary())
	Expect(err).NotTo(HaveOccurred(), "no CoreDNS at %s: run hack/coredns/build.sh first", corednsBinary())

	testEnv = &envtest.Environment{BinaryAssetsDirectory: dir}
	// Dual-stack Services, as the cluster the Corefile is rendered for.
	testEnv.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", serviceCIDRv4+","+serviceCIDRv6)
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme.Scheme})
	Expect(err).NotTo(HaveOccurred())

	// CoreDNS gets exactly the rights the render grants it: the rendered ClusterRole and binding,
	// and a client certificate for the ServiceAccount they name. A missing right would keep the
	// kubernetes plugin from syncing, and CoreDNS from ever turning ready.
	for _, o := range render.DNS(render.DNSConfig{Namespace: render.DNSNamespace, Spec: spec("127.0.0.1:1", "127.0.0.1:1"), Nodes: 1}) {
		switch o.(type) {
		case *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding:
			Expect(k8s.Create(suiteCtx, o)).To(Succeed())
		}
	}
	workDir = GinkgoT().TempDir()
	user, err := testEnv.ControlPlane.AddUser(envtest.User{Name: "system:serviceaccount:" + render.DNSNamespace + ":" + render.DNSServiceAccount}, nil)
	Expect(err).NotTo(HaveOccurred())
	kc, err := user.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	kubeconfig = filepath.Join(workDir, "kubeconfig")
	Expect(os.WriteFile(kubeconfig, kc, 0o600)).To(Succeed())
})

var _ = AfterSuite(func() {
	if cancelAll != nil {
		cancelAll()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// corednsBinary is where hack/coredns/build.sh caches CoreDNS.
func corednsBinary() string {
	if p := os.Getenv("PLEXUS_COREDNS"); p != "" {
		return p
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "plexus", "coredns", corednsVersion, "coredns")
}

// freePort returns a loopback port that was free a moment ago, for both UDP and TCP.
func freePort() int32 {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			pc.Close()
			return int32(port)
		}
	}
}

// startUpstream serves zone on a loopback port until the suite ends and returns host:port.
func startUpstream(zone dnsupstream.Zone) string {
	addr := make(chan string, 1)
	go func() {
		defer GinkgoRecover()
		Expect(dnsupstream.Serve(suiteCtx, "127.0.0.1:0", zone, func(u, _ net.Addr) { addr <- u.String() })).To(Succeed())
	}()
	var a string
	Eventually(addr).WithTimeout(10 * time.Second).Should(Receive(&a))
	return a
}

// coreDNS is one running CoreDNS process.
type coreDNS struct {
	cfg      render.CorefileConfig
	cmd      *exec.Cmd
	conf     string
	dnsAddr  string
	readyURL string
}

// startCoreDNS writes the Corefile rendered from cfg (moved onto free loopback ports and pointed
// at the test API server) and runs CoreDNS with it until the spec ends; it returns once CoreDNS'
// ready plugin says the kubernetes plugin has synced.
func startCoreDNS(cfg render.CorefileConfig) *coreDNS {
	cfg.ListenIP = "127.0.0.1"
	cfg.Port, cfg.HealthPort, cfg.ReadyPort, cfg.MetricsPort = freePort(), freePort(), freePort(), freePort()
	cfg.Kubeconfig = kubeconfig
	c := &coreDNS{
		cfg:      cfg,
		conf:     filepath.Join(GinkgoT().TempDir(), "Corefile"),
		dnsAddr:  net.JoinHostPort(cfg.ListenIP, strconv.Itoa(int(cfg.Port))),
		readyURL: fmt.Sprintf("http://%s/ready", net.JoinHostPort(cfg.ListenIP, strconv.Itoa(int(cfg.ReadyPort)))),
	}
	c.write()
	c.cmd = exec.Command(corednsBinary(), "-conf", c.conf)
	c.cmd.Stdout, c.cmd.Stderr = GinkgoWriter, GinkgoWriter
	Expect(c.cmd.Start()).To(Succeed())
	DeferCleanup(func() {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	Eventually(func() error {
		resp, err := http.Get(c.readyURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ready: %s", resp.Status)
		}
		return nil
	}).WithTimeout(60*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "CoreDNS never became ready")
	// The ready plugin can answer before the DNS listeners are open: wait for the cluster zone's SOA.
	Eventually(func() error {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(cfg.ClusterDomain), dns.TypeSOA)
		_, _, err := (&dns.Client{Timeout: time.Second}).Exchange(q, c.dnsAddr)
		return err
	}).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "CoreDNS never answered on %s", c.dnsAddr)
	return c
}

// reconfigure changes the configuration and rewrites the Corefile in place; the listeners stay.
func (c *coreDNS) reconfigure(mutate func(*render.CorefileConfig)) {
	mutate(&c.cfg)
	c.write()
}

func (c *coreDNS) write() {
	corefile := render.RenderCorefile(c.cfg)
	GinkgoWriter.Printf("Corefile:\n%s\n", corefile)
	Expect(os.WriteFile(c.conf, []byte(corefile), 0o644)).To(Succeed())
}
