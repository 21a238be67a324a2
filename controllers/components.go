package controllers

import (
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/component"
	"github.com/plexus-net/plexus/controllers/render"
)

// ManagedComponent is one component the operator renders and keeps applied: apply-and-prune's
// view of it (label, field manager, kinds) plus its render. Each becomes a phase of the reconcile,
// its kinds are watched and cached, and its objects are pruned by label.
type ManagedComponent struct {
	apply.Component
	// Render returns every object the component needs for the served spec, in apply order; nothing
	// when the component is disabled, so that everything it owned is pruned. It must be pure.
	Render func(in RenderInput) []client.Object
	// Phase, when set, replaces componentPhase for a component that does more than apply and
	// prune (DNS checks for objects it did not create and observes what it runs).
	Phase func(r *ClusterNetworkReconciler, c ManagedComponent) phase
}

// RenderInput is what a component's render may depend on.
type RenderInput struct {
	// Served is the effective spec being served.
	Served v1.ClusterNetworkSpec
	// Nodes is the number of Nodes in the cluster.
	Nodes int32
}

// ManagedComponents lists the components the operator manages, in the order their phases run.
// A new component is one entry here (and its RBAC markers beside its render call).
func ManagedComponents(namespace string) []ManagedComponent {
	return []ManagedComponent{agentComponent(namespace), dnsComponent(), ingressComponent(namespace)}
}

// The agent's DaemonSet; its status admission policy pair, whose every verb but create is limited
// to its name (the cache lists and watches it with a metadata.name field selector, which RBAC checks
// against resourceNames; prune gets and deletes it by name).
// +kubebuilder:rbac:groups=apps,namespace=plexus-system,resources=daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=create
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,resourceNames=plexus-agent-own-nodenetwork,verbs=get;list;watch;update;patch;delete

func agentComponent(namespace string) ManagedComponent {
	policyNames := []string{render.AgentStatusPolicyName}
	return ManagedComponent{
		Component: apply.Component{
			Name:       component.Agent,
			FieldOwner: apply.FieldOwnerAgent,
			Namespace:  namespace,
			Kinds: []apply.Kind{
				{GVK: admissionv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicy"), Names: policyNames},
				{GVK: admissionv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicyBinding"), Names: policyNames},
				{GVK: appsv1.SchemeGroupVersion.WithKind("DaemonSet"), Namespaced: true},
			},
		},
		Render: func(in RenderInput) []client.Object {
			// The policy first: an agent that starts must find its status writes confined already.
			return append(render.AgentStatusPolicy(namespace), render.Agent(render.AgentConfig{Namespace: namespace, Spec: in.Served})...)
		},
	}
}

// ownedKinds returns one empty object per kind any component may own, for watches and the cache.
func ownedKinds(scheme *runtime.Scheme, comps []ManagedComponent) ([]client.Object, error) {
	seen := map[schema.GroupVersionKind]bool{}
	var out []client.Object
	for _, c := range comps {
		for _, k := range c.Kinds {
			if seen[k.GVK] {
				continue
			}
			seen[k.GVK] = true
			ro, err := scheme.New(k.GVK)
			if err != nil {
				return nil, fmt.Errorf("component %s: %w", c.Name, err)
			}
			o, ok := ro.(client.Object)
			if !ok {
				return nil, fmt.Errorf("component %s: %s is not an object", c.Name, k.GVK)
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// kindLimit is where the components own a kind: namespaced or not, and the names they own per
// namespace ("" for a cluster-scoped kind; no names: every object of the kind there).
type kindLimit struct {
	namespaced bool
	names      map[string]map[string]bool
}

// kindLimits returns, per kind the components own, where they own it.
func kindLimits(comps []ManagedComponent) map[schema.GroupVersionKind]*kindLimit {
	limits := map[schema.GroupVersionKind]*kindLimit{}
	for _, c := range comps {
		for _, k := range c.Kinds {
			l := limits[k.GVK]
			if l == nil {
				l = &kindLimit{namespaced: k.Namespaced, names: map[string]map[string]bool{}}
				limits[k.GVK] = l
			}
			ns := ""
			if k.Namespaced {
				ns = c.Namespace
			}
			if l.names[ns] == nil {
				l.names[ns] = map[string]bool{}
			}
			for _, n := range k.Names {
				l.names[ns][n] = true
			}
		}
	}
	return limits
}

// cacheByObject limits the cache to what the components' RBAC allows: namespaced kinds to the
// namespaces of the components that own them, name-limited kinds to their one name there (two
// components may each own one name of a kind, in different namespaces; see nameSelector for a
// cluster-scoped kind two components own).
func cacheByObject(scheme *runtime.Scheme, comps []ManagedComponent) (map[client.Object]cache.ByObject, error) {
	limits := kindLimits(comps)
	objs, err := ownedKinds(scheme, comps)
	if err != nil {
		return nil, err
	}
	out := map[client.Object]cache.ByObject{}
	for _, o := range objs {
		gvks, _, err := scheme.ObjectKinds(o)
		if err != nil {
			return nil, err
		}
		l := limits[gvks[0]]
		by := cache.ByObject{}
		for ns, names := range l.names {
			field, label := nameSelector(names)
			if !l.namespaced {
				by.Field, by.Label = field, label
				continue
			}
			if by.Namespaces == nil {
				by.Namespaces = map[string]cache.Config{}
			}
			by.Namespaces[ns] = cache.Config{FieldSelector: field, LabelSelector: label}
		}
		out[o] = by
	}
	return out, nil
}

// nameSelector selects the one name of a name-limited kind; nil when the kind is not limited.
// Several names cannot be one field selector: the cache then selects the objects Plexus manages
// by label, which needs RBAC to list and watch the kind without a name limit (granted for the
// RBAC kinds two components own, in ingress_component.go).
func nameSelector(names map[string]bool) (fields.Selector, labels.Selector) {
	switch len(names) {
	case 0:
		return nil, nil
	case 1:
		for n := range names {
			return fields.OneTermEqualSelector("metadata.name", n), nil
		}
	}
	return nil, labels.SelectorFromSet(labels.Set{component.LabelManagedBy: component.ManagedBy})
}
