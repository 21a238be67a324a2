// Package envtest runs the operator against a real kube-apiserver and etcd (v1.37.2, built by
// hack/controlplane) and checks what a user would see: validation messages, allocations,
// conditions and events.
package envtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/netconfig"
	"github.com/plexus-net/plexus/internal/controlplane"
)

var (
	cfg       *rest.Config
	k8s       client.Client
	testEnv   *envtest.Environment
	stopOp    context.CancelFunc
	opDone    chan struct{}
	suiteCtx  context.Context
	cancelAll context.CancelFunc
)

func TestEnvtest(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Operator against a real API server")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	suiteCtx, cancelAll = context.WithCancel(context.Background())
	dir := controlplane.AssetsDir()
	_, err := os.Stat(filepath.Join(dir, "kube-apiserver"))
	Expect(err).NotTo(HaveOccurred(), "no kube-apiserver in %s: run `make controlplane` (or `make test`, which runs it) first", dir)

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}
	// The service CIDRs of the tests' ClusterNetworks: the kube-dns Service Plexus renders gets its
	// ClusterIPs from them, and the API server only hands out addresses of its own range.
	testEnv.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/16,fd00:10:96::/112")
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	cfg.QPS, cfg.Burst = 500, 1000
	k8s, err = client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8s.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controllers.DefaultNamespace}})).To(Succeed())
	startOperator()
})

var _ = AfterSuite(func() {
	stopOperator()
	if cancelAll != nil {
		cancelAll()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// startOperator runs the operator's controllers in this process, as the binary would.
func startOperator() {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 controllers.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions(controllers.DefaultNamespace),
		// The suite restarts the operator in one process; a real restart is a new process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.Setup(mgr, controllers.Options{Images: netconfig.Images{Agent: "plexus-agent:test", DNS: "plexus-coredns:test", Ingress: "plexus-ingress:test"}})).To(Succeed())
	ctx, cancel := context.WithCancel(suiteCtx)
	stopOp, opDone = cancel, make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(opDone)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}

func stopOperator() {
	if stopOp == nil {
		return
	}
	stopOp()
	Eventually(opDone, 30*time.Second).Should(BeClosed())
	stopOp = nil
}

var _ = Describe("The test control plane", func() {
	It("is the pinned Kubernetes version", func() {
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		v, err := dc.ServerVersion()
		Expect(err).NotTo(HaveOccurred())
		Expect(v.GitVersion).To(Equal(controlplane.KubernetesVersion))
	})
})
