package envtest

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
)

// dnsObjects are the keys of everything the DNS component renders.
func dnsObjects() []client.Object {
	ns := render.DNSNamespace
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.DNSServiceAccount}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: render.DNSClusterRole}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: render.DNSClusterRole}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.DNSConfigMapName}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.DNSDeploymentName}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.DNSDeploymentName}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.DNSServiceName}},
	}
}

func kubeDNS() *corev1.Service {
	svc := &corev1.Service{}
	Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSServiceName}, svc)).To(Succeed())
	return svc
}

// markDNSReady writes the Deployment status the deployment controller would (envtest runs none).
func markDNSReady() {
	Eventually(func() error {
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx(), client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSDeploymentName}, d); err != nil {
			return err
		}
		n := *d.Spec.Replicas
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, ReadyReplicas: n, UpdatedReplicas: n, AvailableReplicas: n}
		return k8s.Status().Update(ctx(), d)
	}, timeout, interval).Should(Succeed())
}

// removeDNS deletes what earlier specs' operators left of the DNS objects (envtest runs no garbage
// collector) and waits until it is gone.
func removeDNS() {
	deleteUntilGone(dnsObjects())
}

var _ = Describe("Cluster DNS", func() {
	BeforeEach(removeDNS)
	AfterEach(func() {
		cleanup()
		removeDNS()
	})

	It("applies CoreDNS sized by the node count and reports it in DNSAvailable and Ready", func() {
		createNodes("dns", 40)
		createNetwork(dualStackNetwork())
		Eventually(func(g Gomega) {
			for _, o := range dnsObjects() {
				g.Expect(k8s.Get(ctx(), client.ObjectKeyFromObject(o), o)).To(Succeed(), "%T %s", o, o.GetName())
				g.Expect(o.GetLabels()).To(HaveKeyWithValue("k8s-app", "kube-dns"))
			}
		}, timeout, interval).Should(Succeed())
		// The first reconcile may run before the operator's cache holds all 40 Nodes; the Node
		// events that follow resize the Deployment.
		Eventually(func(g Gomega) {
			d := &appsv1.Deployment{}
			g.Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSDeploymentName}, d)).To(Succeed())
			g.Expect(*d.Spec.Replicas).To(Equal(int32(3)), "40 nodes: one replica per 16, rounded up")
		}, timeout, interval).Should(Succeed())
		Expect(kubeDNS().Spec.ClusterIPs).To(Equal([]string{"10.96.0.10", "fd00:10:96::a"}))
		c := eventuallyCondition(v1.ConditionDNSAvailable, metav1.ConditionFalse)
		Expect(c.Reason).To(Equal(v1.ReasonDNSUnavailable))
		markDNSReady()
		c = eventuallyCondition(v1.ConditionDNSAvailable, metav1.ConditionTrue)
		Expect(c.Message).To(ContainSubstring("3 of 3 CoreDNS replicas ready"))
	})

	It("reports a kube-dns it did not create and leaves it alone until it is handed over", func() {
		foreign := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: render.DNSNamespace, Name: render.DNSServiceName, Labels: map[string]string{"k8s-app": "kube-dns"}},
			Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}, Selector: map[string]string{"k8s-app": "kube-dns"}},
		}
		// The address may still be held for a moment by the kube-dns an earlier spec deleted.
		Eventually(func() error { return k8s.Create(ctx(), foreign.DeepCopy()) }, timeout, interval).Should(Succeed())
		createNodes("dns", 2)
		createNetwork(dualStackNetwork())
		c := eventuallyCondition(v1.ConditionDNSAvailable, metav1.ConditionFalse)
		Expect(c.Reason).To(Equal(v1.ReasonDNSForeignObject))
		Expect(c.Message).To(ContainSubstring("Service kube-system/kube-dns exists and was not created by Plexus"))
		Expect(c.Message).To(ContainSubstring("annotate service kube-dns plexus.dev/adopt=true"))
		Consistently(func() map[string]string { return kubeDNS().Labels }, "2s", interval).ShouldNot(HaveKey("app.kubernetes.io/managed-by"))
		Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSDeploymentName}, &appsv1.Deployment{})).NotTo(Succeed(),
			"nothing of Plexus' DNS is applied while a foreign object is in the way")

		svc := kubeDNS()
		svc.Annotations = map[string]string{v1.AdoptAnnotation: "true"}
		Expect(k8s.Update(ctx(), svc)).To(Succeed())
		Eventually(func() map[string]string { return kubeDNS().Labels }, timeout, interval).Should(HaveKeyWithValue("app.kubernetes.io/managed-by", "plexus"))
	})

	It("removes everything it made for DNS when DNS is disabled", func() {
		createNodes("dns", 2)
		createNetwork(dualStackNetwork())
		Eventually(func() error { _, err := kubeDNSOrErr(); return err }, timeout, interval).Should(Succeed())
		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.DNS = &v1.DNS{Enabled: ptr.To(false)} })
		Eventually(func(g Gomega) {
			for _, o := range dnsObjects() {
				g.Expect(k8s.Get(ctx(), client.ObjectKeyFromObject(o), o)).NotTo(Succeed(), "%T %s still there", o, o.GetName())
			}
		}, timeout, interval).Should(Succeed())
		c := eventuallyCondition(v1.ConditionDNSAvailable, metav1.ConditionTrue)
		Expect(c.Reason).To(Equal(v1.ReasonDNSDisabled))
	})

	It("keeps DNS serving when a DNS service IP change is refused", func() {
		createNodes("dns", 2)
		createNetwork(dualStackNetwork())
		Eventually(func() error { _, err := kubeDNSOrErr(); return err }, timeout, interval).Should(Succeed())
		markDNSReady()
		eventuallyCondition(v1.ConditionDNSAvailable, metav1.ConditionTrue)
		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.DNS = &v1.DNS{ServiceIP: "10.96.0.53"} })
		c := eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionFalse)
		Expect(c.Message).To(ContainSubstring("spec.dns.serviceIP"))
		Consistently(func() []string { return kubeDNS().Spec.ClusterIPs }, "2s", interval).Should(Equal([]string{"10.96.0.10", "fd00:10:96::a"}))
		Expect(condition(getNetwork(), v1.ConditionDNSAvailable).Status).To(Equal(metav1.ConditionTrue))
	})
})

func kubeDNSOrErr() (*corev1.Service, error) {
	svc := &corev1.Service{}
	return svc, k8s.Get(ctx(), client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSServiceName}, svc)
}
