package envtest

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/render"
)

func agentDaemonSet(g Gomega) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{}
	g.Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: controllers.DefaultNamespace, Name: render.AgentName}, ds)).To(Succeed())
	return ds
}

var _ = Describe("The agent DaemonSet", func() {
	AfterEach(func() {
		Expect(k8s.DeleteAllOf(ctx(), &appsv1.DaemonSet{}, client.InNamespace(controllers.DefaultNamespace))).To(Succeed())
		cleanup()
	})

	It("is rendered from the served config, follows image changes, comes back when deleted, and ignores refused changes", func() {
		createNetwork(dualStackNetwork())
		Eventually(func(g Gomega) {
			ds := agentDaemonSet(g)
			g.Expect(ds.Spec.Template.Spec.Containers[0].Image).To(Equal("plexus-agent:test"), "the operator's default image")
			g.Expect(ds.Spec.Template.Spec.HostNetwork).To(BeTrue())
			g.Expect(ds.OwnerReferences).To(HaveLen(1))
			g.Expect(ds.OwnerReferences[0].Kind).To(Equal("ClusterNetwork"))
			g.Expect(ds.Annotations).To(HaveKeyWithValue(render.GenerationAnnotation, "1"))
		}, timeout, interval).Should(Succeed())

		By("setting spec.images.agent")
		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.Images = &v1.Images{Agent: "example.invalid/plexus-agent:2"} })
		Eventually(func(g Gomega) {
			g.Expect(agentDaemonSet(g).Spec.Template.Spec.Containers[0].Image).To(Equal("example.invalid/plexus-agent:2"))
		}, timeout, interval).Should(Succeed())

		By("deleting the DaemonSet")
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: controllers.DefaultNamespace, Name: render.AgentName}}
		Expect(k8s.Delete(ctx(), ds)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(agentDaemonSet(g).Spec.Template.Spec.Containers[0].Image).To(Equal("example.invalid/plexus-agent:2"))
		}, timeout, interval).Should(Succeed())

		By("a refused change that also changes the image")
		updateNetwork(func(cn *v1.ClusterNetwork) {
			cn.Spec.ServiceNetwork.CIDRs[0] = "10.97.0.0/16"
			cn.Spec.Images.Agent = "example.invalid/plexus-agent:3"
		})
		eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionFalse)
		Consistently(func(g Gomega) {
			g.Expect(agentDaemonSet(g).Spec.Template.Spec.Containers[0].Image).To(Equal("example.invalid/plexus-agent:2"))
		}, "1s", interval).Should(Succeed())
	})
})
