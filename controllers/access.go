package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// An operator whose RBAC lacks a kind it watches never syncs that kind's cache: its informer
// retries a forbidden list forever and the manager waits, rendering nothing (an image upgraded
// without its chain's RBAC does this). Before starting a manager, the operator asks the API server
// (SelfSubjectAccessReview) for every list and watch its caches will make, and reports what is
// missing by name instead.

// Access is one permission: a verb on a resource, in a namespace ("" cluster-wide or every
// namespace), limited to one object's name when Name is set.
type Access struct {
	Verb      string
	Resource  schema.GroupResource
	Namespace string
	Name      string
}

func (a Access) String() string {
	s := a.Verb + " " + a.Resource.String()
	if a.Name != "" {
		s += " named " + a.Name
	}
	if a.Namespace != "" {
		s += " in namespace " + a.Namespace
	}
	return s
}

// watchedKinds are the kinds the controller watches cluster-wide besides those the components own
// (see SetupWithManager).
var watchedKinds = []schema.GroupVersionKind{
	v1.GroupVersion.WithKind("ClusterNetwork"),
	v1.GroupVersion.WithKind("NodeNetwork"),
	corev1.SchemeGroupVersion.WithKind("Node"),
}

// CacheAccess returns the list and watch permissions the manager's caches need, as CacheOptions
// limits them: the watched kinds cluster-wide; each owned kind where its components own it, by its
// one name there when there is one (the cache then selects it by metadata.name, which RBAC checks
// against resourceNames). A kind the mapper does not know is left out (its API is not served; the
// manager reports that itself); any other failure to map a kind (the API server unreachable) is
// returned.
func CacheAccess(mapper meta.RESTMapper, namespace string) ([]Access, error) {
	var out []Access
	add := func(gvk schema.GroupVersionKind, ns, name string) error {
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find the resource of %s: %w", gvk.Kind, err)
		}
		for _, verb := range []string{"list", "watch"} {
			out = append(out, Access{Verb: verb, Resource: m.Resource.GroupResource(), Namespace: ns, Name: name})
		}
		return nil
	}
	for _, gvk := range watchedKinds {
		if err := add(gvk, "", ""); err != nil {
			return nil, err
		}
	}
	limits := kindLimits(ManagedComponents(namespace))
	gvks := make([]schema.GroupVersionKind, 0, len(limits))
	for gvk := range limits {
		gvks = append(gvks, gvk)
	}
	slices.SortFunc(gvks, func(a, b schema.GroupVersionKind) int { return strings.Compare(a.String(), b.String()) })
	for _, gvk := range gvks {
		l := limits[gvk]
		namespaces := make([]string, 0, len(l.names))
		for ns := range l.names {
			namespaces = append(namespaces, ns)
		}
		slices.Sort(namespaces)
		for _, ns := range namespaces {
			name := ""
			if names := l.names[ns]; len(names) == 1 {
				for n := range names {
					name = n
				}
			}
			if err := add(gvk, ns, name); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// MissingAccess returns the permissions of want the client's identity does not have.
func MissingAccess(ctx context.Context, kube kubernetes.Interface, want []Access) ([]Access, error) {
	var missing []Access
	for _, a := range want {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.Verb, Group: a.Resource.Group, Resource: a.Resource.Resource, Namespace: a.Namespace, Name: a.Name,
			},
		}}
		res, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("ask the API server whether the operator may %s: %w", a, err)
		}
		if !res.Status.Allowed {
			missing = append(missing, a)
		}
	}
	return missing, nil
}

// MissingAccessError says which permissions are missing and how to get them.
func MissingAccessError(missing []Access) error {
	parts := make([]string, len(missing))
	for i, a := range missing {
		parts[i] = a.String()
	}
	return fmt.Errorf("the operator's RBAC is missing %d permission(s) its caches need, so it would wait forever: it may not %s. "+
		"Apply the RBAC of this operator's release (the Helm chart's templates, or config/rbac with kustomize, or the OLM bundle); "+
		"the operator checks again by itself", len(missing), strings.Join(parts, "; "))
}
