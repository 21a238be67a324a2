// Package controllers holds the operator's reconcilers. They are thin: they gather inputs, call the
// pure functions of netconfig and ipam, write with server-side apply and patch status in a defer.
package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
)

// ControllerName names the ClusterNetwork controller in logs, metrics and events.
const ControllerName = "clusternetwork"

// ClusterNetworkReconciler reconciles the ClusterNetwork "default": it validates and defaults the
// spec, allocates node pod CIDRs into NodeNetworks, and rolls node status up into conditions.
type ClusterNetworkReconciler struct {
	// Client reads from the cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server directly. IPAM lists NodeNetworks through it so that an
	// allocation made a moment ago is never missed by a cache that has not caught up.
	APIReader client.Reader
	// Recorder emits events for allocations, releases and refused changes.
	Recorder events.EventRecorder
	// Images fill spec.images fields the user left empty.
	Images netconfig.Images
	// Namespace is where the operator runs and renders the agent.
	Namespace string

	foreignDNS foreignDNSNote
}

// +kubebuilder:rbac:groups=plexus.dev,resources=clusternetworks,verbs=get;list;watch
// +kubebuilder:rbac:groups=plexus.dev,resources=clusternetworks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=plexus.dev,resources=nodenetworks,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs one pass: fetch → validate → phases (IPAM, then every managed component) →
// roll-up, with status written in a defer.
func (r *ClusterNetworkReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	start := time.Now()
	defer func() { observeReconcile(start, retErr) }()

	cn := &v1.ClusterNetwork{}
	if err := r.Client.Get(ctx, req.NamespacedName, cn); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := cn.DeepCopy()
	defer func() {
		if err := r.Client.Status().Patch(ctx, cn, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
			retErr = kerrors.NewAggregate([]error{retErr, fmt.Errorf("patch status of ClusterNetwork %s: %w", cn.Name, err)})
		}
	}()

	if cn.Name != v1.DefaultClusterNetworkName {
		setNotDefaultConditions(cn)
		return ctrl.Result{}, nil
	}

	in, err := r.gather(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	decision := decideConfig(cn, r.Images, in)
	r.reportRefusal(cn, decision)
	applyDecision(cn, decision)

	res := phaseResult{}
	var phaseErr error
	if decision.serve != nil {
		phaseErr = runPhases(ctx, r.phases(), &phaseScope{cn: cn, served: *decision.serve, in: in, res: &res})
	}
	setStatus(cn, decision, res, in)
	if phaseErr != nil {
		return ctrl.Result{}, phaseErr
	}
	cn.Status.ObservedGeneration = cn.Generation
	return ctrl.Result{RequeueAfter: res.requeueAfter}, nil
}

// SetupWithManager registers the controller: ClusterNetworks, and Node and NodeNetwork changes
// mapped onto the default ClusterNetwork.
func (r *ClusterNetworkReconciler) SetupWithManager(mgr ctrl.Manager) error {
	toDefault := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: v1.DefaultClusterNetworkName}}}
	})
	owned, err := ownedKinds(mgr.GetScheme(), ManagedComponents(r.Namespace))
	if err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1.ClusterNetwork{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Node{}, toDefault, builder.WithPredicates(nodeChanged())).
		Watches(&v1.NodeNetwork{}, toDefault)
	for _, o := range owned {
		b = b.Owns(o)
	}
	// An object under a DNS name that Plexus did not create carries no owner reference; its
	// appearing, going or being handed over must still reconcile.
	foreign, err := ownedKinds(mgr.GetScheme(), []ManagedComponent{dnsComponent()})
	if err != nil {
		return err
	}
	for _, o := range foreign {
		b = b.Watches(o, toDefault)
	}
	return b.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}

// nodeChanged passes Node events that matter to IPAM and roll-up: creation, deletion, address and
// pod CIDR changes. Heartbeat-only status updates are dropped.
func nodeChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*corev1.Node), e.ObjectNew.(*corev1.Node)
			return !slices.Equal(o.Status.Addresses, n.Status.Addresses) || !slices.Equal(o.Spec.PodCIDRs, n.Spec.PodCIDRs)
		},
	}
}

// Options configure the operator's controllers.
type Options struct {
	// Images fill spec.images fields the user left empty.
	Images netconfig.Images
	// Namespace is where the operator runs and renders namespaced objects (the agent DaemonSet).
	Namespace string
}

// DefaultNamespace is the operator's namespace when none is given.
const DefaultNamespace = "plexus-system"

// CacheOptions limits the manager's cache of the objects the managed components own to what the
// operator's RBAC lets it read: namespaced kinds to the operator's namespace, name-limited kinds
// (the agent's admission policy pair) to their name.
func CacheOptions(namespace string) cache.Options {
	byObject, err := cacheByObject(NewScheme(), ManagedComponents(namespace))
	if err != nil {
		// The component list is fixed at build time; TestCacheOptions proves it is consistent.
		panic(fmt.Sprintf("cache options of the managed components: %v", err))
	}
	return cache.Options{ByObject: byObject}
}

// Setup adds every operator controller to the manager. The manager's cache must be built with
// CacheOptions(opts.Namespace).
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	r := &ClusterNetworkReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("plexus-operator"),
		Images:    opts.Images,
		Namespace: opts.Namespace,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the %s controller: %w", ControllerName, err)
	}
	return nil
}
