package envtest

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

var _ = Describe("ClusterNetwork dns validation by the API server", func() {
	AfterEach(cleanup)

	DescribeTable("rejects DNS settings that would break cluster names",
		func(dns v1.DNS, wantField, wantMessage string) {
			cn := dualStackNetwork()
			cn.Spec.DNS = &dns
			err := k8s.Create(ctx(), cn)
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantField))
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("forwarding the cluster domain", v1.DNS{ForwardZones: []v1.ForwardZone{{Zone: "cluster.local.", Upstreams: []string{"192.0.2.53"}}}},
			"spec.dns", "dns.forwardZones must not hold the cluster domain"),
		Entry("forwarding a zone inside a chosen cluster domain", v1.DNS{ClusterDomain: "k8s.corp", ForwardZones: []v1.ForwardZone{{Zone: "svc.k8s.corp", Upstreams: []string{"192.0.2.53"}}}},
			"spec.dns", "dns.forwardZones must not hold the cluster domain"),
		Entry("forwarding a zone above the cluster domain", v1.DNS{ForwardZones: []v1.ForwardZone{{Zone: "local", Upstreams: []string{"192.0.2.53"}}}},
			"spec.dns", "dns.forwardZones must not hold the cluster domain"),
		Entry("an unknown pod records mode", v1.DNS{PodRecords: "Sometimes"},
			"spec.dns.podRecords", `supported values: "Insecure", "Verified", "Disabled"`),
	)

	It("accepts forward zones beside the cluster domain and every pod records mode", func() {
		cn := dualStackNetwork()
		cn.Spec.DNS = &v1.DNS{
			PodRecords:   v1.DNSPodRecordsVerified,
			ForwardZones: []v1.ForwardZone{{Zone: "corp.example", Upstreams: []string{"192.0.2.53"}}, {Zone: "notcluster.local", Upstreams: []string{"192.0.2.54"}}},
		}
		Expect(k8s.Create(ctx(), cn)).To(Succeed())
	})
})
