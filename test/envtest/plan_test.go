package envtest

import (
	"bytes"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/plan"
)

// planOf plans the live ClusterNetwork edited by mutate, as `plexusctl plan --patch` would, and
// returns the result with its printed form.
func planOf(mutate func(*v1.ClusterNetwork)) (*plan.Result, string) {
	proposal := getNetwork()
	mutate(proposal)
	res, err := plan.Make(ctx(), k8s, proposal)
	Expect(err).NotTo(HaveOccurred())
	var out bytes.Buffer
	plan.Format(&out, res)
	GinkgoWriter.Println(out.String())
	return res, out.String()
}

// componentChanges returns component name → "action Kind ns/name" of every object a plan touches.
func componentChanges(res *plan.Result) map[string][]string {
	out := map[string][]string{}
	for _, c := range res.Components {
		for _, o := range c.Objects {
			if o.Action != apply.ActionUnchanged {
				out[c.Name] = append(out[c.Name], o.String())
			}
		}
	}
	return out
}

// noWrites asserts a plan changed nothing: the ClusterNetwork keeps its generation.
func noWrites(before *v1.ClusterNetwork) {
	after := getNetwork()
	ExpectWithOffset(1, after.Generation).To(Equal(before.Generation), "plan wrote the ClusterNetwork")
	ExpectWithOffset(1, after.ResourceVersion).To(Equal(before.ResourceVersion), "plan wrote the ClusterNetwork")
}

