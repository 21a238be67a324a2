package render

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/component"
)

// The Gateway API part of the ingress component's render: the GatewayClass the operator applies,
// and what plexus-ingress needs to serve the Gateway API (flags and ClusterRole rules). The CRDs
// are not rendered: controllers.EnsureGatewayAPI creates them only when absent.

const (
	// GatewayAPIComponent is the LabelComponent value of the GatewayClass the operator makes.
	GatewayAPIComponent = "gateway-api"
	// FieldOwnerGatewayAPI is the field manager of the GatewayClass.
	FieldOwnerGatewayAPI = "plexus/gateway-api"
	// GatewayControllerName is the spec.controllerName of the GatewayClasses plexus-ingress serves
	// (its -gateway-controller-name default).
	GatewayControllerName = "plexus.dev/gateway"
	// DefaultGatewayClassName is the GatewayClass made when ingress.gatewayAPI names none.
	DefaultGatewayClassName = "plexus"
)

// GatewayAPIEnabled says whether spec asks for the Gateway API: ingress and its gatewayAPI both on.
func GatewayAPIEnabled(spec v1.ClusterNetworkSpec) bool {
	ing := spec.Ingress
	return ing != nil && ing.Enabled != nil && *ing.Enabled &&
		ing.GatewayAPI != nil && ing.GatewayAPI.Enabled != nil && *ing.GatewayAPI.Enabled
}

// GatewayClassName is the GatewayClass plexus-ingress serves for spec.
func GatewayClassName(spec v1.ClusterNetworkSpec) string {
	if spec.Ingress != nil && spec.Ingress.GatewayAPI != nil && spec.Ingress.GatewayAPI.GatewayClassName != "" {
		return spec.Ingress.GatewayAPI.GatewayClassName
	}
	return DefaultGatewayClassName
}

// GatewayAPIObjects renders what the operator applies for the Gateway API (pure): the GatewayClass,
// or nothing when the Gateway API is not enabled. The CRDs are not among them: they are created
// only when absent (EnsureGatewayAPI), never applied over an installed release.
func GatewayAPIObjects(spec v1.ClusterNetworkSpec) []client.Object {
	if !GatewayAPIEnabled(spec) {
		return nil
	}
	desc := "plexus-ingress, managed by the Plexus operator" // at most 64 bytes
	return []client.Object{&gwv1.GatewayClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "GatewayClass"},
		ObjectMeta: metav1.ObjectMeta{Name: GatewayClassName(spec), Labels: component.Labels(GatewayAPIComponent)},
		Spec:       gwv1.GatewayClassSpec{ControllerName: GatewayControllerName, Description: &desc},
	}}
}

// GatewayIngressRules are the rules plexus-ingress's ClusterRole needs for the Gateway API when
// it is enabled (none when it is off): read the four kinds, BackendTLSPolicies and Namespaces
// (allowedRoutes selectors), write the four statuses, read ConfigMaps (the CA certificates of Gateways' client certificate validation,
// spec.tls.frontend) and read the GatewayClass CRD for its bundle version (SupportedVersion;
// without it the version is reported unknown).
func GatewayIngressRules(spec v1.ClusterNetworkSpec) []rbacv1.PolicyRule {
	if !GatewayAPIEnabled(spec) {
		return nil
	}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{gwv1.GroupName}, Resources: []string{"gatewayclasses", "gateways", "httproutes", "referencegrants", "backendtlspolicies"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{gwv1.GroupName}, Resources: []string{"gatewayclasses/status", "gateways/status", "httproutes/status", "backendtlspolicies/status"}, Verbs: []string{"update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces", "configmaps"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, ResourceNames: []string{GatewayClassCRD}, Verbs: []string{"get"}},
	}
}

// GatewayIngressRoleRules are the rules plexus-ingress's Role (its own namespace only) needs for
// the Gateway API when it is enabled: every served Gateway gets a Service there, named after the
// Gateway, that the elected leader creates (server-side apply), updates and deletes when the
// Gateway goes. Reading Services is in the ClusterRole already. RBAC cannot limit create by name,
// and the names follow the Gateways, so the rule covers the namespace's Services.
func GatewayIngressRoleRules(spec v1.ClusterNetworkSpec) []rbacv1.PolicyRule {
	if !GatewayAPIEnabled(spec) {
		return nil
	}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"create", "update", "patch", "delete"}},
	}
}

// GatewayIngressArgs are the plexus-ingress arguments that turn the Gateway API on for spec
// (none when it is off).
func GatewayIngressArgs(spec v1.ClusterNetworkSpec) []string {
	if !GatewayAPIEnabled(spec) {
		return nil
	}
	return []string{"-gateway-api", "-gateway-controller-name=" + GatewayControllerName}
}

// GatewayClassCRD is the CRD the GatewayClass needs served before it can be applied.
const GatewayClassCRD = "gatewayclasses." + gwv1.GroupName
