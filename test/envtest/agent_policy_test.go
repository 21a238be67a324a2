package envtest

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/render"
)

// agentAs returns a client that acts as the agent's service account with a token bound to a Pod
// on node (no node-name extra when node is ""), through impersonation.
func agentAs(node string) client.Client {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + controllers.DefaultNamespace + ":" + render.AgentServiceAccount,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + controllers.DefaultNamespace, "system:authenticated"},
	}
	if node != "" {
		c.Impersonate.Extra = map[string][]string{render.NodeNameExtra: {node}}
	}
	cl, err := client.New(c, client.Options{Scheme: controllers.NewScheme()})
	Expect(err).NotTo(HaveOccurred())
	return cl
}

// grantAgentRole creates the agent's ClusterRole from config/rbac and binds it to the agent's
// service account, as an install does.
func grantAgentRole() {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "agent_role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	Expect(yaml.Unmarshal(data, role)).To(Succeed())
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: controllers.DefaultNamespace, Name: render.AgentServiceAccount}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := k8s.Create(ctx(), o); err != nil && !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred())
		}
	}
}

// patchStatusAs changes NodeNetwork name's status as cl.
func patchStatusAs(cl client.Client, name string) error {
	nn := &v1.NodeNetwork{}
	Expect(k8s.Get(ctx(), client.ObjectKey{Name: name}, nn)).To(Succeed())
	base := nn.DeepCopy()
	nn.Status.ObservedGeneration = nn.Generation + 1000 // a change the patch must carry
	return cl.Status().Patch(ctx(), nn, client.MergeFrom(base))
}

var _ = Describe("The agent status policy", func() {
	AfterEach(cleanup)

	It("lets an agent write only its own node's NodeNetwork status", func() {
		createNetwork(dualStackNetwork())
		names := createNodes("pol", 2)
		waitAllocated(names, 2)
		grantAgentRole()
		Eventually(func(g Gomega) {
			p := &admissionv1.ValidatingAdmissionPolicy{}
			g.Expect(k8s.Get(ctx(), client.ObjectKey{Name: render.AgentStatusPolicyName}, p)).To(Succeed())
			g.Expect(p.OwnerReferences).To(HaveLen(1))
			g.Expect(k8s.Get(ctx(), client.ObjectKey{Name: render.AgentStatusPolicyName}, &admissionv1.ValidatingAdmissionPolicyBinding{})).To(Succeed())
		}, timeout, interval).Should(Succeed())

		By("the agent of " + names[1] + " writing " + names[0] + "'s status")
		// The API server takes a moment to load a new policy: until then the write may pass.
		Eventually(func() error { return patchStatusAs(agentAs(names[1]), names[0]) }, timeout, interval).Should(SatisfyAll(
			WithTransform(apierrors.IsForbidden, BeTrue()),
			MatchError(ContainSubstring("may write only its own node's NodeNetwork status: NodeNetwork "+names[0]+" is not the node its service account token is bound to ("+names[1]+")")),
		))

		By("an agent token bound to no node")
		err := patchStatusAs(agentAs(""), names[0])
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("the token names no node"))

		By("each agent writing its own node's status")
		for _, n := range names {
			Expect(patchStatusAs(agentAs(n), n)).To(Succeed(), "agent of %s", n)
		}

		By("anyone else (the operator's roll-up, an admin) is not matched by the policy")
		Expect(patchStatusAs(k8s, names[0])).To(Succeed())
	})
})
