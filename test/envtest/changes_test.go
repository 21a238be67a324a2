package envtest

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

var _ = Describe("Changes to a running ClusterNetwork", func() {
	AfterEach(cleanup)

	It("refuses an unsafe change, keeps serving the last good config and keeps every allocation", func() {
		createNetwork(dualStackNetwork())
		names := createNodes("unsafe", 5)
		before := waitAllocated(names, 2)
		eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionTrue)
		good := getNetwork()

		By("changing the IPv4 node mask size while nodes hold /24s")
		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.NodeMaskSizeIPv4 = ptr.To[int32](26) })
		cond := eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionFalse)
		Expect(cond.Reason).To(Equal(v1.ReasonUnsafeChange))
		Expect(cond.Message).To(ContainSubstring("spec.podNetwork.nodeMaskSizeIPv4"))
		Expect(cond.Message).To(ContainSubstring("cannot change to /26 while 5 nodes hold /24 pod CIDRs"))
		Expect(cond.Message).To(ContainSubstring("still serving generation 1"))
		ready := eventuallyCondition(v1.ConditionReady, metav1.ConditionFalse)
		Expect(ready.Reason).To(Equal(v1.ReasonConfigNotValid))

		cn := getNetwork()
		Expect(cn.Status.AppliedGeneration).To(Equal(good.Generation))
		Expect(*cn.Status.Effective.PodNetwork.NodeMaskSizeIPv4).To(BeEquivalentTo(24))
		expectEvent("ChangeRefused", "generation 2 refused, still serving generation 1")

		By("adding a node while the change is refused: it is served from the last good config")
		added := createNodes("unsafe-late", 1)
		all := waitAllocated(added, 2)
		Expect(string(all[added[0]][0])).To(HaveSuffix("/24"))
		for n, c := range before {
			Expect(all[n]).To(Equal(c))
		}

		By("removing a pod CIDR that holds allocations")
		updateNetwork(func(cn *v1.ClusterNetwork) {
			cn.Spec.PodNetwork.NodeMaskSizeIPv4 = nil
			cn.Spec.PodNetwork.CIDRs[0] = "10.245.0.0/16"
		})
		cond = eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionFalse)
		Expect(cond.Message).To(ContainSubstring("spec.podNetwork.cidrs"))
		Expect(cond.Message).To(ContainSubstring("removes or shrinks 10.244.0.0/16, which holds the pod CIDRs of 6 nodes"))

		By("changing the service CIDRs")
		updateNetwork(func(cn *v1.ClusterNetwork) {
			cn.Spec.PodNetwork.CIDRs[0] = "10.244.0.0/16"
			cn.Spec.ServiceNetwork.CIDRs[0] = "10.97.0.0/16"
		})
		cond = eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionFalse)
		Expect(cond.Message).To(ContainSubstring("spec.serviceNetwork.cidrs"))
		Expect(cond.Message).To(ContainSubstring("not supported: the API server allocates ClusterIPs from them"))

		By("reverting: the config is valid again and served")
		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.ServiceNetwork.CIDRs[0] = "10.96.0.0/16" })
		eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionTrue)
		Expect(getNetwork().Status.AppliedGeneration).To(Equal(getNetwork().Generation))
		Expect(allocations()).To(Equal(all))
	})

	It("refuses a pod CIDR that contains a node's address", func() {
		Expect(k8s.Create(ctx(), node("clash", "10.244.5.5"))).To(Succeed())
		createNetwork(dualStackNetwork())
		cond := eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionFalse)
		Expect(cond.Reason).To(Equal(v1.ReasonOverlap))
		Expect(cond.Message).To(ContainSubstring("spec.podNetwork.cidrs[0]"))
		Expect(cond.Message).To(ContainSubstring("contains the address of node clash (10.244.5.5)"))
		Expect(cond.Message).To(ContainSubstring("no configuration is served yet"))
		Consistently(func() map[string][]v1.CIDR { return allocations() }, "1s", interval).Should(BeEmpty())
	})

	It("never writes the spec: only the user's field manager owns it", func() {
		createNetwork(dualStackNetwork())
		createNodes("owner", 3)
		eventuallyCondition(v1.ConditionPodCIDRsAllocated, metav1.ConditionTrue)
		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.Routing = &v1.Routing{Mode: v1.RoutingVXLAN} })
		eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionTrue)
		Expect(getNetwork().Status.Effective.Routing.Mode).To(Equal(v1.RoutingVXLAN))

		cn := getNetwork()
		Expect(cn.Generation).To(BeEquivalentTo(2), "only the test's two writes change the spec")
		for _, mf := range cn.ManagedFields {
			if mf.Subresource == "status" {
				continue
			}
			Expect(mf.Manager).To(Equal(testFieldManager), "field manager %q (%s) wrote the spec or metadata", mf.Manager, mf.Operation)
		}
	})
})
