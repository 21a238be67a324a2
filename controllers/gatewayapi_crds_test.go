package controllers

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/controlplane"
	"github.com/plexus-net/plexus/internal/gatewayapi"
)

func gatewaySpec(ingress, gateway bool, class string) v1.ClusterNetworkSpec {
	return v1.ClusterNetworkSpec{Ingress: &v1.Ingress{Enabled: ptr.To(ingress),
		GatewayAPI: &v1.GatewayAPI{Enabled: ptr.To(gateway), GatewayClassName: class}}}
}

func TestGatewayAPIObjects(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec v1.ClusterNetworkSpec
		want string // the GatewayClass name, "" for nothing
	}{
		{"no ingress", v1.ClusterNetworkSpec{}, ""},
		{"ingress without gateway", gatewaySpec(true, false, ""), ""},
		{"gateway without ingress", gatewaySpec(false, true, ""), ""},
		{"default class", gatewaySpec(true, true, ""), "plexus"},
		{"named class", gatewaySpec(true, true, "edge"), "edge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render.GatewayAPIObjects(tc.spec)
			if tc.want == "" {
				if len(objs) != 0 {
					t.Fatalf("rendered %d objects, want none", len(objs))
				}
				return
			}
			gc, ok := objs[0].(*gwv1.GatewayClass)
			if len(objs) != 1 || !ok || gc.Name != tc.want || gc.Spec.ControllerName != render.GatewayControllerName || gc.Kind != "GatewayClass" {
				t.Fatalf("rendered %+v, want the GatewayClass %s of %s", objs, tc.want, render.GatewayControllerName)
			}
		})
	}
}

// TestEnsureGatewayAPI runs the install phase against a real API server: missing CRDs are created,
// an installed one is left exactly as it was, the GatewayClass follows the spec, and disabling
// deletes the GatewayClass but no CRD and no user's Gateway.
func TestEnsureGatewayAPI(t *testing.T) {
	dir := controlplane.AssetsDir()
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		t.Fatalf("no kube-apiserver in %s: run `make controlplane` first (%v)", dir, err)
	}
	e := &envtest.Environment{BinaryAssetsDirectory: dir}
	cfg, err := e.Start()
	if err != nil {
		t.Fatalf("start the API server: %v", err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	scheme := runtime.NewScheme()
	if err := gwv1.Install(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// A user installed ReferenceGrant's CRD already (marked by an annotation of theirs).
	crds, err := gatewayapi.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, crd := range crds {
		if crd.Name != "referencegrants.gateway.networking.k8s.io" {
			continue
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{Object: u}
		unstructured.RemoveNestedField(obj.Object, "status")
		unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
		ann := obj.GetAnnotations()
		ann["example.com/installed-by"] = "user"
		obj.SetAnnotations(ann)
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}

	ensureUntilApplied := func(spec v1.ClusterNetworkSpec) GatewayAPIOutcome {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := EnsureGatewayAPI(ctx, c, spec)
			if err != nil {
				t.Fatalf("ensure: %v", err)
			}
			if !out.Pending {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatal("the GatewayClass CRD never became established")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	first, err := EnsureGatewayAPI(ctx, c, gatewaySpec(true, true, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Created) != len(crds)-1 || len(first.Present) != 1 || first.Present[0] != "referencegrants.gateway.networking.k8s.io" {
		t.Fatalf("first ensure created %v and found %v; want every CRD but referencegrants created", first.Created, first.Present)
	}
	if out := ensureUntilApplied(gatewaySpec(true, true, "")); len(out.Created) != 0 {
		t.Fatalf("a second ensure created %v again", out.Created)
	}
	rg := crdObject("referencegrants.gateway.networking.k8s.io")
	if err := c.Get(ctx, client.ObjectKey{Name: rg.GetName()}, rg); err != nil {
		t.Fatal(err)
	}
	if rg.GetAnnotations()["example.com/installed-by"] != "user" {
		t.Fatalf("the user's CRD was changed: annotations %v", rg.GetAnnotations())
	}
	gc := &gwv1.GatewayClass{}
	if err := c.Get(ctx, client.ObjectKey{Name: "plexus"}, gc); err != nil {
		t.Fatalf("the GatewayClass was not applied: %v", err)
	}
	if gc.Spec.ControllerName != render.GatewayControllerName {
		t.Fatalf("GatewayClass controllerName %s", gc.Spec.ControllerName)
	}

	// Renamed: the new class is applied, the old one deleted.
	ensureUntilApplied(gatewaySpec(true, true, "edge"))
	if err := c.Get(ctx, client.ObjectKey{Name: "edge"}, gc); err != nil {
		t.Fatalf("the renamed GatewayClass was not applied: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "plexus"}, gc); !apierrors.IsNotFound(err) {
		t.Fatalf("the old GatewayClass is still there (err %v)", err)
	}

	// A user's Gateway and a GatewayClass of theirs survive disabling; so does every CRD.
	if err := c.Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/theirs"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "users"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "edge", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureGatewayAPI(ctx, c, gatewaySpec(true, false, "edge")); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "edge"}, gc); !apierrors.IsNotFound(err) {
		t.Fatalf("disabling left the operator's GatewayClass (err %v)", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "theirs"}, gc); err != nil {
		t.Fatalf("disabling deleted a GatewayClass the operator did not make: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "users"}, &gwv1.Gateway{}); err != nil {
		t.Fatalf("the user's Gateway is gone after disabling: %v", err)
	}
	for _, crd := range crds {
		if err := c.Get(ctx, client.ObjectKey{Name: crd.Name}, crdObject(crd.Name)); err != nil {
			t.Fatalf("CRD %s is gone after disabling: %v", crd.Name, err)
		}
	}
}
