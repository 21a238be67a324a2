package envtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/yaml"

	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/component"
	"github.com/plexus-net/plexus/controllers/netconfig"
	"github.com/plexus-net/plexus/controllers/render"
)

const pruneTestComponent = "prune-test"

// pruneTestKinds: a namespaced kind and a cluster-scoped one, both found by label.
var pruneTestKinds = apply.Component{
	Name: pruneTestComponent, FieldOwner: "plexus/prune-test", Namespace: controllers.DefaultNamespace,
	Kinds: []apply.Kind{
		{GVK: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Namespaced: true},
		{GVK: rbacv1.SchemeGroupVersion.WithKind("ClusterRole")},
	},
}

func testConfigMap(name string, labels map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: controllers.DefaultNamespace, Name: name, Labels: labels},
		Data:       map[string]string{"k": name},
	}
}

func testClusterRole(name string) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: component.Labels(pruneTestComponent)},
	}
}

func exists(o client.Object) bool {
	err := k8s.Get(ctx(), client.ObjectKeyFromObject(o), o)
	if apierrors.IsNotFound(err) {
		return false
	}
	Expect(err).NotTo(HaveOccurred())
	return true
}

// operatorClient returns a client that acts as the operator's service account, with the RBAC that
// config/rbac grants it and the cache the operator builds (controllers.CacheOptions), started.
func operatorClient() (cached client.Client, direct client.Client) {
	grantOperatorRole()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + controllers.DefaultNamespace + ":plexus-operator",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + controllers.DefaultNamespace, "system:authenticated"},
	}
	cl, err := cluster.New(c, func(o *cluster.Options) {
		o.Scheme = controllers.NewScheme()
		o.Cache = controllers.CacheOptions(controllers.DefaultNamespace)
	})
	Expect(err).NotTo(HaveOccurred())
	runCtx, stop := context.WithCancel(suiteCtx)
	DeferCleanup(stop)
	go func() {
		defer GinkgoRecover()
		Expect(cl.Start(runCtx)).To(Succeed())
	}()
	Expect(cl.GetCache().WaitForCacheSync(runCtx)).To(BeTrue())
	direct, err = client.New(c, client.Options{Scheme: controllers.NewScheme()})
	Expect(err).NotTo(HaveOccurred())
	return cl.GetClient(), direct
}

// grantOperatorRole creates the operator's service account, roles and bindings from config/rbac.
func grantOperatorRole() {
	for _, f := range []string{"service_account.yaml", "role.yaml", "role_binding.yaml", "role_binding_namespaced.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", f))
		Expect(err).NotTo(HaveOccurred())
		for _, doc := range strings.Split(string(data), "\n---\n") {
			u := &unstructured.Unstructured{}
			Expect(yaml.Unmarshal([]byte(doc), &u.Object)).To(Succeed(), f)
			if len(u.Object) == 0 {
				continue
			}
			if err := k8s.Create(ctx(), u); err != nil && !apierrors.IsAlreadyExists(err) {
				Expect(err).NotTo(HaveOccurred(), "%s %s", u.GetKind(), u.GetName())
			}
		}
	}
}

var _ = Describe("Apply-and-prune", func() {
	It("applies a component's render and prunes what it no longer renders, down to nothing when disabled", func() {
		own := component.Labels(pruneTestComponent)
		a, b, role := testConfigMap("prune-a", own), testConfigMap("prune-b", own), testClusterRole("plexus-prune-test")
		other := testConfigMap("prune-other", component.Labels("another"))
		unlabelled := testConfigMap("prune-unlabelled", nil)
		Expect(k8s.Create(ctx(), other)).To(Succeed())
		Expect(k8s.Create(ctx(), unlabelled)).To(Succeed())
		DeferCleanup(func() {
			for _, o := range []client.Object{other, unlabelled, testConfigMap("prune-a", nil), testConfigMap("prune-b", nil), testClusterRole("plexus-prune-test")} {
				Expect(client.IgnoreNotFound(k8s.Delete(ctx(), o))).To(Succeed())
			}
		})

		By("rendering two ConfigMaps and a ClusterRole")
		Expect(apply.Reconcile(ctx(), k8s, pruneTestKinds, nil, []client.Object{a, b, role})).To(Succeed())
		Expect(exists(testConfigMap("prune-a", nil))).To(BeTrue())
		Expect(exists(testConfigMap("prune-b", nil))).To(BeTrue())
		Expect(exists(testClusterRole("plexus-prune-test"))).To(BeTrue())

		By("rendering one ConfigMap only")
		Expect(apply.Reconcile(ctx(), k8s, pruneTestKinds, nil, []client.Object{testConfigMap("prune-a", own)})).To(Succeed())
		Expect(exists(testConfigMap("prune-a", nil))).To(BeTrue())
		Expect(exists(testConfigMap("prune-b", nil))).To(BeFalse(), "prune-b is no longer rendered")
		Expect(exists(testClusterRole("plexus-prune-test"))).To(BeFalse(), "the cluster-scoped ClusterRole is no longer rendered")

		By("disabling the component: an empty render")
		Expect(apply.Reconcile(ctx(), k8s, pruneTestKinds, nil, nil)).To(Succeed())
		Expect(exists(testConfigMap("prune-a", nil))).To(BeFalse())
		Expect(exists(testConfigMap("prune-other", nil))).To(BeTrue(), "another component's object is kept")
		Expect(exists(testConfigMap("prune-unlabelled", nil))).To(BeTrue(), "an object without component labels is kept")
	})

	It("prunes the agent's DaemonSet and admission policy pair with the operator's own RBAC and cache", func() {
		opCached, opDirect := operatorClient()
		By("the operator's RBAC cannot list admission policies: prune must get them by name")
		err := opDirect.List(ctx(), &admissionv1.ValidatingAdmissionPolicyList{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)

		var agent controllers.ManagedComponent
		for _, c := range controllers.ManagedComponents(controllers.DefaultNamespace) {
			if c.Name == component.Agent {
				agent = c
			}
		}
		Expect(agent.Render).NotTo(BeNil())
		served := netconfig.Default(dualStackNetwork().Spec, netconfig.Images{Agent: "plexus-agent:test"})
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: controllers.DefaultNamespace, Name: render.AgentName}}
		policy := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: render.AgentStatusPolicyName}}
		binding := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: render.AgentStatusPolicyName}}
		all := []client.Object{ds, policy, binding}

		By("applying the agent's render as the operator")
		Expect(apply.Reconcile(ctx(), opCached, agent.Component, nil, agent.Render(controllers.RenderInput{Served: served}))).To(Succeed())
		for _, o := range all {
			Expect(exists(o)).To(BeTrue(), "%T %s", o, o.GetName())
		}

		By("a render without them: every one is pruned")
		Eventually(func(g Gomega) {
			// The cache sees the objects a moment after they were made: until then prune finds
			// nothing to delete.
			g.Expect(apply.Reconcile(ctx(), opCached, agent.Component, nil, nil)).To(Succeed())
			for _, o := range all {
				g.Expect(exists(o)).To(BeFalse(), "%T %s", o, o.GetName())
			}
		}, timeout, interval).Should(Succeed())
	})
})
