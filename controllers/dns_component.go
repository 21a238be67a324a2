package controllers

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/component"
	"github.com/plexus-net/plexus/controllers/render"
)

// The cluster DNS objects: every verb but create limited to their names (RBAC cannot limit create
// by name), so the operator can change no other Service, ConfigMap or Deployment. RBAC lets no one
// grant rights it lacks, so the operator also holds what CoreDNS' ClusterRole grants.
// +kubebuilder:rbac:groups="",resources=services;configmaps;serviceaccounts,verbs=create
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=create
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=create
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,verbs=create
// +kubebuilder:rbac:groups="",resources=services,resourceNames=kube-dns,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps;serviceaccounts,resourceNames=coredns,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,resourceNames=coredns,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,resourceNames=coredns,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,resourceNames=plexus-coredns,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;namespaces;pods,verbs=list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch

// dnsComponent is the cluster DNS: CoreDNS and the kube-dns Service, in kube-system.
func dnsComponent() ManagedComponent {
	named := func(n string) []string { return []string{n} }
	return ManagedComponent{
		Component: apply.Component{
			Name:       component.DNS,
			FieldOwner: apply.FieldOwnerDNS,
			Namespace:  render.DNSNamespace,
			Kinds: []apply.Kind{
				{GVK: corev1.SchemeGroupVersion.WithKind("ServiceAccount"), Namespaced: true, Names: named(render.DNSServiceAccount)},
				{GVK: rbacv1.SchemeGroupVersion.WithKind("ClusterRole"), Names: named(render.DNSClusterRole)},
				{GVK: rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding"), Names: named(render.DNSClusterRole)},
				{GVK: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Namespaced: true, Names: named(render.DNSConfigMapName)},
				{GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Namespaced: true, Names: named(render.DNSDeploymentName)},
				{GVK: policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"), Namespaced: true, Names: named(render.DNSDeploymentName)},
				{GVK: corev1.SchemeGroupVersion.WithKind("Service"), Namespaced: true, Names: named(render.DNSServiceName)},
			},
		},
		Render: func(in RenderInput) []client.Object {
			return render.DNS(render.DNSConfig{Namespace: render.DNSNamespace, Spec: in.Served, Nodes: in.Nodes})
		},
		Phase: dnsPhase,
	}
}

// dnsPhase applies the cluster DNS unless an object under one of its names is not Plexus' and was
// not handed over (v1.AdoptAnnotation): then it changes nothing, not even pruning, and says so in
// DNSAvailable and a warning event. It records what it saw for DNSAvailable either way.
func dnsPhase(r *ClusterNetworkReconciler, c ManagedComponent) phase {
	return phase{name: c.Name, run: func(ctx context.Context, s *phaseScope) error {
		objs := c.Render(s.renderInput())
		render.Annotate(objs, s.cn.Status.AppliedGeneration)
		live, err := liveDNSObjects(ctx, r.APIReader, objs)
		if err != nil {
			return err
		}
		if foreign := foreignDNSObjects(objs, live); len(foreign) > 0 {
			s.res.dns = &dnsObservation{Enabled: true, Foreign: foreign}
			prev := meta.FindStatusCondition(s.cn.Status.Conditions, v1.ConditionDNSAvailable)
			msg := strings.Join(foreign, "; ")
			if foreignDNSEventDue(prev, dnsAvailableCondition(s.cn.Generation, *s.res.dns)) && r.foreignDNS.first(string(s.cn.UID)+"\x00"+msg) {
				r.Recorder.Eventf(s.cn, nil, corev1.EventTypeWarning, v1.ReasonDNSForeignObject, dnsEventAction, "%s", msg)
			}
			return nil
		}
		r.foreignDNS.first("")
		before, err := readDNSLiveState(ctx, r.APIReader)
		if err != nil {
			return err
		}
		applyErr := apply.Reconcile(ctx, r.Client, c.Component, s.cn, objs)
		if after, err := readDNSLiveState(ctx, r.APIReader); err != nil {
			// Only the events are lost; observeDNS below reads the same objects and reports.
			ctrl.LoggerFrom(ctx).V(2).Info("no DNS rollout events this time", "error", err.Error())
		} else {
			for _, e := range dnsRolloutEvents(before, after, s.cn.Status.AppliedGeneration) {
				r.Recorder.Eventf(s.cn, nil, e.Type, e.Reason, dnsEventAction, "%s", e.Message)
			}
		}
		obs, err := observeDNS(ctx, r.APIReader, objs)
		s.res.dns = &obs
		if applyErr != nil {
			return applyErr
		}
		if err != nil {
			return fmt.Errorf("observe cluster DNS: %w", err)
		}
		return nil
	}}
}
