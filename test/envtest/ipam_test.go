package envtest

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

var _ = Describe("Node IPAM", func() {
	AfterEach(cleanup)

	It("gives 200 nodes created concurrently distinct CIDRs from the right pool per family", func() {
		createNetwork(dualStackNetwork())
		names := createNodes("burst", 200)
		allocs := waitAllocated(names, 2)
		expectDistinctInside(allocs, "10.244.0.0/16", "fd00:10:244::/56")
		for _, n := range names {
			Expect(string(allocs[n][0])).To(MatchRegexp(`^10\.244\.\d+\.0/24$`), "IPv4 first, /24, node %s", n)
			Expect(string(allocs[n][1])).To(MatchRegexp(`^fd00:10:244:[0-9a-f:]*/64$`), "IPv6 second, /64, node %s", n)
		}
		// The status of a reconcile that ran before the nodes came (0 of 0, also True) can still be
		// the latest when the allocations are seen: wait for the one that counted them.
		Eventually(func() string { return eventuallyCondition(v1.ConditionPodCIDRsAllocated, metav1.ConditionTrue).Message }, timeout, interval).
			Should(ContainSubstring("200 of 200 nodes hold pod CIDRs"))
		cn := getNetwork()
		Expect(cn.Status.PodCIDRUsage).To(ContainElement(v1.CIDRUsage{CIDR: "10.244.0.0/16", NodeMaskSize: 24, Capacity: 256, Allocated: 200}))
		Expect(cn.Status.Nodes.Total).To(BeEquivalentTo(200))
		Expect(cn.Status.Nodes.Allocated).To(BeEquivalentTo(200))
		Expect(cn.Status.Effective).NotTo(BeNil())
		Expect(*cn.Status.Effective.PodNetwork.NodeMaskSizeIPv4).To(BeEquivalentTo(24))
		Expect(cn.Status.DNSServiceIP).To(Equal("10.96.0.10"))
	})

	It("allocates nothing twice across an operator restart", func() {
		createNetwork(dualStackNetwork())
		first := waitAllocated(createNodes("before", 20), 2)
		versions := nodeNetworkVersions()

		By("restarting the operator")
		stopOperator()
		startOperator()
		more := createNodes("after", 20)

		all := waitAllocated(more, 2)
		for n, cidrs := range first {
			Expect(all[n]).To(Equal(cidrs), "node %s kept its CIDRs", n)
		}
		expectDistinctInside(all, "10.244.0.0/16", "fd00:10:244::/56")
		eventuallyCondition(v1.ConditionPodCIDRsAllocated, metav1.ConditionTrue)
		after := nodeNetworkVersions()
		for n, rv := range versions {
			Expect(after[n]).To(Equal(rv), "NodeNetwork %s was rewritten after the restart", n)
		}
	})

	It("releases a deleted node's CIDRs", func() {
		createNetwork(dualStackNetwork())
		names := createNodes("rel", 3)
		allocs := waitAllocated(names, 2)
		Expect(k8s.Delete(ctx(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: names[1]}})).To(Succeed())
		Eventually(func() map[string][]v1.CIDR { return allocations() }, timeout, interval).ShouldNot(HaveKey(names[1]))
		Eventually(func() int64 { return usage("10.244.0.0/16").Allocated }, timeout, interval).Should(BeEquivalentTo(2))
		expectEvent("PodCIDRReleased", fmt.Sprintf("released %s, %s of deleted node %s", allocs[names[1]][0], allocs[names[1]][1], names[1]))
	})

	It("reports exhaustion naming the nodes left out, and serves them once a CIDR is added", func() {
		cn := dualStackNetwork()
		cn.Spec.IPFamilies = []v1.IPFamily{v1.IPv4}
		cn.Spec.PodNetwork.CIDRs = []v1.CIDR{"10.250.0.0/23"} // two /24s
		cn.Spec.ServiceNetwork.CIDRs = cn.Spec.ServiceNetwork.CIDRs[:1]
		createNetwork(cn)
		names := createNodes("ex", 4)

		cond := eventuallyCondition(v1.ConditionPodCIDRsAllocated, metav1.ConditionFalse)
		Expect(cond.Reason).To(Equal(v1.ReasonPoolExhausted))
		Expect(cond.Message).To(ContainSubstring("no free IPv4 pod CIDR for 2 nodes: ex-2, ex-3"))
		Expect(cond.Message).To(ContainSubstring("add a CIDR to spec.podNetwork.cidrs"))
		degraded := eventuallyCondition(v1.ConditionDegraded, metav1.ConditionTrue)
		Expect(degraded.Reason).To(Equal(v1.ReasonPoolExhausted))
		Expect(allocations()).To(HaveLen(4), "every node has a NodeNetwork, two of them without CIDRs")

		By("adding a pod CIDR")
		updateNetwork(func(cn *v1.ClusterNetwork) {
			cn.Spec.PodNetwork.CIDRs = append(cn.Spec.PodNetwork.CIDRs, "10.251.0.0/23")
		})
		allocs := waitAllocated(names, 1)
		expectDistinctInside(allocs, "10.250.0.0/23", "10.251.0.0/23")
		eventuallyCondition(v1.ConditionPodCIDRsAllocated, metav1.ConditionTrue)
		eventuallyCondition(v1.ConditionDegraded, metav1.ConditionFalse)
	})

	It("adopts a Node's own valid spec.podCIDRs and writes them for nodes without when asked", func() {
		cn := dualStackNetwork()
		cn.Spec.PodNetwork.WriteNodePodCIDRs = ptr.To(true)
		createNetwork(cn)
		pre := node("adopt-0", "192.168.50.1")
		pre.Spec.PodCIDR = "10.244.77.0/24"
		pre.Spec.PodCIDRs = []string{"10.244.77.0/24", "fd00:10:244:77::/64"}
		Expect(k8s.Create(ctx(), pre)).To(Succeed())
		Expect(k8s.Create(ctx(), node("adopt-1", "192.168.50.2"))).To(Succeed())

		allocs := waitAllocated([]string{"adopt-0", "adopt-1"}, 2)
		Expect(allocs["adopt-0"]).To(Equal([]v1.CIDR{"10.244.77.0/24", "fd00:10:244:77::/64"}))
		Eventually(func(g Gomega) {
			n := &corev1.Node{}
			g.Expect(k8s.Get(ctx(), client.ObjectKey{Name: "adopt-1"}, n)).To(Succeed())
			g.Expect(n.Spec.PodCIDRs).To(Equal(cidrStrings(allocs["adopt-1"])))
		}, timeout, interval).Should(Succeed())
	})

	It("gives only the ClusterNetwork named default to IPAM and says so on others", func() {
		other := dualStackNetwork()
		other.Name = "staging"
		createNetwork(other)
		createNodes("nd", 2)
		Eventually(func(g Gomega) {
			cn := &v1.ClusterNetwork{}
			g.Expect(k8s.Get(ctx(), client.ObjectKey{Name: "staging"}, cn)).To(Succeed())
			c := condition(cn, v1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v1.ReasonNotDefault))
			g.Expect(c.Message).To(ContainSubstring(`only the ClusterNetwork named "default" is reconciled`))
		}, timeout, interval).Should(Succeed())
		Consistently(func() map[string][]v1.CIDR { return allocations() }, "1s", interval).Should(BeEmpty())
	})
})

func nodeNetworkVersions() map[string]string {
	var list v1.NodeNetworkList
	Expect(k8s.List(ctx(), &list)).To(Succeed())
	out := map[string]string{}
	for _, nn := range list.Items {
		out[nn.Name] = nn.ResourceVersion
	}
	return out
}

func usage(pool string) v1.CIDRUsage {
	for _, u := range getNetwork().Status.PodCIDRUsage {
		if u.CIDR == pool {
			return u
		}
	}
	return v1.CIDRUsage{}
}

func cidrStrings(cs []v1.CIDR) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// expectEvent waits for an event with the reason whose note contains text.
func expectEvent(reason, text string) {
	EventuallyWithOffset(1, func(g Gomega) {
		var list eventsv1.EventList
		g.Expect(k8s.List(ctx(), &list)).To(Succeed())
		var notes []string
		for _, e := range list.Items {
			if e.Reason == reason {
				notes = append(notes, e.Note)
			}
		}
		g.Expect(notes).To(ContainElement(ContainSubstring(text)))
	}, timeout, interval).Should(Succeed())
}
