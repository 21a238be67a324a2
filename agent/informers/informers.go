// Package informers is the agent's source of API objects: the informer caches (trimmed by
// package cachetrim), the agent.Source that snapshots them for a sync, and the event handlers
// that mark the agent dirty (and feed the service proxy) on every change that matters.
package informers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/agent"
	"github.com/plexus-net/plexus/agent/cachetrim"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// NewScheme returns the scheme with the types the agent reads.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1.AddToScheme(s))
	return s
}

// CacheOptions are the informer cache options of the agent: Nodes, Services, EndpointSlices,
// Pods, Namespaces and NetworkPolicies are trimmed to what the agent reads (package cachetrim),
// because every agent caches all of them and they are most of its memory in a large cluster.
// Whatever reads these objects from the agent's cache sees only the trimmed fields.
func CacheOptions(scheme *runtime.Scheme) cache.Options {
	return cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&corev1.Node{}:                {Transform: cachetrim.Node},
		&corev1.Service{}:             {Transform: cachetrim.Service},
		&discoveryv1.EndpointSlice{}:  {Transform: cachetrim.EndpointSlice},
		&corev1.Pod{}:                 {Transform: cachetrim.Pod},
		&corev1.Namespace{}:           {Transform: cachetrim.Namespace},
		&networkingv1.NetworkPolicy{}: {Transform: cachetrim.NetworkPolicy},
	}}
}

// Source is the agent.Source backed by controller-runtime informer caches.
type Source struct{ Cache cache.Cache }

var _ agent.Source = Source{}

// Inputs implements agent.Source from the caches.
func (s Source) Inputs(ctx context.Context) (agent.Inputs, error) {
	var in agent.Inputs
	cn := &v1.ClusterNetwork{}
	switch err := s.Cache.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return agent.Inputs{}, fmt.Errorf("get ClusterNetwork %s: %w", v1.DefaultClusterNetworkName, err)
	default:
		in.ClusterNetwork = cn
	}
	var nns v1.NodeNetworkList
	if err := s.Cache.List(ctx, &nns); err != nil {
		return agent.Inputs{}, fmt.Errorf("list NodeNetworks: %w", err)
	}
	in.NodeNetworks = nns.Items
	var nodes corev1.NodeList
	if err := s.Cache.List(ctx, &nodes); err != nil {
		return agent.Inputs{}, fmt.Errorf("list Nodes: %w", err)
	}
	in.Nodes = nodes.Items
	if err := s.policyInputs(ctx, &in); err != nil {
		return agent.Inputs{}, err
	}
	return in, nil
}

// policyInputs lists the NetworkPolicy engine's objects into in. They are listed without a
// copy (every Pod of the cluster, on every sync): the policy compiler only reads them, and cached
// objects are read-only to everyone.
func (s Source) policyInputs(ctx context.Context, in *agent.Inputs) error {
	var nps networkingv1.NetworkPolicyList
	if err := s.Cache.List(ctx, &nps, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list NetworkPolicies: %w", err)
	}
	in.NetworkPolicies = pointers(nps.Items)
	var pods corev1.PodList
	if err := s.Cache.List(ctx, &pods, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list Pods: %w", err)
	}
	in.Pods = pointers(pods.Items)
	var nss corev1.NamespaceList
	if err := s.Cache.List(ctx, &nss, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list Namespaces: %w", err)
	}
	in.Namespaces = pointers(nss.Items)
	return nil
}

