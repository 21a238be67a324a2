package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	"github.com/plexus-net/plexus/internal/dnsupstream"
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

// resolvConf is what a stub resolver reads from /etc/resolv.conf.
type resolvConf struct {
	nameservers, search []string
	ndots               int
}

// parseResolvConf reads nameserver, search and options ndots (glibc's default ndots is 1).
func parseResolvConf(text string) resolvConf {
	c := resolvConf{ndots: 1}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			c.nameservers = append(c.nameservers, f[1])
		case "search":
			c.search = f[1:]
		case "options":
			for _, o := range f[1:] {
				if v, ok := strings.CutPrefix(o, "ndots:"); ok {
					if n, err := strconv.Atoi(v); err == nil {
						c.ndots = n
					}
				}
			}
		}
	}
	return c
}

// candidates are the names glibc tries for name, in order: a name with at least ndots dots is
// tried as-is first, any other after the search domains; a name ending in a dot only as-is.
func (c resolvConf) candidates(name string) []string {
	if strings.HasSuffix(name, ".") {
		return []string{name}
	}
	var searched []string
	for _, s := range c.search {
		searched = append(searched, dns.Fqdn(name+"."+s))
	}
	if strings.Count(name, ".") >= c.ndots {
		return append([]string{dns.Fqdn(name)}, searched...)
	}
	return append(searched, dns.Fqdn(name))
}

// searchLookup resolves name the way glibc does with the pod's resolv.conf, from inside the pod's
// network namespace: each candidate in turn at the first nameserver, until one has an answer. It
// returns the name that answered.
func searchLookup(nsPath string, c resolvConf, name string, qtype uint16) (string, *dns.Msg, error) {
	if len(c.nameservers) == 0 {
		return "", nil, fmt.Errorf("resolv.conf has no nameserver")
	}
	server := netip.AddrPortFrom(netip.MustParseAddr(c.nameservers[0]), 53)
	var tried []string
	for _, fqdn := range c.candidates(name) {
		r, err := ask(nsPath, server, fqdn, qtype)
		if err != nil {
			return "", nil, fmt.Errorf("%s via %s: %w", fqdn, server, err)
		}
		if r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return fqdn, r, nil
		}
		tried = append(tried, fqdn+" "+dns.RcodeToString[r.Rcode])
	}
	return "", nil, fmt.Errorf("%s: no candidate answered: %v", name, tried)
}

// testUpstreamHost is the host byte of the addresses the test's DNS server takes on the underlay
// bridge (the lab gives nodes low addresses).
const testUpstreamHost = 0xfd

// startTestUpstream runs a DNS server of the test in the lab's underlay namespace, on two addresses
// it adds to the bridge, port 53 (forward zones take bare IPs). It answers the lab zone like the
// lab's upstream (same gateway addresses) but with its own TXT identity, plus host.<forwardZone>
// at its own addresses. Everything goes when the spec ends.
func startTestUpstream() []netip.Addr {
	v4 := labCfg.UnderlayV4.Addr().As4()
	v4[3] = testUpstreamHost
	v6 := labCfg.UnderlayV6.Addr().As16()
	v6[15] = testUpstreamHost
	addrs := []netip.Addr{netip.AddrFrom4(v4), netip.AddrFrom16(v6)}
	ns := labCfg.UnderlayNetns()
	for i, a := range addrs {
		prefix := netip.PrefixFrom(a, labCfg.UnderlayV4.Bits())
		args := []string{"addr", "add", prefix.String(), "dev", lab.BridgeName}
		if i == 1 {
			prefix = netip.PrefixFrom(a, labCfg.UnderlayV6.Bits())
			args = []string{"-6", "addr", "add", prefix.String(), "dev", lab.BridgeName, "nodad"}
		}
		ipIn(ns, args...)
		DeferCleanup(func() { _ = exec.Command("ip", "-n", ns, "addr", "del", prefix.String(), "dev", lab.BridgeName).Run() })
	}
	gateway := labCfg.DNSUpstreamAddrs()
	zone := dnsupstream.Zone{Origin: lab.LabDNSZone, Identity: testZoneIdentity, Hosts: map[string][]netip.Addr{
		"gateway": {gateway[0].Addr(), gateway[1].Addr()},
		"host." + strings.TrimSuffix(forwardZone, "."+strings.TrimSuffix(lab.LabDNSZone, ".")): addrs,
	}}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, len(addrs))
	ready := make(chan struct{}, len(addrs))
	for _, a := range addrs {
		go func() {
			done <- lab.InNetns(filepath.Join("/run/netns", ns), func() error {
				return dnsupstream.Serve(sctx, netip.AddrPortFrom(a, 53).String(), zone, func(_, _ net.Addr) { ready <- struct{}{} })
			})
		}()
	}
	DeferCleanup(func() {
		stop()
		for range addrs {
			Expect(<-done).To(Succeed(), "the test's DNS server")
		}
	})
	for range addrs {
		select {
		case <-ready:
		case err := <-done:
			Fail(fmt.Sprintf("the test's DNS server did not start: %v", err))
		case <-time.After(10 * time.Second):
			Fail("the test's DNS server did not start in 10s")
		}
	}
	return addrs
}

// savedDNS is spec.dns as it was before a spec changed it (nil: nothing changed).
var savedDNS *v1.DNS

// setDNS changes spec.dns of the ClusterNetwork; the first change saves it and restores it when
// the spec ends.
func setDNS(change func(*v1.DNS)) {
	Eventually(func() error {
		cn := clusterNetwork()
		if cn.Spec.DNS == nil {
			cn.Spec.DNS = &v1.DNS{}
		}
		if savedDNS == nil {
			savedDNS = cn.Spec.DNS.DeepCopy()
			DeferCleanup(restoreDNS)
		}
		change(cn.Spec.DNS)
		return k8s.Update(ctx, cn)
	}, 30*time.Second, time.Second).Should(Succeed(), "update spec.dns")
}

// restoreDNS puts back the spec.dns setDNS saved.
func restoreDNS() {
	if savedDNS == nil {
		return
	}
	Eventually(func() error {
		cn := clusterNetwork()
		cn.Spec.DNS = savedDNS.DeepCopy()
		return k8s.Update(ctx, cn)
	}, 30*time.Second, time.Second).Should(Succeed(), "restore spec.dns")
	savedDNS = nil
}

// lookupStream asks name (A) every 50ms from nsPath until stop, retrying a failed lookup once;
// stop returns how many lookups ran and how many failed their retry too, lost describes those.
func lookupStream(nsPath string, server netip.AddrPort, name string) (stop func() (int, int), lost func() []string) {
	done := make(chan struct{})
	finished := make(chan struct{})
	var n int
	var failures []string
	try := func() error {
		r, err := ask(nsPath, server, name, dns.TypeA)
		if err == nil && (r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0) {
			err = fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return err
	}
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			n++
			if err := try(); err != nil {
				if err2 := try(); err2 != nil {
					failures = append(failures, time.Now().Format("15:04:05.000")+": "+err.Error()+"; retry: "+err2.Error())
				}
			}
		}
	}()
	stop = func() (int, int) {
		close(done)
		<-finished
		return n, len(failures)
	}
	return stop, func() []string { return failures }
}
