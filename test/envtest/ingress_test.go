package envtest

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/render"
)

// ingressObjects are the keys of everything the ingress component renders, its IngressClass
// named className.
func ingressObjects(className string) []client.Object {
	ns, name := controllers.DefaultNamespace, render.IngressName
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: className}},
	}
}

// markIngressReady writes the Deployment status the deployment controller would (envtest runs none).
func markIngressReady() {
	Eventually(func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx(), client.ObjectKey{Namespace: controllers.DefaultNamespace, Name: render.IngressName}, d); err != nil {
			return err
		}
		n := *d.Spec.Replicas
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, ReadyReplicas: n, UpdatedReplicas: n, AvailableReplicas: n}
		return k8s.Status().Update(ctx(), d)
	}, timeout, interval).Should(Succeed())
}

// removeIngress deletes what earlier specs' operators left (envtest runs no garbage collector).
func removeIngress() {
	deleteUntilGone(append(ingressObjects("plexus"), ingressObjects("edge")[7]))
}

func withIngress(in *v1.Ingress) *v1.ClusterNetwork {
	cn := dualStackNetwork()
	cn.Spec.Ingress = in
	return cn
}

var _ = Describe("Ingress controller", func() {
	BeforeEach(removeIngress)
	AfterEach(func() {
		cleanup()
		removeIngress()
	})

	It("applies plexus-ingress when enabled and reports it in IngressAvailable", func() {
		createNodes("ingress", 3)
		createNetwork(withIngress(&v1.Ingress{Enabled: ptr.To(true), ServiceType: v1.IngressServiceType("NodePort")}))
		Eventually(func(g Gomega) {
			for _, o := range ingressObjects("plexus") {
				g.Expect(k8s.Get(ctx(), client.ObjectKeyFromObject(o), o)).To(Succeed(), "%T %s", o, o.GetName())
				g.Expect(o.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/component", "ingress"))
			}
		}, timeout, interval).Should(Succeed())
		class := &networkingv1.IngressClass{}
		Expect(k8s.Get(ctx(), client.ObjectKey{Name: "plexus"}, class)).To(Succeed())
		Expect(class.Spec.Controller).To(Equal("plexus.dev/ingress"))
		d := &appsv1.Deployment{}
		Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: controllers.DefaultNamespace, Name: render.IngressName}, d)).To(Succeed())
		Expect(*d.Spec.Replicas).To(Equal(int32(2)))
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("plexus-ingress:test"))

		c := eventuallyCondition(v1.ConditionIngressAvailable, metav1.ConditionFalse)
		Expect(c.Reason).To(Equal(v1.ReasonIngressUnavailable))
		Expect(c.Message).To(Equal("0 of 2 plexus-ingress replicas ready (a replica is ready once it has loaded its first config)"))
		Expect(condition(getNetwork(), v1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))

		markIngressReady()
		c = eventuallyCondition(v1.ConditionIngressAvailable, metav1.ConditionTrue)
		Expect(c.Reason).To(Equal(v1.ReasonIngressServing))
		Expect(c.Message).To(MatchRegexp(`^2 of 2 plexus-ingress replicas ready; Service plexus-ingress at 10\.96\.\d+\.\d+ \(ClusterIP\), node ports \d+,\d+$`))
	})

	It("moves the IngressClass when ingressClassName changes and removes everything when disabled", func() {
		createNodes("ingress", 2)
		createNetwork(withIngress(&v1.Ingress{Enabled: ptr.To(true), ServiceType: v1.IngressServiceType("ClusterIP")}))
		Eventually(func() error {
			return k8s.Get(ctx(), client.ObjectKey{Name: "plexus"}, &networkingv1.IngressClass{})
		}, timeout, interval).Should(Succeed())

		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.Ingress.IngressClassName = "edge" })
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx(), client.ObjectKey{Name: "edge"}, &networkingv1.IngressClass{})).To(Succeed())
			g.Expect(apierrors.IsNotFound(k8s.Get(ctx(), client.ObjectKey{Name: "plexus"}, &networkingv1.IngressClass{}))).To(BeTrue(), "old IngressClass plexus still there")
		}, timeout, interval).Should(Succeed())

		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.Ingress.Enabled = ptr.To(false) })
		Eventually(func(g Gomega) {
			for _, o := range ingressObjects("edge") {
				g.Expect(apierrors.IsNotFound(k8s.Get(ctx(), client.ObjectKeyFromObject(o), o))).To(BeTrue(), "%T %s still there", o, o.GetName())
			}
		}, timeout, interval).Should(Succeed())
		c := eventuallyCondition(v1.ConditionIngressAvailable, metav1.ConditionTrue)
		Expect(c.Reason).To(Equal(v1.ReasonIngressDisabled))
		// The cluster DNS, a ClusterRole of the other component, is untouched by the ingress prune.
		Expect(k8s.Get(ctx(), client.ObjectKey{Name: render.DNSClusterRole}, &rbacv1.ClusterRole{})).To(Succeed())
	})

	It("installs the Gateway API CRDs and its GatewayClass, and removes only the class when turned off", func() {
		createNodes("ingress", 2)
		createNetwork(withIngress(&v1.Ingress{Enabled: ptr.To(true), ServiceType: v1.IngressServiceType("ClusterIP"),
			GatewayAPI: &v1.GatewayAPI{Enabled: ptr.To(true)}}))
		gatewayClass := func() *unstructured.Unstructured {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("gateway.networking.k8s.io/v1")
			u.SetKind("GatewayClass")
			u.SetName("plexus")
			return u
		}
		Eventually(func(g Gomega) {
			gc := gatewayClass()
			g.Expect(k8s.Get(ctx(), client.ObjectKeyFromObject(gc), gc)).To(Succeed())
			name, _, _ := unstructured.NestedString(gc.Object, "spec", "controllerName")
			g.Expect(name).To(Equal("plexus.dev/gateway"))
		}, timeout, interval).Should(Succeed())
		d := &appsv1.Deployment{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: controllers.DefaultNamespace, Name: render.IngressName}, d)).To(Succeed())
			g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("-gateway-api"))
		}, timeout, interval).Should(Succeed())

		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.Ingress.GatewayAPI.Enabled = ptr.To(false) })
		Eventually(func() bool {
			gc := gatewayClass()
			return apierrors.IsNotFound(k8s.Get(ctx(), client.ObjectKeyFromObject(gc), gc))
		}, timeout, interval).Should(BeTrue(), "the GatewayClass is removed")
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: controllers.DefaultNamespace, Name: render.IngressName}, d)).To(Succeed())
			g.Expect(d.Spec.Template.Spec.Containers[0].Args).NotTo(ContainElement("-gateway-api"))
		}, timeout, interval).Should(Succeed())
		// The CRDs stay: deleting one would delete every user's object of its kind.
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		Expect(k8s.Get(ctx(), client.ObjectKey{Name: "httproutes.gateway.networking.k8s.io"}, crd)).To(Succeed())
	})
})
