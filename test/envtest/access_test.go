package envtest

import (
	"os"
	"path/filepath"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/plexus-net/plexus/controllers"
)

// operatorRBAC reads the operator's ClusterRole and namespaced Role from config/rbac/role.yaml
// (what every install path applies), renamed so they cannot meet anything else in the suite.
func operatorRBAC(name string) (*rbacv1.ClusterRole, *rbacv1.Role) {
	f, err := os.Open(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	var cr rbacv1.ClusterRole
	var r rbacv1.Role
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			break
		}
		switch raw["kind"] {
		case "ClusterRole":
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &cr)).To(Succeed())
		case "Role":
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &r)).To(Succeed())
		}
	}
	Expect(cr.Rules).NotTo(BeEmpty(), "no ClusterRole in config/rbac/role.yaml")
	cr.ObjectMeta = metav1.ObjectMeta{Name: name}
	r.ObjectMeta = metav1.ObjectMeta{Name: name, Namespace: controllers.DefaultNamespace}
	return &cr, &r
}

// missingFor returns what the operator's caches need and a user holding only role and
// clusterRole (bound as name) may not do.
func missingFor(name string) []controllers.Access {
	user, err := testEnv.AddUser(envtest.User{Name: name}, nil)
	Expect(err).NotTo(HaveOccurred())
	uc := rest.CopyConfig(user.Config())
	httpClient, err := rest.HTTPClientFor(uc)
	Expect(err).NotTo(HaveOccurred())
	mapper, err := apiutil.NewDynamicRESTMapper(uc, httpClient)
	Expect(err).NotTo(HaveOccurred())
	kube, err := kubernetes.NewForConfigAndClient(uc, httpClient)
	Expect(err).NotTo(HaveOccurred())
	want, err := controllers.CacheAccess(mapper, controllers.DefaultNamespace)
	Expect(err).NotTo(HaveOccurred())
	Expect(want).NotTo(BeEmpty())
	missing, err := controllers.MissingAccess(suiteCtx, kube, want)
	Expect(err).NotTo(HaveOccurred())
	return missing
}

var _ = Describe("The operator's RBAC check", func() {
	It("finds nothing missing with the shipped RBAC, and names a permission taken away", func() {
		const name = "plexus-access-test"
		cr, r := operatorRBAC(name)
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: controllers.DefaultNamespace},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}}
		for _, o := range []client.Object{cr, r, crb, rb} {
			Expect(k8s.Create(suiteCtx, o)).To(Succeed())
			DeferCleanup(func() {
				if err := k8s.Delete(suiteCtx, o); err != nil && !apierrors.IsNotFound(err) {
					Fail(err.Error())
				}
			})
		}
		Eventually(func() []controllers.Access { return missingFor(name) }, timeout, interval).Should(BeEmpty(),
			"config/rbac/role.yaml lacks what the operator's caches list and watch")

		By("taking ingressclasses away from the ClusterRole")
		Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(cr), cr)).To(Succeed())
		for i := range cr.Rules {
			cr.Rules[i].Resources = slices.DeleteFunc(cr.Rules[i].Resources, func(r string) bool { return r == "ingressclasses" })
		}
		cr.Rules = slices.DeleteFunc(cr.Rules, func(r rbacv1.PolicyRule) bool { return len(r.Resources) == 0 && len(r.NonResourceURLs) == 0 })
		Expect(k8s.Update(suiteCtx, cr)).To(Succeed())
		Eventually(func() []string {
			var out []string
			for _, a := range missingFor(name) {
				out = append(out, a.String())
			}
			return out
		}, timeout, interval).Should(ConsistOf("list ingressclasses.networking.k8s.io", "watch ingressclasses.networking.k8s.io"))
		Expect(controllers.MissingAccessError(missingFor(name)).Error()).To(And(
			ContainSubstring("may not list ingressclasses.networking.k8s.io"), ContainSubstring("Apply the RBAC of this operator's release")))
	})
})
