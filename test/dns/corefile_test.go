package clusterdns

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/dnsupstream"
)

const (
	serviceCIDRv4 = "10.96.0.0/16"
	serviceCIDRv6 = "fd00:10:96::/112"
	ns            = "web"
	domain        = "cluster.local"
)

// spec is the dual-stack cluster the Corefile is rendered for.
func spec(forwardZoneUpstream, upstream string) v1.ClusterNetworkSpec {
	s := v1.ClusterNetworkSpec{
		IPFamilies:     []v1.IPFamily{v1.IPv4, v1.IPv6},
		PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16", "fd00:10:244::/56"}},
		ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{serviceCIDRv4, serviceCIDRv6}},
		DNS: &v1.DNS{
			// The API takes IPs (port 53); the test's servers listen on loopback ports, which the
			// Corefile's forward takes as IP:port.
			Upstreams:    []string{upstream},
			ForwardZones: []v1.ForwardZone{{Zone: "lab.plexus.test", Upstreams: []string{forwardZoneUpstream}}},
		},
	}
	return netconfig.Default(s, netconfig.Images{})
}

func fqdn(name string) string { return dns.Fqdn(name) }

// lookup asks CoreDNS one question over net (udp or tcp).
func lookup(c *coreDNS, net, name string, qtype uint16) *dns.Msg {
	GinkgoHelper()
	q := new(dns.Msg)
	q.SetQuestion(fqdn(name), qtype)
	r, _, err := (&dns.Client{Net: net, Timeout: 5 * time.Second}).Exchange(q, c.dnsAddr)
	Expect(err).NotTo(HaveOccurred(), "%s %s", name, dns.TypeToString[qtype])
	return r
}

// answers returns the answer records' data as text.
func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.PTR:
			out = append(out, v.Ptr)
		case *dns.CNAME:
			out = append(out, "CNAME "+v.Target)
		case *dns.TXT:
			out = append(out, v.Txt...)
		case *dns.SRV:
			out = append(out, v.Target+":"+strconv.Itoa(int(v.Port)))
		}
	}
	return out
}

func slice(name, service string, family discoveryv1.AddressType, port int32, portName, ip, hostname string) *discoveryv1.EndpointSlice {
	ep := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}
	if hostname != "" {
		ep.Hostname = ptr.To(hostname)
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: family,
		Endpoints:   []discoveryv1.Endpoint{ep},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
}

