package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// GatewayStatusReconciler gives every served Gateway its Service (gateway_service.go) and writes
// the Gateway API statuses: the conditions of the served GatewayClasses, the served Gateways'
// status (addresses from their own Service, conditions, listeners) and this controller's entries
// of the HTTPRoutes' status.parents. It runs on the elected leader only and writes an object only
// when it differs.
type GatewayStatusReconciler struct {
	// Client reads from the cache and writes to the API server.
	Client client.Client
	// Options are the translation's settings, GatewayControllerName set.
	Options translate.Options
	// PublishService is the controller's Service: the per-Gateway Services copy its type and
	// selector and live in its namespace.
	PublishService types.NamespacedName
	// BundleVersion is the installed CRDs' release ("" when unknown).
	BundleVersion string
	// BackendTLS says BackendTLSPolicies are served: their statuses are written too.
	BackendTLS bool
	// Now is the clock of condition transition times (time.Now when nil).
	Now func() metav1.Time
}

// Reconcile implements reconcile.Reconciler.
func (r *GatewayStatusReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	in, err := Gather(ctx, r.Client)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := GatherGateway(ctx, r.Client, &in, r.BackendTLS); err != nil {
		return reconcile.Result{}, err
	}
	res := translate.Translate(in, r.Options)
	// The Services first; a failure there still lets the statuses say where things stand.
	svcErr := r.reconcileGatewayServices(ctx, &in, res.Gateway)
	now := metav1.Now()
	if r.Now != nil {
		now = r.Now()
	}
	services := map[types.NamespacedName]*corev1.Service{}
	for i := range in.Services {
		s := &in.Services[i]
		services[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	for _, c := range res.Gateway.Classes {
		if err := r.writeClass(ctx, c, now); err != nil {
			return reconcile.Result{}, err
		}
	}
	for _, g := range res.Gateway.Gateways {
		addrs := translate.GatewayAddressesOf(services[types.NamespacedName{Namespace: r.PublishService.Namespace, Name: g.Service}])
		if err := r.writeGateway(ctx, g, addrs, now); err != nil {
			return reconcile.Result{}, err
		}
	}
	ours := map[types.NamespacedName]translate.RouteResult{}
	for _, rr := range res.Gateway.Routes {
		ours[rr.Key] = rr
	}
	// Every route: one that no longer names a served Gateway loses this controller's entries.
	for i := range in.HTTPRoutes {
		route := &in.HTTPRoutes[i]
		rr := ours[types.NamespacedName{Namespace: route.Namespace, Name: route.Name}]
		rr.Generation = route.Generation
		if err := r.writeRoute(ctx, route, rr, now); err != nil {
			return reconcile.Result{}, err
		}
	}
	policies := map[types.NamespacedName]translate.BackendTLSPolicyResult{}
	for _, p := range res.Gateway.BackendTLSPolicies {
		policies[p.Key] = p
	}
	for i := range in.BackendTLSPolicies {
		p := &in.BackendTLSPolicies[i]
		if err := r.writeBackendTLSPolicy(ctx, p, policies[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}], now); err != nil {
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{}, svcErr
}

// writeBackendTLSPolicy writes this controller's ancestors of a BackendTLSPolicy (none, removing
// earlier ones, when no served Gateway's route uses a Service it targets).
func (r *GatewayStatusReconciler) writeBackendTLSPolicy(ctx context.Context, p *gwv1.BackendTLSPolicy, pr translate.BackendTLSPolicyResult, now metav1.Time) error {
	name := r.Options.GatewayControllerName
	pr.Generation = p.Generation
	merged, changed := translate.MergePolicyAncestors(p.Status.Ancestors, translate.BackendTLSPolicyAncestors(pr, name), name, now)
	if !changed {
		return nil
	}
	obj := p.DeepCopy()
	obj.Status.Ancestors = merged
	if err := r.Client.Status().Update(ctx, obj); err != nil {
		return ignoreGone(fmt.Errorf("write the status of BackendTLSPolicy %s/%s: %w", p.Namespace, p.Name, err))
	}
	return nil
}

func (r *GatewayStatusReconciler) writeClass(ctx context.Context, c translate.ClassResult, now metav1.Time) error {
	obj := &gwv1.GatewayClass{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: c.Name}, obj); err != nil {
		return ignoreGone(err)
	}
	c.Generation = obj.Generation
	conds := translate.GatewayClassConditions(c, r.BundleVersion)
	merged := translate.MergeConditions(obj.Status.Conditions, conds, now)
	var supported []gwv1.SupportedFeature
	if conds[0].Status == metav1.ConditionTrue {
		supported = translate.SupportedFeatures()
	}
	if equality.Semantic.DeepEqual(merged, obj.Status.Conditions) && equality.Semantic.DeepEqual(supported, obj.Status.SupportedFeatures) {
		return nil
	}
	obj.Status.Conditions, obj.Status.SupportedFeatures = merged, supported
	if err := r.Client.Status().Update(ctx, obj); err != nil {
		return ignoreGone(fmt.Errorf("write the status of GatewayClass %s: %w", c.Name, err))
	}
	return nil
}

func (r *GatewayStatusReconciler) writeGateway(ctx context.Context, g translate.GatewayResult, addrs []gwv1.GatewayStatusAddress, now metav1.Time) error {
	obj := &gwv1.Gateway{}
	if err := r.Client.Get(ctx, g.Key, obj); err != nil {
		return ignoreGone(err)
	}
	merged, changed := translate.MergeGatewayStatus(obj.Status, translate.GatewayStatus(g, addrs), now)
	if !changed {
		return nil
	}
	obj.Status = merged
	if err := r.Client.Status().Update(ctx, obj); err != nil {
		return ignoreGone(fmt.Errorf("write the status of Gateway %s: %w", g.Key, err))
	}
	return nil
}

func (r *GatewayStatusReconciler) writeRoute(ctx context.Context, route *gwv1.HTTPRoute, rr translate.RouteResult, now metav1.Time) error {
	name := r.Options.GatewayControllerName
	merged, changed := translate.MergeRouteParents(route.Status.Parents, translate.RouteParentStatuses(rr, name), name, now)
	if !changed {
		return nil
	}
	obj := route.DeepCopy()
	obj.Status.Parents = merged
	if err := r.Client.Status().Update(ctx, obj); err != nil {
		return ignoreGone(fmt.Errorf("write the status of HTTPRoute %s/%s: %w", route.Namespace, route.Name, err))
	}
	return nil
}
