package clusterstatus

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// controlPlaneAssets is where `make controlplane` caches kube-apiserver and etcd (or
// KUBEBUILDER_ASSETS).
func controlPlaneAssets() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "plexus", "controlplane", "v1.37.2")
}

// TestFetchFromAPIServer reads what a real API server stores (CRDs from config/crd) and checks the
// verdict: not Ready without a ClusterNetwork, Ready once its status says so.
func TestFetchFromAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	dir := controlPlaneAssets()
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		t.Skipf("no kube-apiserver in %s: run `make controlplane`", dir)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	snap, err := Fetch(ctx, c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := Verdict(snap); ok || why != "no ClusterNetwork default" {
		t.Fatalf("without a ClusterNetwork: Verdict = %v, %q", ok, why)
	}

	cn := &v1.ClusterNetwork{ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultClusterNetworkName}, Spec: *effective()}
	if err := c.Create(ctx, cn); err != nil {
		t.Fatal(err)
	}
	nn := &v1.NodeNetwork{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Spec: v1.NodeNetworkSpec{PodCIDRs: []v1.CIDR{"10.244.0.0/24"}}}
	if err := c.Create(ctx, nn); err != nil {
		t.Fatal(err)
	}
	snap, err = Fetch(ctx, c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := Verdict(snap); ok || why != "the ClusterNetwork has no Ready condition yet (is the operator running?)" {
		t.Fatalf("before the operator wrote status: Verdict = %v, %q", ok, why)
	}

	cn.Status = v1.ClusterNetworkStatus{ObservedGeneration: cn.Generation, AppliedGeneration: cn.Generation, Effective: effective(),
		Conditions: []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonAsExpected,
			Message: "all 1 nodes are networked", ObservedGeneration: cn.Generation, LastTransitionTime: metav1.Now()}}}
	if err := c.Status().Update(ctx, cn); err != nil {
		t.Fatal(err)
	}
	nn.Status = v1.NodeNetworkStatus{ProgrammedGeneration: cn.Generation, UplinkInterface: "eth0",
		Conditions: []metav1.Condition{{Type: v1.ConditionNodeReady, Status: metav1.ConditionTrue, Reason: v1.ReasonAsExpected,
			LastTransitionTime: metav1.Now()}}}
	if err := c.Status().Update(ctx, nn); err != nil {
		t.Fatal(err)
	}
	snap, err = Fetch(ctx, c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := Verdict(snap); !ok {
		t.Fatalf("with Ready status: not Ready: %s", why)
	}
	if len(snap.Nodes) != 1 || snap.Nodes[0].Status.UplinkInterface != "eth0" {
		t.Fatalf("nodes read back: %+v", snap.Nodes)
	}
}