var _ = Describe("the rendered Corefile, served by CoreDNS", Ordered, func() {
	var (
		c       *coreDNS
		echo    corev1.Service
		zoneB   string
		zoneTXT = func() []string { return answers(lookup(c, "udp", "echo.lab.plexus.test", dns.TypeTXT)) }
	)

	BeforeAll(func() {
		Expect(k8s.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		echo = corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
			Spec: corev1.ServiceSpec{
				IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyRequireDualStack),
				IPFamilies:     []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
				Selector:       map[string]string{"app": "echo"},
				Ports:          []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
			},
		}
		Expect(k8s.Create(suiteCtx, &echo)).To(Succeed())
		Expect(echo.Spec.ClusterIPs).To(HaveLen(2))
		Expect(k8s.Create(suiteCtx, slice("echo-v4", "echo", discoveryv1.AddressTypeIPv4, 8080, "http", "10.244.1.5", ""))).To(Succeed())
		Expect(k8s.Create(suiteCtx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
			Spec: corev1.ServiceSpec{
				ClusterIP:      corev1.ClusterIPNone,
				IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyRequireDualStack),
				Selector:       map[string]string{"app": "db"},
				Ports:          []corev1.ServicePort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}},
			},
		})).To(Succeed())
		Expect(k8s.Create(suiteCtx, slice("db-v4", "db", discoveryv1.AddressTypeIPv4, 5432, "pg", "10.244.2.7", "db-0"))).To(Succeed())
		Expect(k8s.Create(suiteCtx, slice("db-v6", "db", discoveryv1.AddressTypeIPv6, 5432, "pg", "fd00:10:244:2::7", "db-0"))).To(Succeed())
		Expect(k8s.Create(suiteCtx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: ns},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "echo.lab.plexus.test"},
		})).To(Succeed())

		hosts := map[string][]netip.Addr{"echo": {netip.MustParseAddr("10.99.0.80"), netip.MustParseAddr("fd10:99::80")}}
		zoneA := startUpstream(dnsupstream.Zone{Origin: "lab.plexus.test", Identity: "forward-zone-a", Hosts: hosts})
		zoneB = startUpstream(dnsupstream.Zone{Origin: "lab.plexus.test", Identity: "forward-zone-b", Hosts: hosts})
		upstream := startUpstream(dnsupstream.Zone{Origin: "upstream.test", Identity: "default-upstream",
			Hosts: map[string][]netip.Addr{"www": {netip.MustParseAddr("192.0.2.80")}}})
		c = startCoreDNS(render.CorefileFor(spec(zoneA, upstream)))
	})

	It("answers A and AAAA of a dual-stack ClusterIP Service, over UDP and TCP", func() {
		name := "echo." + ns + ".svc." + domain
		for _, net := range []string{"udp", "tcp"} {
			Expect(answers(lookup(c, net, name, dns.TypeA))).To(Equal([]string{echo.Spec.ClusterIPs[0]}))
			Expect(answers(lookup(c, net, name, dns.TypeAAAA))).To(Equal([]string{echo.Spec.ClusterIPs[1]}))
		}
	})

	It("answers SRV for a named port", func() {
		r := lookup(c, "udp", "_http._tcp.echo."+ns+".svc."+domain, dns.TypeSRV)
		Expect(answers(r)).To(Equal([]string{"echo." + ns + ".svc." + domain + ".:80"}))
	})

	It("answers PTR for both of a Service's IPs, from the reverse zones of the service CIDRs", func() {
		for _, ip := range echo.Spec.ClusterIPs {
			arpa, err := dns.ReverseAddr(ip)
			Expect(err).NotTo(HaveOccurred())
			Expect(answers(lookup(c, "udp", arpa, dns.TypePTR))).To(Equal([]string{"echo." + ns + ".svc." + domain + "."}), ip)
		}
	})

	It("answers a headless Service with its ready endpoints, both families, and PTR for a pod IP", func() {
		name := "db." + ns + ".svc." + domain
		Expect(answers(lookup(c, "udp", name, dns.TypeA))).To(Equal([]string{"10.244.2.7"}))
		Expect(answers(lookup(c, "udp", name, dns.TypeAAAA))).To(Equal([]string{"fd00:10:244:2::7"}))
		for _, ip := range []string{"10.244.2.7", "fd00:10:244:2::7"} {
			arpa, _ := dns.ReverseAddr(ip)
			Expect(answers(lookup(c, "udp", arpa, dns.TypePTR))).To(Equal([]string{"db-0." + name + "."}), ip)
		}
	})

	It("answers a pod's A record and an ExternalName's CNAME", func() {
		Expect(answers(lookup(c, "udp", "10-244-1-5."+ns+".pod."+domain, dns.TypeA))).To(Equal([]string{"10.244.1.5"}))
		Expect(answers(lookup(c, "udp", "ext."+ns+".svc."+domain, dns.TypeA))).To(ContainElement("CNAME echo.lab.plexus.test."))
	})

	It("answers NXDOMAIN for unknown names and addresses of the cluster, without asking upstream", func() {
		Expect(lookup(c, "udp", "nope."+ns+".svc."+domain, dns.TypeA).Rcode).To(Equal(dns.RcodeNameError))
		arpa, _ := dns.ReverseAddr("10.244.9.9")
		Expect(lookup(c, "udp", arpa, dns.TypePTR).Rcode).To(Equal(dns.RcodeNameError))
	})

	It("forwards a forward zone to its own resolver and everything else to the upstreams", func() {
		Expect(answers(lookup(c, "udp", "echo.lab.plexus.test", dns.TypeA))).To(Equal([]string{"10.99.0.80"}))
		Expect(answers(lookup(c, "udp", "echo.lab.plexus.test", dns.TypeAAAA))).To(Equal([]string{"fd10:99::80"}))
		Expect(zoneTXT()).To(Equal([]string{"forward-zone-a"}))
		Expect(answers(lookup(c, "udp", "www.upstream.test", dns.TypeA))).To(Equal([]string{"192.0.2.80"}))
		Expect(answers(lookup(c, "udp", "www.upstream.test", dns.TypeTXT))).To(Equal([]string{"default-upstream"}))
		// The forward zone's resolver is not asked for other names, and the upstream refuses them.
		Expect(lookup(c, "udp", "example.com", dns.TypeA).Answer).To(BeEmpty())
	})

	It("serves a Service created after it started", func() {
		late := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: ns},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "late"}},
		}
		Expect(k8s.Create(suiteCtx, late)).To(Succeed())
		Eventually(func() []string { return answers(lookup(c, "udp", "late."+ns+".svc."+domain, dns.TypeA)) }).
			WithTimeout(30 * time.Second).Should(Equal([]string{late.Spec.ClusterIP}))
	})

	It("applies a changed forward zone without a restart and without a failed lookup", func() {
		pid := c.cmd.Process.Pid
		c.reconfigure(func(cfg *render.CorefileConfig) { cfg.ForwardZones[0].Upstreams = []string{zoneB} })
		// The reload plugin polls every 10s (with jitter); every cluster lookup in the meantime
		// must keep answering.
		Eventually(func() []string {
			Expect(answers(lookup(c, "udp", "echo."+ns+".svc."+domain, dns.TypeA))).To(Equal([]string{echo.Spec.ClusterIPs[0]}))
			return zoneTXT()
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Equal([]string{"forward-zone-b"}))
		Expect(c.cmd.ProcessState).To(BeNil(), "CoreDNS exited")
		Expect(c.cmd.Process.Pid).To(Equal(pid))
	})
})