var _ = Describe("plexusctl plan", func() {
	AfterEach(func() {
		cleanup()
		removeDNS()
	})

	BeforeEach(func() {
		removeDNS()
		createNodes("plan", 3)
		createNetwork(dualStackNetwork())
		eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionTrue)
		Eventually(func() error { _, err := kubeDNSOrErr(); return err }, timeout, interval).Should(Succeed())
		// Settle: the operator has applied everything of generation 1.
		Eventually(func(g Gomega) {
			res, _ := planOf(func(*v1.ClusterNetwork) {})
			g.Expect(componentChanges(res)).To(BeEmpty())
		}, timeout, interval).Should(Succeed())
	})

	It("shows a refusal with the operator's own message, and the operator then refuses it the same way", func() {
		before := getNetwork()
		res, out := planOf(func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.NodeMaskSizeIPv4 = ptr.To[int32](26) })
		noWrites(before)
		Expect(res.Refused()).To(BeTrue())
		Expect(res.Reason).To(Equal(v1.ReasonUnsafeChange))
		Expect(out).To(ContainSubstring("REFUSED by the operator (UnsafeChange)"))
		Expect(out).To(ContainSubstring("cannot change to /26 while 3 nodes hold /24 pod CIDRs"))
		Expect(out).To(HaveSuffix("verdict: refused\n"))

		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.NodeMaskSizeIPv4 = ptr.To[int32](26) })
		cond := eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionFalse)
		Expect(cond.Reason).To(Equal(res.Reason))
		Expect(cond.Message).To(ContainSubstring(res.Errors.ToAggregate().Error()))
	})

	It("shows the API server's refusal of a field its schema forbids", func() {
		before := getNetwork()
		res, out := planOf(func(cn *v1.ClusterNetwork) { cn.Spec.Routing = &v1.Routing{Mode: "Carrier-Pigeon"} })
		noWrites(before)
		Expect(res.Refused()).To(BeTrue())
		Expect(res.APIRefusal).To(ContainSubstring("spec.routing.mode"))
		Expect(out).To(ContainSubstring("REFUSED by the API server"))
	})

	It("plans a safe pod CIDR addition that keeps every allocation, as the operator then does", func() {
		allocsBefore := allocations()
		res, out := planOf(func(cn *v1.ClusterNetwork) {
			cn.Spec.PodNetwork.CIDRs = append(cn.Spec.PodNetwork.CIDRs, "10.245.0.0/16")
		})
		Expect(res.Refused()).To(BeFalse(), out)
		Expect(res.Changes).To(HaveLen(1))
		Expect(res.Changes[0].Field).To(Equal("spec.podNetwork.cidrs"))
		Expect(res.Changes[0].Disruption).To(Equal(controllers.Hitless))
		Expect(res.Nodes).To(HaveLen(3))
		for _, n := range res.Nodes {
			Expect(n.Allocate).To(BeEmpty(), "node %s", n.Node)
			Expect(n.Release).To(BeEmpty(), "node %s", n.Node)
			Expect(n.Keep).To(HaveLen(2), "node %s", n.Node)
		}
		// CoreDNS serves the reverse zones of every pod CIDR: the new pool adds one to the Corefile.
		Expect(componentChanges(res)).To(Equal(map[string][]string{"dns": {"update ConfigMap kube-system/coredns"}}))
		Expect(out).To(MatchRegexp(`data\.Corefile: \+ kubernetes .*10\.245\.0\.0/16`))

		updateNetwork(func(cn *v1.ClusterNetwork) {
			cn.Spec.PodNetwork.CIDRs = append(cn.Spec.PodNetwork.CIDRs, "10.245.0.0/16")
		})
		eventuallyCondition(v1.ConditionConfigValid, metav1.ConditionTrue)
		Consistently(allocations, "1s", interval).Should(Equal(allocsBefore))
		Eventually(func(g Gomega) {
			again, _ := planOf(func(*v1.ClusterNetwork) {})
			g.Expect(componentChanges(again)).To(BeEmpty(), "the operator made the change the plan showed")
		}, timeout, interval).Should(Succeed())
	})

	It("plans a routing mode switch as rolling and leaves the agent's DaemonSet as it is", func() {
		dsBefore := &appsv1.DaemonSet{}
		Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: controllers.DefaultNamespace, Name: render.AgentName}, dsBefore)).To(Succeed())
		res, out := planOf(func(cn *v1.ClusterNetwork) { cn.Spec.Routing = &v1.Routing{Mode: v1.RoutingVXLAN} })
		Expect(res.Refused()).To(BeFalse(), out)
		Expect(res.Changes).To(ContainElement(And(
			HaveField("Field", "spec.routing.mode"), HaveField("From", "Auto"), HaveField("To", "VXLAN"),
			HaveField("Disruption", controllers.Rolling))))
		Expect(componentChanges(res)).NotTo(HaveKey("agent"))
		Expect(out).To(MatchRegexp(`spec\.routing\.mode\s+Auto\s+VXLAN\s+rolling`))

		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.Routing = &v1.Routing{Mode: v1.RoutingVXLAN} })
		Eventually(func() v1.RoutingMode { return getNetwork().Status.Effective.Routing.Mode }, timeout, interval).Should(Equal(v1.RoutingVXLAN))
		ds := &appsv1.DaemonSet{}
		Consistently(func() int64 {
			Expect(k8s.Get(ctx(), client.ObjectKeyFromObject(dsBefore), ds)).To(Succeed())
			return ds.Generation
		}, "1s", interval).Should(Equal(dsBefore.Generation), "the plan said the DaemonSet stays; the operator rolled it")
	})

	It("plans DNS disabled as an outage deleting exactly the objects the operator then deletes", func() {
		res, out := planOf(func(cn *v1.ClusterNetwork) { cn.Spec.DNS = &v1.DNS{Enabled: ptr.To(false)} })
		Expect(res.Refused()).To(BeFalse(), out)
		Expect(res.Changes).To(ContainElement(And(HaveField("Field", "spec.dns.enabled"), HaveField("Disruption", controllers.Outage))))
		var planned []string
		for _, c := range res.Components {
			if c.Name != "dns" {
				continue
			}
			for _, o := range c.Objects {
				Expect(o.Action).To(Equal(apply.ActionDelete), o.String())
				planned = append(planned, o.Kind+" "+o.Name)
			}
		}
		var want []string
		for _, o := range dnsObjects() {
			kinds, _, err := k8s.Scheme().ObjectKinds(o)
			Expect(err).NotTo(HaveOccurred())
			want = append(want, kinds[0].Kind+" "+o.GetName())
		}
		Expect(planned).To(ConsistOf(want))
		Expect(strings.Count(out, "delete ")).To(Equal(len(want)))

		updateNetwork(func(cn *v1.ClusterNetwork) { cn.Spec.DNS = &v1.DNS{Enabled: ptr.To(false)} })
		Eventually(func(g Gomega) {
			for _, o := range dnsObjects() {
				g.Expect(k8s.Get(ctx(), client.ObjectKeyFromObject(o), o)).NotTo(Succeed(), fmt.Sprintf("%T %s still there", o, o.GetName()))
			}
		}, timeout, interval).Should(Succeed())
	})

	It("plans a DNS replica change as an update of the Deployment's replicas, which the operator then makes", func() {
		res, out := planOf(func(cn *v1.ClusterNetwork) {
			if cn.Spec.DNS == nil {
				cn.Spec.DNS = &v1.DNS{}
			}
			cn.Spec.DNS.Replicas = ptr.To[int32](3)
		})
		Expect(res.Refused()).To(BeFalse(), out)
		Expect(componentChanges(res)).To(Equal(map[string][]string{"dns": {"update Deployment kube-system/coredns"}}))
		Expect(out).To(ContainSubstring("spec.replicas: 2 → 3"))

		updateNetwork(func(cn *v1.ClusterNetwork) {
			if cn.Spec.DNS == nil {
				cn.Spec.DNS = &v1.DNS{}
			}
			cn.Spec.DNS.Replicas = ptr.To[int32](3)
		})
		Eventually(func() int32 {
			d := &appsv1.Deployment{}
			Expect(k8s.Get(ctx(), client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSDeploymentName}, d)).To(Succeed())
			return *d.Spec.Replicas
		}, timeout, interval).Should(BeEquivalentTo(3))
		Eventually(func(g Gomega) {
			again, _ := planOf(func(*v1.ClusterNetwork) {})
			g.Expect(componentChanges(again)).To(BeEmpty(), "after the operator applied it, the plan of the same spec is empty")
		}, timeout, interval).Should(Succeed())
	})
})