// pointers returns a pointer to each item.
func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// Watch registers the handlers that call dirty on every change a sync depends on: the
// ClusterNetwork, NodeNetworks and Nodes, every NetworkPolicy, Pod and Namespace, and every
// Service and EndpointSlice, which it also feeds to feed. Changes that cannot alter the data plane (Node heartbeats, the operator's
// roll-up, other nodes' status, informer resyncs) are dropped here, so they cost no sync.
//
// It returns what says when the Service and EndpointSlice handlers have been given every object
// of the informers' initial lists: the first sync must not run before, or it would program (and,
// after a restart, rebuild the table for) only the Services delivered so far. An informer's own
// HasSynced says only that its store has them.
func Watch(ctx context.Context, c cache.Cache, feed *manager.Feed, dirty func()) ([]toolscache.InformerSynced, error) {
	if _, err := register(ctx, c, &v1.ClusterNetwork{}, handler(dirty, on[*v1.ClusterNetwork]{
		matters: func(o, n *v1.ClusterNetwork) bool {
			return o.Status.AppliedGeneration != n.Status.AppliedGeneration ||
				!equality.Semantic.DeepEqual(o.Status.Effective, n.Status.Effective)
		},
	})); err != nil {
		return nil, err
	}
	if _, err := register(ctx, c, &v1.NodeNetwork{}, handler(dirty, on[*v1.NodeNetwork]{
		// Status is the agents' own output: a change of it needs no sync.
		matters: func(o, n *v1.NodeNetwork) bool {
			return o.Generation != n.Generation || !equality.Semantic.DeepEqual(o.Spec, n.Spec)
		},
	})); err != nil {
		return nil, err
	}
	if _, err := register(ctx, c, &corev1.Node{}, handler(dirty, on[*corev1.Node]{
		matters: func(o, n *corev1.Node) bool {
			return o.Annotations[agent.NodeIPAnnotation] != n.Annotations[agent.NodeIPAnnotation] ||
				o.Labels[agent.ZoneLabel] != n.Labels[agent.ZoneLabel] ||
				!equality.Semantic.DeepEqual(o.Status.Addresses, n.Status.Addresses)
		},
	})); err != nil {
		return nil, err
	}
	if err := watchPolicyInputs(ctx, c, dirty); err != nil {
		return nil, err
	}
	svcReg, err := register(ctx, c, &corev1.Service{}, handler(dirty, on[*corev1.Service]{
		set:    feed.SetService,
		remove: func(s *corev1.Service) { feed.DeleteService(s.Namespace, s.Name) },
	}))
	if err != nil {
		return nil, err
	}
	sliceReg, err := register(ctx, c, &discoveryv1.EndpointSlice{}, handler(dirty, on[*discoveryv1.EndpointSlice]{
		set: feed.SetSlice, remove: feed.DeleteSlice,
	}))
	if err != nil {
		return nil, err
	}
	return []toolscache.InformerSynced{svcReg.HasSynced, sliceReg.HasSynced}, nil
}

// register adds h to the informer of obj's type.
func register(ctx context.Context, c cache.Cache, obj client.Object, h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("informer for %T: %w", obj, err)
	}
	reg, err := inf.AddEventHandler(h)
	if err != nil {
		return nil, fmt.Errorf("watch %T: %w", obj, err)
	}
	return reg, nil
}

// on says what a handler does with the objects of type T.
type on[T client.Object] struct {
	// matters says whether an update changes anything a sync reads; nil: every update with a
	// new resourceVersion does (an informer resync repeats the same one).
	matters func(old, cur T) bool
	// set feeds an added or changed object to a consumer, remove a deleted one; nil: none.
	set, remove func(T)
}

// handler is the one event handler of the agent's informers: it calls o.set (on add and on an
// update that matters) or o.remove (on delete) and then dirty. Objects of another type than T
// are ignored, but for an update, which marks dirty to be safe.
func handler[T client.Object](dirty func(), o on[T]) toolscache.ResourceEventHandlerFuncs {
	matters := o.matters
	if matters == nil {
		matters = func(old, cur T) bool { return old.GetResourceVersion() != cur.GetResourceVersion() }
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if t, ok := obj.(T); ok {
				if o.set != nil {
					o.set(t)
				}
				dirty()
			}
		},
		UpdateFunc: func(old, cur any) {
			ot, ok1 := old.(T)
			ct, ok2 := cur.(T)
			switch {
			case !ok1 || !ok2:
				dirty()
			case matters(ot, ct):
				if o.set != nil {
					o.set(ct)
				}
				dirty()
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if t, ok := obj.(T); ok {
				if o.remove != nil {
					o.remove(t)
				}
				dirty()
			}
		},
	}
}

// watchPolicyInputs registers the handlers of the NetworkPolicy engine's objects. Their caches
// hold trimmed objects (cachetrim), so an update matters when a trimmed field changed: a Pod's
// status updates (conditions, container states) change its resourceVersion but nothing the
// model reads, and cost no sync.
func watchPolicyInputs(ctx context.Context, c cache.Cache, dirty func()) error {
	if _, err := register(ctx, c, &networkingv1.NetworkPolicy{}, handler(dirty, on[*networkingv1.NetworkPolicy]{
		matters: func(o, n *networkingv1.NetworkPolicy) bool { return !equality.Semantic.DeepEqual(o.Spec, n.Spec) },
	})); err != nil {
		return err
	}
	if _, err := register(ctx, c, &corev1.Pod{}, handler(dirty, on[*corev1.Pod]{matters: podMatters})); err != nil {
		return err
	}
	_, err := register(ctx, c, &corev1.Namespace{}, handler(dirty, on[*corev1.Namespace]{
		matters: func(o, n *corev1.Namespace) bool { return !equality.Semantic.DeepEqual(o.Labels, n.Labels) },
	}))
	return err
}

// podMatters says whether a Pod update changes what the NetworkPolicy model reads.
func podMatters(o, n *corev1.Pod) bool {
	return !equality.Semantic.DeepEqual(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Spec, n.Spec) ||
		!equality.Semantic.DeepEqual(o.Status, n.Status)
}
