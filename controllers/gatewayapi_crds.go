package controllers

import (
	"context"
	"errors"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/component"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/gatewayapi"
)

// The Gateway API support of the ingress component: the standard-channel CRDs (embedded from the
// sigs.k8s.io/gateway-api module by internal/gatewayapi) are installed when absent and never
// touched when present, and the GatewayClass of plexus-ingress is applied. Disabling removes the
// GatewayClass the operator made but never a CRD: deleting a CRD deletes every object of its kind,
// so users' Gateways and HTTPRoutes would go with it, and other controllers may use the CRDs too.
// Remove them by hand (kubectl delete -k of the Gateway API release) when nothing needs them.

// The operator creates missing Gateway API CRDs (never updates or deletes them) and manages the
// GatewayClasses it labels.
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;create
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses,verbs=get;list;watch;create;update;patch;delete
// RBAC lets no one grant rights it lacks, so the operator also holds what plexus-ingress's
// ClusterRole grants for the Gateway API (GatewayIngressRules).
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways;httproutes;referencegrants;backendtlspolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses/status;gateways/status;httproutes/status;backendtlspolicies/status,verbs=update;patch
// +kubebuilder:rbac:groups="",resources=namespaces;configmaps,verbs=get;list;watch

// GatewayAPIOutcome is what EnsureGatewayAPI did.
type GatewayAPIOutcome struct {
	// Created are the CRDs it created; Present those already installed (left as they were).
	Created, Present []string
	// Pending is true when a CRD is not established yet: the GatewayClass is applied, and the
	// plexus-ingress Deployment that serves the Gateway API rolled out, on a later reconcile
	// (requeue).
	Pending bool
}

// EnsureGatewayAPI is the install phase: with the Gateway API enabled it creates the missing CRDs
// and, once they are established, applies GatewayAPIObjects; disabled, it deletes the
// GatewayClasses it made. Other GatewayClasses it made (a renamed class) are deleted too.
func EnsureGatewayAPI(ctx context.Context, c client.Client, spec v1.ClusterNetworkSpec) (GatewayAPIOutcome, error) {
	var out GatewayAPIOutcome
	desired := render.GatewayAPIObjects(spec)
	if len(desired) > 0 {
		crds, err := gatewayapi.CRDs()
		if err != nil {
			return out, err
		}
		for _, crd := range crds {
			name := crd.Name
			live := crdObject(name)
			err := c.Get(ctx, client.ObjectKey{Name: name}, live)
			switch {
			case err == nil:
				out.Present = append(out.Present, name)
				// Every CRD, not only GatewayClass's: plexus-ingress looks for all of its kinds
				// once when it starts, and serves Ingress only if one is missing.
				if !crdEstablished(live) {
					out.Pending = true
				}
			case apierrors.IsNotFound(err):
				u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
				if err != nil {
					return out, fmt.Errorf("convert CRD %s: %w", name, err)
				}
				obj := &unstructured.Unstructured{Object: u}
				unstructured.RemoveNestedField(obj.Object, "status")
				unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
				if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
					return out, fmt.Errorf("create CRD %s: %w", name, err)
				}
				out.Created = append(out.Created, name)
				out.Pending = true
			default:
				return out, fmt.Errorf("read CRD %s: %w", name, err)
			}
		}
		if out.Pending {
			return out, nil
		}
		for _, o := range desired {
			if err := apply.Object(ctx, c, render.FieldOwnerGatewayAPI, o); err != nil {
				return out, err
			}
		}
	}
	return out, pruneGatewayClasses(ctx, c, desired)
}

// pruneGatewayClasses deletes the GatewayClasses the operator made that are not in keep. Without
// the CRD there is nothing to delete.
func pruneGatewayClasses(ctx context.Context, c client.Client, keep []client.Object) error {
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion(gwv1.GroupVersion.String())
	list.SetKind("GatewayClassList")
	if err := c.List(ctx, list, component.Selector(render.GatewayAPIComponent)); err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) || errors.Is(err, &meta.NoKindMatchError{}) {
			return nil
		}
		return fmt.Errorf("list GatewayClasses: %w", err)
	}
	kept := map[string]bool{}
	for _, o := range keep {
		kept[o.GetName()] = true
	}
	for i := range list.Items {
		gc := &list.Items[i]
		if kept[gc.GetName()] {
			continue
		}
		if err := c.Delete(ctx, gc); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete GatewayClass %s: %w", gc.GetName(), err)
		}
	}
	return nil
}

// crdObject is an empty CRD to read into. CRDs are read and created as unstructured objects, which
// the manager's client does not cache: the operator holds no informer on every CRD of the cluster
// and needs no scheme entry for them.
func crdObject(name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiextensionsv1.SchemeGroupVersion.String())
	u.SetKind("CustomResourceDefinition")
	u.SetName(name)
	return u
}

// crdEstablished says whether the API server serves the CRD (its Established condition).
func crdEstablished(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == string(apiextensionsv1.Established) && m["status"] == string(apiextensionsv1.ConditionTrue) {
			return true
		}
	}
	return false
}
