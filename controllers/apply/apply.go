// Package apply writes objects with server-side apply, the only way Plexus writes what it renders or
// allocates. Each sub-controller uses its own field manager, so `kubectl get -o yaml
// --show-managed-fields` tells which part of Plexus owns which field.
package apply

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Field managers of the operator's sub-controllers.
const (
	FieldOwnerIPAM  = "plexus/ipam"
	FieldOwnerNodes = "plexus/node-podcidrs"
	FieldOwnerAgent = "plexus/agent"
	FieldOwnerDNS   = "plexus/dns"
	// FieldOwnerIngress owns the ingress controller's objects.
	FieldOwnerIngress = "plexus/ingress"
)

// Object applies obj (a typed object with TypeMeta set) as fieldOwner, taking ownership of the fields
// it sets. Status and server-set metadata are dropped: status is written through its subresource.
func Object(ctx context.Context, c client.Client, fieldOwner string, obj client.Object) error {
	u, err := toApplyConfiguration(obj)
	if err != nil {
		return err
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

func toApplyConfiguration(obj client.Object) (*unstructured.Unstructured, error) {
	if obj.GetObjectKind().GroupVersionKind().Kind == "" {
		return nil, fmt.Errorf("apply %s: TypeMeta (apiVersion, kind) must be set", obj.GetName())
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %s for apply: %w", obj.GetName(), err)
	}
	delete(m, "status")
	if meta, ok := m["metadata"].(map[string]any); ok {
		for _, k := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"} {
			delete(meta, k)
		}
	}
	return &unstructured.Unstructured{Object: m}, nil
}
