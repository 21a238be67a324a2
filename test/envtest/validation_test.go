package envtest

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

var _ = Describe("ClusterNetwork validation by the API server (OpenAPI + CEL)", func() {
	AfterEach(cleanup)

	DescribeTable("rejects a bad spec with a message naming the field and the fix",
		func(mutate func(*v1.ClusterNetwork), wantField, wantMessage string) {
			cn := dualStackNetwork()
			mutate(cn)
			err := k8s.Create(ctx(), cn)
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantField))
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("not a CIDR", func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.CIDRs[0] = "10.244.0.0/33" },
			"spec.podNetwork.cidrs[0]", "must be a CIDR such as 10.244.0.0/16 or fd00:10:244::/56"),
		Entry("host bits set", func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.CIDRs[0] = "10.244.1.0/16" },
			"spec.podNetwork.cidrs[0]", "must be written as the network address of its range"),
		Entry("pod CIDR of a family ipFamilies lacks", func(cn *v1.ClusterNetwork) {
			cn.Spec.IPFamilies = []v1.IPFamily{v1.IPv4}
			cn.Spec.ServiceNetwork.CIDRs = cn.Spec.ServiceNetwork.CIDRs[:1]
		}, "spec", "podNetwork.cidrs: every CIDR must be of a family listed in ipFamilies"),
		Entry("family without a pod CIDR", func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.CIDRs = cn.Spec.PodNetwork.CIDRs[:1] },
			"spec", "every family in ipFamilies needs at least one pod CIDR"),
		Entry("primary family order", func(cn *v1.ClusterNetwork) {
			cn.Spec.PodNetwork.CIDRs = []v1.CIDR{"fd00:10:244::/56", "10.244.0.0/16"}
		}, "spec", "the first CIDR must be of the primary family"),
		Entry("service CIDRs out of family order", func(cn *v1.ClusterNetwork) {
			cn.Spec.ServiceNetwork.CIDRs = []v1.CIDR{"fd00:10:96::/112", "10.96.0.0/16"}
		}, "spec", "serviceNetwork.cidrs: list exactly one CIDR per entry of ipFamilies, in the same order"),
		Entry("two service CIDRs of one family", func(cn *v1.ClusterNetwork) {
			cn.Spec.ServiceNetwork.CIDRs = []v1.CIDR{"10.96.0.0/16", "10.97.0.0/16"}
		}, "spec", "serviceNetwork.cidrs: list exactly one CIDR per entry of ipFamilies"),
		Entry("duplicate family", func(cn *v1.ClusterNetwork) { cn.Spec.IPFamilies = []v1.IPFamily{v1.IPv4, v1.IPv4} },
			"spec.ipFamilies", "ipFamilies must not list a family twice"),
		Entry("unknown family", func(cn *v1.ClusterNetwork) { cn.Spec.IPFamilies = []v1.IPFamily{"IPv5"} },
			"spec.ipFamilies[0]", `supported values: "IPv4", "IPv6"`),
		Entry("node mask shorter than the pod CIDR", func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.NodeMaskSizeIPv4 = ptr.To[int32](12) },
			"spec.podNetwork", "nodeMaskSizeIPv4 (default 24) must be at least the prefix length of every IPv4 pod CIDR"),
		Entry("node mask cutting too many nodes", func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.NodeMaskSizeIPv6 = ptr.To[int32](80) },
			"spec.podNetwork", "the node mask size may be at most 16 bits longer than the CIDR's prefix length"),
		Entry("node mask out of bounds", func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.NodeMaskSizeIPv4 = ptr.To[int32](31) },
			"spec.podNetwork.nodeMaskSizeIPv4", "should be less than or equal to 30"),
		Entry("pod CIDRs overlapping each other", func(cn *v1.ClusterNetwork) {
			cn.Spec.PodNetwork.CIDRs = append(cn.Spec.PodNetwork.CIDRs, "10.244.128.0/17")
		}, "spec.podNetwork", "podNetwork.cidrs must not overlap each other"),
		Entry("pod CIDR overlapping the service CIDR", func(cn *v1.ClusterNetwork) { cn.Spec.PodNetwork.CIDRs[0] = "10.96.0.0/12" },
			"spec", "podNetwork.cidrs and serviceNetwork.cidrs must not overlap"),
		Entry("node-port range syntax", func(cn *v1.ClusterNetwork) { cn.Spec.ServiceNetwork.NodePortRange = "30000:32767" },
			"spec.serviceNetwork.nodePortRange", "nodePortRange must look like 30000-32767"),
		Entry("node-port range bounds", func(cn *v1.ClusterNetwork) { cn.Spec.ServiceNetwork.NodePortRange = "32767-99999" },
			"spec.serviceNetwork.nodePortRange", "1 <= first < last <= 65535"),
		Entry("DNS service IP outside the service CIDRs", func(cn *v1.ClusterNetwork) { cn.Spec.DNS = &v1.DNS{ServiceIP: "10.244.0.10"} },
			"spec", "dns.serviceIP must be inside one of serviceNetwork.cidrs"),
		Entry("DNS service IP not an IP", func(cn *v1.ClusterNetwork) { cn.Spec.DNS = &v1.DNS{ServiceIP: "ten"} },
			"spec.dns.serviceIP", "dns.serviceIP must be an IP address"),
		Entry("IPv6 with a too small MTU", func(cn *v1.ClusterNetwork) { cn.Spec.Routing = &v1.Routing{MTU: ptr.To[int32](1200)} },
			"spec", "routing.mtu must be at least 1280 when IPv6 is enabled"),
		Entry("unknown routing mode", func(cn *v1.ClusterNetwork) { cn.Spec.Routing = &v1.Routing{Mode: "BGP"} },
			"spec.routing.mode", `supported values: "Direct", "VXLAN", "Auto"`),
		Entry("upstream that is not an IP", func(cn *v1.ClusterNetwork) { cn.Spec.DNS = &v1.DNS{Upstreams: []string{"dns.example"}} },
			"spec.dns.upstreams", "dns.upstreams must be IP addresses"),
	)

	It("accepts a minimal single-stack spec and shows it in the printer columns' fields", func() {
		cn := dualStackNetwork()
		cn.Spec.IPFamilies = []v1.IPFamily{v1.IPv4}
		cn.Spec.PodNetwork.CIDRs = cn.Spec.PodNetwork.CIDRs[:1]
		cn.Spec.ServiceNetwork.CIDRs = cn.Spec.ServiceNetwork.CIDRs[:1]
		createNetwork(cn)
		Expect(getNetwork().Spec.PodNetwork.NodeMaskSizeIPv4).To(BeNil(), "the CRD must not write defaults into the spec; they belong in status.effective")
	})

	It("refuses to change ipFamilies after creation", func() {
		createNetwork(dualStackNetwork())
		// The operator writes status meanwhile, so an update can lose the resourceVersion race;
		// retry those until the API server answers on the change itself.
		var err error
		Eventually(func() bool {
			cn := getNetwork()
			cn.Spec.IPFamilies = []v1.IPFamily{v1.IPv6, v1.IPv4}
			cn.Spec.PodNetwork.CIDRs = []v1.CIDR{"fd00:10:244::/56", "10.244.0.0/16"}
			cn.Spec.ServiceNetwork.CIDRs = []v1.CIDR{"fd00:10:96::/112", "10.96.0.0/16"}
			err = k8s.Update(ctx(), cn)
			return !apierrors.IsConflict(err)
		}, timeout, interval).Should(BeTrue())
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.ipFamilies"))
		Expect(err.Error()).To(ContainSubstring("ipFamilies cannot be changed after creation"))
	})
})
