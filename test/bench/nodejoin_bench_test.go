// Package bench holds benchmarks that need a real API server. They start their own control plane
// (the binaries `make controlplane` builds) and the operator in process.
package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/netconfig"
	"github.com/plexus-net/plexus/internal/testnet"
)

const nodeCount = 1000

// BenchmarkNodeJoin1000 creates 1,000 Nodes at once against a real kube-apiserver and measures the
// time until every one has a NodeNetwork with its pod CIDRs (dual-stack). Target (issue): ≤ 30 s.
func BenchmarkNodeJoin1000(b *testing.B) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		b.Fatal("KUBEBUILDER_ASSETS is not set: run `make bench`, which builds the control plane and sets it")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer env.Stop()
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		b.Fatal(err)
	}

	// The operator runs with its production defaults for API rate limits.
	opCfg := *cfg
	opCfg.QPS, opCfg.Burst = 100, 200
	mgr, err := ctrl.NewManager(&opCfg, ctrl.Options{Scheme: controllers.NewScheme(), Metrics: metricsserver.Options{BindAddress: "0"}, Cache: controllers.CacheOptions(controllers.DefaultNamespace)})
	if err != nil {
		b.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{Images: netconfig.Images{}}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = mgr.Start(ctx) }()

	cn := &v1.ClusterNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultClusterNetworkName},
		Spec: v1.ClusterNetworkSpec{
			IPFamilies:     []v1.IPFamily{v1.IPv4, v1.IPv6},
			PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{"10.128.0.0/12", "fd00:10:128::/48"}},
			ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{"10.96.0.0/16", "fd00:10:96::/112"}},
		},
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controllers.DefaultNamespace}}); err != nil {
		b.Fatal(err)
	}
	if err := c.Create(ctx, cn); err != nil {
		b.Fatal(err)
	}

	for i := 0; b.Loop(); i++ {
		start := time.Now()
		createNodes(b, c, fmt.Sprintf("r%d", i))
		created := time.Since(start)
		waitAllocated(b, c, nodeCount*(i+1))
		total := time.Since(start)
		b.ReportMetric(total.Seconds(), "s-until-all-allocated")
		b.ReportMetric(created.Seconds(), "s-to-create-nodes")
		b.Logf("%d nodes: created in %s, all NodeNetworks allocated after %s (target ≤ 30 s)", nodeCount, created.Round(time.Millisecond), total.Round(time.Millisecond))
	}
}

func createNodes(b *testing.B, c client.Client, prefix string) {
	var wg sync.WaitGroup
	errs := make(chan error, nodeCount)
	sem := make(chan struct{}, 50)
	for n := 0; n < nodeCount; n++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(n int) {
			defer wg.Done()
			defer func() { <-sem }()
			node := &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-node-%d", prefix, n)},
				Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
					{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("192.168.%d.%d", n/250, n%250+1)},
				}},
			}
			if err := c.Create(context.Background(), node); err != nil {
				errs <- err
			}
		}(n)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func waitAllocated(b *testing.B, c client.Client, want int) {
	if testnet.Poll(5*time.Minute, 50*time.Millisecond, func() bool {
		var list v1.NodeNetworkList
		if err := c.List(context.Background(), &list); err != nil {
			b.Fatal(err)
		}
		done := 0
		for _, nn := range list.Items {
			if len(nn.Spec.PodCIDRs) == 2 {
				done++
			}
		}
		return done >= want
	}) {
		return
	}
	b.Fatalf("not all %d nodes allocated within 5 minutes", want)
}
