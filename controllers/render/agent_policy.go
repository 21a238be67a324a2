package render

import (
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/component"
)

// AgentStatusPolicyName names the ValidatingAdmissionPolicy (and its binding) that lets an agent
// write the status of its own node's NodeNetwork only.
const AgentStatusPolicyName = "plexus-agent-own-nodenetwork"

// NodeNameExtra is the user-info extra that the API server sets from a Pod-bound service account
// token: the name of the node the Pod runs on (Kubernetes ≥ 1.32). The agent's token is bound to
// its Pod by the kubelet, so the claim names the agent's node and cannot be chosen by the agent.
const NodeNameExtra = "authentication.kubernetes.io/node-name"

// AgentStatusPolicy returns the policy and its binding: a status write to a NodeNetwork by the
// agent's service account in namespace is refused unless the NodeNetwork is named after the node
// the writing agent's token is bound to. RBAC alone cannot say this: a DaemonSet's pods share one
// service account, and RBAC has no "own object" rule, so without the policy an agent could rewrite
// any node's status.
func AgentStatusPolicy(namespace string) []client.Object {
	agent := fmt.Sprintf("system:serviceaccount:%s:%s", namespace, AgentServiceAccount)
	nodeOf := fmt.Sprintf("request.userInfo.extra[%q]", NodeNameExtra)
	// A user without extras has no extra field at all (has() first, or CEL errs).
	hasNode := fmt.Sprintf("has(request.userInfo.extra) && %q in request.userInfo.extra", NodeNameExtra)
	policy := &admissionv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: AgentStatusPolicyName, Labels: component.Labels(component.Agent)},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Update},
					Rule: admissionv1.Rule{
						APIGroups: []string{v1.GroupVersion.Group}, APIVersions: []string{"*"},
						Resources: []string{"nodenetworks/status"}, Scope: ptr.To(admissionv1.ClusterScope),
					},
				},
			}}},
			MatchConditions: []admissionv1.MatchCondition{{
				Name: "is-plexus-agent", Expression: fmt.Sprintf("request.userInfo.username == %q", agent),
			}},
			Validations: []admissionv1.Validation{{
				Expression: fmt.Sprintf("%s && object.metadata.name in %s", hasNode, nodeOf),
				MessageExpression: fmt.Sprintf(`'the Plexus agent may write only its own node\'s NodeNetwork status: NodeNetwork ' + object.metadata.name + `+
					`' is not the node its service account token is bound to (' + (%s ? %s.join(', ') : `+
					`'the token names no node: use a Pod-bound token, Kubernetes 1.32 or later') + ')'`, hasNode, nodeOf),
				Reason: ptr.To(metav1.StatusReasonForbidden),
			}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: AgentStatusPolicyName, Labels: component.Labels(component.Agent)},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        AgentStatusPolicyName,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	return []client.Object{policy, binding}
}
