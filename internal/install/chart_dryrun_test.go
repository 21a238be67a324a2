package install

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/plexus-net/plexus/internal/controlplane"
)

// TestRenderedChartPassesServerSideDryRun applies what the chart renders, with the default and
// the full values, to a real kube-apiserver as a server-side dry run: every object must be one the
// API server accepts (schema, CEL rules of the CRDs, RBAC escalation checks).
func TestRenderedChartPassesServerSideDryRun(t *testing.T) {
	helmBinary(t) // skip before starting a control plane when helm is missing
	dir := controlplane.AssetsDir()
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		t.Fatalf("no kube-apiserver in %s: run make controlplane", dir)
	}
	// The CRDs are installed for real first: a ClusterNetwork can only be dry-run once its type
	// is served, and the CRDs' own dry run then checks they update cleanly.
	env := &envtest.Environment{BinaryAssetsDirectory: dir, CRDDirectoryPaths: []string{filepath.Join(repoRoot, "config/crd/bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop the control plane: %v", err)
		}
	})
	if err := apiextensionsv1.AddToScheme(scheme.Scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{"default values": nil, "full values": {"--values", fullValues}} {
		t.Run(name, func(t *testing.T) {
			objs := renderChart(t, args...)
			if len(objs) == 0 {
				t.Fatal("helm template rendered nothing")
			}
			for _, o := range objs {
				o.SetManagedFields(nil)
				err := c.Patch(ctx, o, client.Apply, client.DryRunAll, client.FieldOwner("helm-chart-test"), client.ForceOwnership) //nolint:staticcheck // unstructured apply
				if err != nil {
					t.Errorf("server-side dry run of %s %s: %v", o.GetKind(), o.GetName(), err)
				}
			}
			// A dry run stores nothing.
			var dep unstructured.Unstructured
			dep.SetAPIVersion("apps/v1")
			dep.SetKind("Deployment")
			if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "plexus-operator"}, &dep); err == nil {
				t.Errorf("the dry run created the operator Deployment")
			}
		})
	}
}

// equalJSON compares two values as their JSON forms (numbers and maps from YAML and from Go).
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}
