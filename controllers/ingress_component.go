package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/component"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/ingress/translate"
)

// The ingress controller's objects, in the operator's namespace: every verb but create limited to
// the name plexus-ingress (RBAC cannot limit create by name). The IngressClass is named by the
// user (ingress.ingressClassName), so prune lists IngressClasses by label. RBAC lets no one grant
// rights it lacks, so the operator also holds what plexus-ingress' ClusterRole and Role grant: it
// lists and watches Secrets and writes Ingress status, though it does neither itself.
// +kubebuilder:rbac:groups="",namespace=plexus-system,resources=serviceaccounts;services,verbs=create
// +kubebuilder:rbac:groups="",namespace=plexus-system,resources=serviceaccounts;services,resourceNames=plexus-ingress,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=apps,namespace=plexus-system,resources=deployments,verbs=create
// +kubebuilder:rbac:groups=apps,namespace=plexus-system,resources=deployments,resourceNames=plexus-ingress,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,namespace=plexus-system,resources=roles;rolebindings,verbs=create
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,namespace=plexus-system,resources=roles;rolebindings,resourceNames=plexus-ingress,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,resourceNames=plexus-ingress,verbs=get;update;patch;delete
// ClusterRoles and their bindings are owned by two components (cluster DNS and ingress), one name
// each: the cache cannot select two names, so it lists them by label and RBAC lets it read all.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,verbs=list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingressclasses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses/status,verbs=update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=plexus-system,resources=leases,verbs=get;list;watch;create;update;patch
// With the Gateway API on, plexus-ingress's Role lets it write the per-Gateway Services in this
// namespace (any name: they are named after the Gateways), so the operator holds that too.
// +kubebuilder:rbac:groups="",namespace=plexus-system,resources=services,verbs=update;patch;delete

// ingressComponent is the ingress controller: plexus-ingress in the operator's namespace, its
// Service and RBAC, and its IngressClass.
func ingressComponent(namespace string) ManagedComponent {
	named := []string{render.IngressName}
	return ManagedComponent{
		Component: apply.Component{
			Name:       component.Ingress,
			FieldOwner: apply.FieldOwnerIngress,
			Namespace:  namespace,
			Kinds: []apply.Kind{
				{GVK: corev1.SchemeGroupVersion.WithKind("ServiceAccount"), Namespaced: true, Names: named},
				{GVK: rbacv1.SchemeGroupVersion.WithKind("ClusterRole"), Names: named},
				{GVK: rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding"), Names: named},
				{GVK: rbacv1.SchemeGroupVersion.WithKind("Role"), Namespaced: true, Names: named},
				{GVK: rbacv1.SchemeGroupVersion.WithKind("RoleBinding"), Namespaced: true, Names: named},
				{GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Namespaced: true, Names: named},
				{GVK: corev1.SchemeGroupVersion.WithKind("Service"), Namespaced: true, Names: named},
				{GVK: networkingv1.SchemeGroupVersion.WithKind("IngressClass")},
			},
		},
		Render: func(in RenderInput) []client.Object {
			return render.Ingress(render.IngressConfig{Namespace: namespace, Spec: in.Served, Nodes: in.Nodes})
		},
		Phase: ingressPhase,
	}
}

// gatewayCRDWait is how long the operator waits before it looks again at Gateway API CRDs it
// created and the API server does not serve yet.
const gatewayCRDWait = 2 * time.Second

// ingressPhase applies and prunes the ingress controller, then records what runs for
// IngressAvailable.
func ingressPhase(r *ClusterNetworkReconciler, c ManagedComponent) phase {
	return phase{name: c.Name, run: func(ctx context.Context, s *phaseScope) error {
		// The Gateway API runs on every reconcile, enabled or not, so that its GatewayClass goes
		// when it is turned off. It runs before the Deployment is applied: plexus-ingress looks
		// for the CRDs once, when it starts, so a Deployment with -gateway-api must not roll out
		// before every CRD is served (seen on the lab: pods started 6 s before the CRDs, and
		// served Ingress only until restarted). While CRDs are pending the Deployment is left as
		// it is and the phase looks again shortly.
		gw, gwErr := EnsureGatewayAPI(ctx, r.Client, s.served)
		// With ingress off altogether the garbage collector removes them (owner: the
		// plexus-ingress Service), so only a running plexus-ingress without the Gateway API
		// costs this list.
		if gwErr == nil && render.IngressEnabled(s.served) && !render.GatewayAPIEnabled(s.served) {
			gwErr = pruneGatewayServices(ctx, r.APIReader, r.Client, c.Namespace)
		}
		hold := gwErr == nil && gw.Pending
		if hold {
			s.res.requeueAfter = gatewayCRDWait
		}
		objs := c.Render(s.renderInput())
		render.Annotate(objs, s.cn.Status.AppliedGeneration)
		var applyErr error
		if !hold {
			applyErr = apply.Reconcile(ctx, r.Client, c.Component, s.cn, objs)
		}
		obs, err := observeIngress(ctx, r.APIReader, objs)
		s.res.ingress = &obs
		if applyErr != nil {
			return applyErr
		}
		if gwErr != nil {
			return fmt.Errorf("gateway API: %w", gwErr)
		}
		if err != nil {
			return fmt.Errorf("observe the ingress controller: %w", err)
		}
		return nil
	}}
}

// pruneGatewayServices deletes the per-Gateway Services plexus-ingress made in ns (labelled
// translate.GatewayServiceLabel). With the Gateway API off, plexus-ingress neither manages nor
// may write them any more, so the operator removes them; with ingress off altogether the garbage
// collector does too (they are owned by the plexus-ingress Service). Listed with reader, the API
// server: the operator's cache holds only the Services it renders.
func pruneGatewayServices(ctx context.Context, reader client.Reader, c client.Client, ns string) error {
	var list corev1.ServiceList
	if err := reader.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{translate.GatewayServiceLabel: "true"}); err != nil {
		return fmt.Errorf("list the Gateway Services in %s: %w", ns, err)
	}
	for i := range list.Items {
		if err := c.Delete(ctx, &list.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete the Gateway Service %s/%s: %w", ns, list.Items[i].Name, err)
		}
	}
	return nil
}
