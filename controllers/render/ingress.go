package render

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/component"
)

// Names of the ingress controller's objects. Every object but the IngressClass (whose name the
// user picks in ingress.ingressClassName) is called IngressName, so the operator's RBAC can limit
// itself to that one name.
const (
	IngressName = "plexus-ingress"
	// IngressControllerName is the spec.controller of the IngressClass plexus-ingress serves.
	IngressControllerName = "plexus.dev/ingress"
)

// Ports of plexus-ingress, inside its pods. The proxy listens above 1024 so it needs no
// capability; the Service maps 80 and 443 onto them.
const (
	IngressHTTPPort    = 8080
	IngressHTTPSPort   = 8443
	IngressMetricsPort = 10254
	IngressHealthPort  = 10256
	// IngressServiceHTTPPort and IngressServiceHTTPSPort are the Service's ports; plain HTTP to a
	// TLS host is redirected to IngressServiceHTTPSPort.
	IngressServiceHTTPPort  = 80
	IngressServiceHTTPSPort = 443
)

// IngressConfig is everything the ingress controller's objects depend on.
type IngressConfig struct {
	// Namespace plexus-ingress runs in (the operator's).
	Namespace string
	// Spec is the served (effective) ClusterNetwork spec.
	Spec v1.ClusterNetworkSpec
	// Nodes is the number of nodes in the cluster; it decides whether anti-affinity is required.
	Nodes int32
}

// IngressLabels are the labels of every ingress controller object.
func IngressLabels() map[string]string { return component.Labels(component.Ingress) }

// ingressSelector picks the plexus-ingress pods.
func ingressSelector() map[string]string {
	return map[string]string{component.LabelName: IngressName, component.LabelComponent: component.Ingress}
}

// IngressEnabled reports whether the spec asks for the ingress controller.
func IngressEnabled(spec v1.ClusterNetworkSpec) bool {
	return spec.Ingress != nil && spec.Ingress.Enabled != nil && *spec.Ingress.Enabled
}

// Ingress renders the ingress controller: its ServiceAccount, ClusterRole and Role (leader
// election) with their bindings, the Deployment, the Service and the IngressClass. A disabled
// ingress renders nothing, so pruning removes whatever an earlier render made.
func Ingress(cfg IngressConfig) []client.Object {
	if !IngressEnabled(cfg.Spec) {
		return nil
	}
	ns := cfg.Namespace
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: IngressName, Namespace: ns}}
	return []client.Object{
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: IngressName, Namespace: ns, Labels: IngressLabels()},
		},
		ingressClusterRole(cfg.Spec),
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: IngressName, Labels: IngressLabels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: IngressName},
			Subjects:   subjects,
		},
		ingressRole(ns, cfg.Spec),
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: IngressName, Namespace: ns, Labels: IngressLabels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: IngressName},
			Subjects:   subjects,
		},
		ingressDeployment(cfg),
		ingressService(ns, cfg.Spec.Ingress.ServiceType),
		ingressClass(cfg.Spec.Ingress.IngressClassName),
	}
}

// IngressServiceRef is the namespace/name of the controller's Service, what -publish-service takes.
func IngressServiceRef(ns string) string { return ns + "/" + IngressName }

// ingressClusterRole grants what the controller reads and writes cluster-wide. Secrets: list and
// watch only (the controller reads them from its cache, which holds only kubernetes.io/tls ones);
// RBAC cannot limit by type, and an Ingress may name a TLS Secret in any namespace it lives in,
// so the grant is cluster-wide. No get: nothing reads a Secret by name past the cache.
func ingressClusterRole(spec v1.ClusterNetworkSpec) *rbacv1.ClusterRole {
	read := []string{"get", "list", "watch"}
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: IngressName, Labels: IngressLabels()},
		Rules: append([]rbacv1.PolicyRule{
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingressclasses", "ingresses"}, Verbs: read},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses/status"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		}, GatewayIngressRules(spec)...),
	}
}

// ingressRole is what the controller may write in its own namespace only: the Lease that elects
// the replica writing status and, with the Gateway API on, the per-Gateway Services the leader
// creates, updates and deletes there (GatewayIngressRoleRules).
func ingressRole(ns string, spec v1.ClusterNetworkSpec) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: IngressName, Namespace: ns, Labels: IngressLabels()},
		Rules: append([]rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
		}, GatewayIngressRoleRules(spec)...),
	}
}

// ingressService exposes the proxy: 80 and 443 onto the pods' 8080 and 8443.
func ingressService(ns string, typ v1.IngressServiceType) *corev1.Service {
	t := corev1.ServiceType(typ)
	if t == "" {
		t = corev1.ServiceTypeLoadBalancer
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: IngressName, Namespace: ns, Labels: IngressLabels()},
		Spec: corev1.ServiceSpec{
			Type:     t,
			Selector: ingressSelector(),
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: IngressServiceHTTPPort, TargetPort: intstr.FromString("http")},
				{Name: "https", Protocol: corev1.ProtocolTCP, Port: IngressServiceHTTPSPort, TargetPort: intstr.FromString("https")},
			},
		},
	}
}

// ingressClass is the IngressClass the controller serves.
func ingressClass(name string) *networkingv1.IngressClass {
	return &networkingv1.IngressClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "IngressClass"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: IngressLabels()},
		Spec:       networkingv1.IngressClassSpec{Controller: IngressControllerName},
	}
}
