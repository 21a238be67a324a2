package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/render"
)

// +kubebuilder:rbac:groups=apps,namespace=plexus-system,resources=daemonsets,verbs=get;list;watch;create;update;patch;delete
// The agent status policy: every verb but create is limited to its name (the cache lists and
// watches it with a metadata.name field selector, which RBAC checks against resourceNames).
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=create
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,resourceNames=plexus-agent-own-nodenetwork,verbs=get;list;watch;update;patch

// reconcileAgent applies the agent's status policy and the agent DaemonSet rendered from the served
// configuration, and prunes any agent DaemonSet a previous render made that this one does not.
func (r *ClusterNetworkReconciler) reconcileAgent(ctx context.Context, cn *v1.ClusterNetwork, served v1.ClusterNetworkSpec) error {
	objs := render.Agent(render.AgentConfig{Namespace: r.Namespace, Spec: served})
	render.Annotate(objs, cn.Status.AppliedGeneration)
	keep := map[string]bool{}
	var errs []error
	// The policy first: an agent that starts must find its status writes confined already.
	for _, o := range append(render.AgentStatusPolicy(r.Namespace), objs...) {
		if err := controllerutil.SetControllerReference(cn, o, r.Client.Scheme()); err != nil {
			return fmt.Errorf("own %s: %w", o.GetName(), err)
		}
		if err := apply.Object(ctx, r.Client, apply.FieldOwnerAgent, o); err != nil {
			errs = append(errs, err)
		}
		keep[o.GetName()] = true
	}
	var existing appsv1.DaemonSetList
	if err := r.Client.List(ctx, &existing, client.InNamespace(r.Namespace), client.MatchingLabels{
		render.LabelComponent: render.ComponentAgent, render.LabelManagedBy: render.ManagedBy,
	}); err != nil {
		return kerrors.NewAggregate(append(errs, fmt.Errorf("list agent DaemonSets: %w", err)))
	}
	for i := range existing.Items {
		ds := &existing.Items[i]
		if keep[ds.Name] {
			continue
		}
		if err := r.Client.Delete(ctx, ds); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("prune DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err))
		}
	}
	return kerrors.NewAggregate(errs)
}
