package envtest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/plexus-net/plexus/controllers"
)

// apiGate is a TCP proxy to the API server that can hold every new connection unanswered, as a
// frozen (SIGSTOPped) API server does: the client's TLS handshake times out.
type apiGate struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	open    bool
	held    []net.Conn
	active  map[net.Conn]bool
}

func newAPIGate(backend string) *apiGate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	g := &apiGate{ln: ln, backend: backend, active: map[net.Conn]bool{}}
	go g.serve()
	return g
}

func (g *apiGate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		if !g.open {
			g.held = append(g.held, c)
			g.mu.Unlock()
			continue
		}
		g.active[c] = true
		g.mu.Unlock()
		go g.forward(c)
	}
}

func (g *apiGate) forward(c net.Conn) {
	defer func() {
		g.mu.Lock()
		delete(g.active, c)
		g.mu.Unlock()
		_ = c.Close()
	}()
	b, err := net.Dial("tcp", g.backend)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}

// let opens the gate; connections held so far are dropped, as they would time out.
func (g *apiGate) let() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
	for _, c := range g.held {
		_ = c.Close()
	}
	g.held = nil
}

// hold closes the gate again: open connections are cut, new ones held unanswered.
func (g *apiGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = false
	for c := range g.active {
		_ = c.Close()
	}
}

func (g *apiGate) close() {
	_ = g.ln.Close()
	g.let()
}

// syncBuffer collects a process's output for the test to read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildOperator builds cmd/plexus-operator into dir.
func buildOperator(dir string) string {
	bin := filepath.Join(dir, "plexus-operator")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/plexus-operator")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build: %s", out)
	return bin
}

// kubeconfigThrough writes a kubeconfig for an admin user that reaches the API server at addr.
func kubeconfigThrough(dir, addr string) string {
	user, err := testEnv.AddUser(envtest.User{Name: "plexus-startup-test", Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	data, err := user.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	kc, err := clientcmd.Load(data)
	Expect(err).NotTo(HaveOccurred())
	for _, c := range kc.Clusters {
		c.Server = "https://" + addr
	}
	path := filepath.Join(dir, "kubeconfig")
	Expect(clientcmd.WriteToFile(*kc, path)).To(Succeed())
	return path
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().String()
}

func probe(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var _ = Describe("The operator binary", func() {
	It("waits out an unreachable API server at start-up, not ready and without exiting, then starts", func() {
		By("stopping the suite's in-process operator: the binary takes its place")
		stopOperator()
		DeferCleanup(startOperator)

		dir := GinkgoT().TempDir()
		bin := buildOperator(dir)
		apiURL, err := url.Parse(cfg.Host)
		Expect(err).NotTo(HaveOccurred())
		gate := newAPIGate(apiURL.Host)
		DeferCleanup(gate.close)
		probes := freePort()

		cmd := exec.Command(bin, "--leader-elect", "--namespace="+controllers.DefaultNamespace,
			"--metrics-bind-address=0", "--health-probe-bind-address="+probes)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfigThrough(dir, gate.ln.Addr().String()))
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		Expect(cmd.Start()).To(Succeed())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		DeferCleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			Eventually(exited, 30*time.Second).Should(Receive())
			GinkgoWriter.Printf("operator output:\n%s\n", out.String())
		})

		By("the API server unreachable: alive, not ready, retrying")
		Eventually(func() int { code, _ := probe(probes, "/healthz"); return code }, timeout, interval).Should(Equal(http.StatusOK))
		// Two attempts: each ends in a TLS handshake timeout (10 s) and a backoff.
		Eventually(out.String, 60*time.Second, interval).Should(MatchRegexp(`(?s)starting it again.*"attempt": ?2`))
		Expect(out.String()).To(ContainSubstring("TLS handshake timeout"))
		code, body := probe(probes, "/readyz")
		Expect(code).To(Equal(http.StatusServiceUnavailable), body)
		Expect(body).To(MatchRegexp(`attempt \d+ failed`))
		Consistently(exited, "1s").ShouldNot(Receive(), "the operator exited while the API server was unreachable")

		By("the API server reachable again: ready, leading, never exited")
		gate.let()
		Eventually(func() int { code, _ := probe(probes, "/readyz"); return code }, 2*timeout, interval).Should(Equal(http.StatusOK))
		Eventually(func(g Gomega) {
			lease := &coordinationv1.Lease{}
			g.Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: controllers.DefaultNamespace, Name: "plexus-operator.plexus.dev"}, lease)).To(Succeed())
			g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
		}, timeout, interval).Should(Succeed())
		Expect(exited).NotTo(Receive(), "the operator exited")

		By("the API server unreachable past the lease's renew deadline: the lease is lost, the process stays")
		gate.hold()
		Eventually(out.String, timeout, interval).Should(ContainSubstring("leader election lost"))
		Consistently(exited, "1s").ShouldNot(Receive(), "the operator exited after losing its lease")
		gate.let()
		Eventually(func() int { code, _ := probe(probes, "/readyz"); return code }, 2*timeout, interval).Should(Equal(http.StatusOK))
		Eventually(out.String, timeout, interval).Should(MatchRegexp(`(?s)leader election lost.*Successfully acquired lease`))
		Expect(exited).NotTo(Receive(), "the operator exited")
	})
})
