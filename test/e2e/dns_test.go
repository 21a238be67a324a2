package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/lab"
)

// ask sends one question to server from inside the network namespace nsPath.
func ask(nsPath string, server netip.AddrPort, name string, qtype uint16) (*dns.Msg, error) {
	var r *dns.Msg
	err := lab.InNetns(nsPath, func() error {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), qtype)
		var err error
		r, _, err = (&dns.Client{Timeout: 3 * time.Second}).Exchange(q, server.String())
		return err
	})
	return r, err
}

// answerText is the data of the answer records, as text.
func answerText(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.PTR:
			out = append(out, v.Ptr)
		}
	}
	return out
}

// askFrom is where DNS questions are asked from: every node and every echo pod.
func askFrom() map[string]string {
	from := map[string]string{}
	for i := 1; i <= labNodes; i++ {
		n := labCfg.NodeAt(i)
		from["node "+n.Name] = filepath.Join("/run/netns", n.Netns)
	}
	for _, p := range echoPods() {
		from["pod "+p.name] = labCfg.EchoPodNetns(p.name)
	}
	return from
}

var _ = Describe("DNS in the lab", func() {
	It("has one upstream, the lab's own, which answers the lab zone and refuses every other name", func() {
		var want strings.Builder
		for _, a := range labCfg.DNSUpstreamAddrs() {
			want.WriteString("nameserver " + a.Addr().String() + "\n")
		}
		for i := 1; i <= labNodes; i++ {
			n := labCfg.NodeAt(i)
			conf, err := os.ReadFile(filepath.Join(labCfg.NodeDir(n), "resolv.conf"))
			Expect(err).NotTo(HaveOccurred())
			Expect(string(conf)).To(Equal(want.String()), "the resolv.conf %s's kubelet hands to pods", n.Name)
		}
		from := askFrom()
		Expect(from).To(HaveLen(2 * labNodes))
		gateway := labCfg.DNSUpstreamAddrs()[0].Addr().String()
		for who, nsPath := range from {
			for _, server := range labCfg.DNSUpstreamAddrs() {
				r, err := ask(nsPath, server, "gateway."+lab.LabDNSZone, dns.TypeA)
				Expect(err).NotTo(HaveOccurred(), "%s asking %s", who, server)
				Expect(answerText(r)).To(Equal([]string{gateway}), "%s asking %s", who, server)
				r, err = ask(nsPath, server, "example.com", dns.TypeA)
				Expect(err).NotTo(HaveOccurred())
				Expect(r.Rcode).To(Equal(dns.RcodeRefused), "%s: a name outside the lab zone must be refused, never looked up", who)
			}
		}
	})

	It("serves cluster names through kube-dns on both families from every node and pod", func() {
		Eventually(func(g Gomega) {
			cn := &v1.ClusterNetwork{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn)).To(Succeed())
			c := meta.FindStatusCondition(cn.Status.Conditions, v1.ConditionDNSAvailable)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(BeEquivalentTo("True"), c.Message)
		}, 3*time.Minute, time.Second).Should(Succeed())
		svc := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSServiceName}, svc)).To(Succeed())
		Expect(svc.Spec.ClusterIPs).To(HaveLen(2), "the lab is dual-stack")
		apiSvc := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, apiSvc)).To(Succeed())
		gateway := labCfg.DNSUpstreamAddrs()[0].Addr().String()
		for who, nsPath := range askFrom() {
			for _, ip := range svc.Spec.ClusterIPs {
				server := netip.AddrPortFrom(netip.MustParseAddr(ip), 53)
				r, err := ask(nsPath, server, "kubernetes.default.svc.cluster.local", dns.TypeA)
				Expect(err).NotTo(HaveOccurred(), "%s asking kube-dns at %s", who, server)
				Expect(answerText(r)).To(Equal([]string{apiSvc.Spec.ClusterIP}), "%s asking %s", who, server)
				arpa, _ := dns.ReverseAddr(svc.Spec.ClusterIPs[0])
				r, err = ask(nsPath, server, arpa, dns.TypePTR)
				Expect(err).NotTo(HaveOccurred())
				Expect(answerText(r)).To(Equal([]string{"kube-dns.kube-system.svc.cluster.local."}), "%s: PTR of kube-dns via %s", who, server)
				r, err = ask(nsPath, server, "gateway."+lab.LabDNSZone, dns.TypeA)
				Expect(err).NotTo(HaveOccurred())
				Expect(answerText(r)).To(Equal([]string{gateway}), "%s: CoreDNS forwards the lab zone to the lab's upstream", who)
			}
		}
	})
})
