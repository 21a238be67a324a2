package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// headlessName is the headless Service the records spec makes; it selects headlessLabel.
	headlessName  = "echo-headless"
	headlessLabel = "plexus.dev/e2e-headless"
	// unreadyPodName is a pod the headless Service selects that never turns Ready.
	unreadyPodName = "echo-unready"
	// externalSvcName is an ExternalName Service pointing at the lab upstream's gateway name.
	externalSvcName = "echo-external"
	// testZoneIdentity is the TXT answer of the DNS server the test runs.
	testZoneIdentity = "plexus-e2e-test-upstream"
	// forwardZone is the zone the forward-zone spec sends to the test's server.
	forwardZone = "fwd.lab.plexus.test"
)

// svcName is the FQDN of a Service in the workload namespace.
func svcName(name string) string {
	return name + "." + lab.WorkloadNamespace + ".svc." + clusterDomain() + "."
}

// dashed is how CoreDNS writes an IP as one DNS label (10-244-1-5, fd00-10-244-1--5).
func dashed(ip string) string {
	d := strings.NewReplacer(".", "-", ":", "-").Replace(ip)
	if strings.HasSuffix(d, "-") {
		d += "0"
	}
	return d
}

// qtypeOf is A for an IPv4 address and AAAA for an IPv6 one.
func qtypeOf(ip string) uint16 {
	if netip.MustParseAddr(ip).Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

// kubeDNSServers are the kube-dns Service's addresses, port 53, both families.
func kubeDNSServers() []netip.AddrPort {
	svc := &corev1.Service{}
	ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSServiceName}, svc)).To(Succeed())
	ExpectWithOffset(1, svc.Spec.ClusterIPs).To(HaveLen(2), "the lab is dual-stack")
	var out []netip.AddrPort
	for _, ip := range svc.Spec.ClusterIPs {
		out = append(out, netip.AddrPortFrom(netip.MustParseAddr(ip), 53))
	}
	return out
}

// echoPodsOnEveryNode is the running echo pods (one per node) with their network namespaces.
func echoPodsOnEveryNode() map[string]corev1.Pod {
	var pods corev1.PodList
	ExpectWithOffset(1, k8s.List(ctx, &pods, client.InNamespace(lab.WorkloadNamespace), client.MatchingLabels{"app": lab.EchoName})).To(Succeed())
	out := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && len(p.Status.PodIPs) == 2 {
			out[p.Spec.NodeName] = p
		}
	}
	ExpectWithOffset(1, out).To(HaveLen(labNodes), "an echo pod with two IPs on every node")
	return out
}

// echoService reads the echo ClusterIP Service.
func echoService() *corev1.Service {
	svc := &corev1.Service{}
	ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKey{Namespace: lab.WorkloadNamespace, Name: lab.EchoName}, svc)).To(Succeed())
	ExpectWithOffset(1, svc.Spec.ClusterIPs).To(HaveLen(2))
	return svc
}

// askOK asks and expects an answer without error.
func askOK(nsPath string, server netip.AddrPort, name string, qtype uint16) *dns.Msg {
	r, err := ask(nsPath, server, name, qtype)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s %s via %s", name, dns.TypeToString[qtype], server)
	return r
}

// ipsOfFamily are the IPs of the pods whose family answers qtype, sorted.
func ipsOfFamily(pods []corev1.Pod, qtype uint16) []string {
	var out []string
	for _, p := range pods {
		for _, ip := range p.Status.PodIPs {
			if qtypeOf(ip.IP) == qtype {
				out = append(out, ip.IP)
			}
		}
	}
	slices.Sort(out)
	return out
}

// sorted is a sorted copy.
func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// makeHeadlessService labels the echo pods, starts a pod that never turns Ready with the same
// label, and creates a dual-stack headless Service and an ExternalName Service; all is removed
// when the spec ends.
func makeHeadlessService() (unready *corev1.Pod) {
	for _, p := range echoPodsOnEveryNode() {
		patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:"yes"}}}`, headlessLabel))
		Expect(k8s.Patch(ctx, &p, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
		DeferCleanup(func() {
			undo := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, headlessLabel))
			_ = client.IgnoreNotFound(k8s.Patch(context.Background(), &p, client.RawPatch(types.MergePatchType, undo)))
		})
	}
	dual := corev1.IPFamilyPolicyRequireDualStack
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: headlessName, Namespace: lab.WorkloadNamespace},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, IPFamilyPolicy: &dual, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			Selector: map[string]string{headlessLabel: "yes"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	external := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: externalSvcName, Namespace: lab.WorkloadNamespace},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "gateway." + strings.TrimSuffix(lab.LabDNSZone, ".")},
	}
	grace := int64(0)
	unready = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: unreadyPodName, Namespace: lab.WorkloadNamespace, Labels: map[string]string{headlessLabel: "yes"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "echo", Image: lab.EchoImage, ImagePullPolicy: corev1.PullNever,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				// Nothing listens on port 1: the pod runs and is never Ready.
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(1)}}, PeriodSeconds: 1},
			}},
		},
	}
	for _, o := range []client.Object{headless, external, unready} {
		Expect(k8s.Create(ctx, o)).To(Succeed(), "create %s", o.GetName())
		DeferCleanup(func() {
			_ = client.IgnoreNotFound(k8s.Delete(context.Background(), o, client.GracePeriodSeconds(0)))
		})
	}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(unready), unready)).To(Succeed())
		g.Expect(unready.Status.Phase).To(Equal(corev1.PodRunning))
		g.Expect(unready.Status.PodIPs).To(HaveLen(2))
	}, 2*time.Minute, time.Second).Should(Succeed(), "the unready pod runs with two IPs")
	return unready
}

var _ = Describe("DNS records", Ordered, func() {
	BeforeAll(func() {
		Eventually(func(g Gomega) {
			cn := &v1.ClusterNetwork{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(cn.Status.Conditions, v1.ConditionDNSAvailable)).To(BeTrue())
		}, 3*time.Minute, time.Second).Should(Succeed(), "DNSAvailable")
	})

	It("answers Service, headless, SRV, PTR, ExternalName and pod records on both families from a pod on every node", func() {
		unready := makeHeadlessService()
		echo := echoService()
		pods := echoPodsOnEveryNode()
		readyPods := slices.Collect(maps.Values(pods))
		for node, pod := range pods {
			nsPath := labCfg.EchoPodNetns(pod.Name)
			Expect(nsPath).NotTo(BeEmpty(), "netns of %s", pod.Name)
			for _, server := range kubeDNSServers() {
				at := fmt.Sprintf("pod %s on %s via %s", pod.Name, node, server)
				for _, ip := range echo.Spec.ClusterIPs {
					Expect(answerText(askOK(nsPath, server, svcName(lab.EchoName), qtypeOf(ip)))).To(Equal([]string{ip}), "%s: ClusterIP of echo", at)
					arpa, err := dns.ReverseAddr(ip)
					Expect(err).NotTo(HaveOccurred())
					Expect(answerText(askOK(nsPath, server, arpa, dns.TypePTR))).To(Equal([]string{svcName(lab.EchoName)}), "%s: PTR of %s", at, ip)
				}
				for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
					want := ipsOfFamily(readyPods, qtype)
					Eventually(func() []string {
						r, err := ask(nsPath, server, svcName(headlessName), qtype)
						if err != nil {
							return []string{err.Error()}
						}
						return sorted(answerText(r))
					}, time.Minute, 500*time.Millisecond).Should(Equal(want), "%s: headless %s answers the ready pods only (unready %v)", at, dns.TypeToString[qtype], unready.Status.PodIPs)
				}
				r := askOK(nsPath, server, "_http._tcp."+svcName(lab.EchoName), dns.TypeSRV)
				Expect(r.Answer).To(HaveLen(1), "%s: SRV of the named port", at)
				srv, ok := r.Answer[0].(*dns.SRV)
				Expect(ok).To(BeTrue(), "%s: %v", at, r.Answer)
				Expect(srv.Port).To(BeEquivalentTo(80))
				Expect(srv.Target).To(Equal(svcName(lab.EchoName)))

				r = askOK(nsPath, server, svcName(externalSvcName), dns.TypeCNAME)
				Expect(r.Answer).NotTo(BeEmpty(), "%s: ExternalName", at)
				cname, ok := r.Answer[0].(*dns.CNAME)
				Expect(ok).To(BeTrue(), "%s: %v", at, r.Answer)
				Expect(cname.Target).To(Equal("gateway." + lab.LabDNSZone))

				for _, p := range pods {
					for _, ip := range p.Status.PodIPs {
						own := dashed(ip.IP) + "." + lab.WorkloadNamespace + ".pod." + clusterDomain() + "."
						Expect(answerText(askOK(nsPath, server, own, qtypeOf(ip.IP)))).To(Equal([]string{ip.IP}), "%s: pod record %s", at, own)
						arpa, err := dns.ReverseAddr(ip.IP)
						Expect(err).NotTo(HaveOccurred())
						Expect(answerText(askOK(nsPath, server, arpa, dns.TypePTR))).To(ContainElement(dashed(ip.IP)+"."+svcName(lab.EchoName)),
							"%s: PTR of pod IP %s", at, ip.IP)
					}
				}
			}
		}
	})

	It("resolves short names through each pod's own resolv.conf search path", func() {
		echo := echoService()
		kubeDNS := kubeDNSServers()
		for node, pod := range echoPodsOnEveryNode() {
			nsPath := labCfg.EchoPodNetns(pod.Name)
			Expect(nsPath).NotTo(BeEmpty())
			// nsPath is /proc/<pid>/ns/net: the container's root is /proc/<pid>/root.
			raw, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(nsPath)), "root", "etc", "resolv.conf"))
			Expect(err).NotTo(HaveOccurred())
			conf := parseResolvConf(string(raw))
			at := fmt.Sprintf("pod %s on %s", pod.Name, node)
			Expect(conf.nameservers).To(ContainElement(kubeDNS[0].Addr().String()), "%s: resolv.conf %q", at, raw)
			Expect(conf.search).To(HaveExactElements(lab.WorkloadNamespace+".svc."+clusterDomain(), "svc."+clusterDomain(), clusterDomain()), "%s", at)
			Expect(conf.ndots).To(Equal(5), "%s", at)
			for _, short := range []string{lab.EchoName, lab.EchoName + "." + lab.WorkloadNamespace} {
				for _, ip := range echo.Spec.ClusterIPs {
					name, r, err := searchLookup(nsPath, conf, short, qtypeOf(ip))
					Expect(err).NotTo(HaveOccurred(), "%s: %s", at, short)
					Expect(name).To(Equal(svcName(lab.EchoName)), "%s: %q expands to", at, short)
					Expect(answerText(r)).To(Equal([]string{ip}), "%s: %q %s", at, short, dns.TypeToString[qtypeOf(ip)])
				}
			}
		}
	})

	It("answers a forward zone from a DNS server the test runs in the lab", func() {
		srv := startTestUpstream()
		name := "host." + forwardZone + "."
		pods := echoPodsOnEveryNode()
		// Before: the lab's upstream knows no such name.
		r := askOK(labCfg.EchoPodNetns(pods[labCfg.NodeAt(1).Name].Name), kubeDNSServers()[0], name, dns.TypeA)
		Expect(r.Rcode).To(Equal(dns.RcodeNameError), "before the forward zone")

		setDNS(func(d *v1.DNS) {
			d.ForwardZones = append(d.ForwardZones, v1.ForwardZone{Zone: forwardZone, Upstreams: []string{srv[0].String(), srv[1].String()}})
		})
		t0 := time.Now()
		for node, pod := range pods {
			nsPath := labCfg.EchoPodNetns(pod.Name)
			for _, server := range kubeDNSServers() {
				for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
					want := srv[0].String()
					if qtype == dns.TypeAAAA {
						want = srv[1].String()
					}
					Eventually(func() []string {
						r, err := ask(nsPath, server, name, qtype)
						if err != nil {
							return []string{err.Error()}
						}
						return answerText(r)
					}, 3*time.Minute, 500*time.Millisecond).Should(Equal([]string{want}), "pod %s on %s via %s", pod.Name, node, server)
				}
			}
		}
		AddReportEntry("forward zone answered on every pod after", time.Since(t0).Round(100*time.Millisecond).String())
		// Restored here, not only at cleanup, so that no CoreDNS replica reloads during a later spec.
		restoreDNS()
		everyReplicaAnswers(labCfg.EchoPodNetns(pods[labCfg.NodeAt(1).Name].Name), func(nsPath string, server netip.AddrPort) string {
			r, err := ask(nsPath, server, name, dns.TypeA)
			if err != nil {
				return err.Error()
			}
			return dns.RcodeToString[r.Rcode]
		}, dns.RcodeToString[dns.RcodeNameError])
	})

	It("applies an upstream change without restarting a CoreDNS pod or failing a lookup", func() {
		srv := startTestUpstream()
		before := coreDNSRestarts()
		pods := echoPodsOnEveryNode()
		watcher := pods[labCfg.NodeAt(1).Name]
		stop, lost := lookupStream(labCfg.EchoPodNetns(watcher.Name), kubeDNSServers()[0], "gateway."+lab.LabDNSZone)

		gateway := "gateway." + lab.LabDNSZone
		identity := func(nsPath string, server netip.AddrPort) string { return txtOf(nsPath, server, gateway) }
		// Through the Service from every pod: true once any replica took the change, and from then
		// on only if every replica did, hence asked again after everyReplicaAnswers.
		identityEverywhere := func(want string) {
			for node, pod := range pods {
				nsPath := labCfg.EchoPodNetns(pod.Name)
				for _, server := range kubeDNSServers() {
					Eventually(func() string { return identity(nsPath, server) }, 30*time.Second, 250*time.Millisecond).
						Should(Equal(want), "pod %s on %s via %s", pod.Name, node, server)
				}
			}
		}
		watcherNetns := labCfg.EchoPodNetns(watcher.Name)
		everyReplicaAnswers(watcherNetns, identity, lab.LabDNSIdentity)
		identityEverywhere(lab.LabDNSIdentity)

		setDNS(func(d *v1.DNS) { d.Upstreams = []string{srv[0].String(), srv[1].String()} })
		t0 := time.Now()
		everyReplicaAnswers(watcherNetns, identity, testZoneIdentity)
		took := time.Since(t0).Round(100 * time.Millisecond)
		identityEverywhere(testZoneIdentity)
		AddReportEntry("upstream change answered by every CoreDNS replica after", took.String())

		restoreDNS()
		t0 = time.Now()
		everyReplicaAnswers(watcherNetns, identity, lab.LabDNSIdentity)
		back := time.Since(t0).Round(100 * time.Millisecond)
		identityEverywhere(lab.LabDNSIdentity)
		AddReportEntry("upstream restore answered by every CoreDNS replica after", back.String())
		n, failed := stop()
		AddReportEntry("lookups during the upstream changes", fmt.Sprintf("%d, %d failed twice in a row", n, failed))
		Expect(failed).To(BeZero(), "lookups lost during the change: %v", lost())
		Expect(coreDNSRestarts()).To(Equal(before), "CoreDNS pods (uid → restarts) are the same")
	})
})

// coreDNSRestarts maps each running CoreDNS pod's UID to its container restarts.
func coreDNSRestarts() map[types.UID]int32 {
	out := map[types.UID]int32{}
	for _, p := range coreDNSPods() {
		var restarts int32
		for _, c := range p.Status.ContainerStatuses {
			restarts += c.RestartCount
		}
		out[p.UID] = restarts
	}
	ExpectWithOffset(1, out).NotTo(BeEmpty())
	return out
}

// everyReplicaAnswers waits until answer, asked from nsPath of every running CoreDNS pod directly
// (each of its IPs), is want: the ConfigMap reached every replica and its reload plugin applied it.
// The kubelet refreshes a ConfigMap volume on its own schedule (up to about a minute), then reload
// checks every 10s.
func everyReplicaAnswers(nsPath string, answer func(nsPath string, server netip.AddrPort) string, want string) {
	Eventually(func(g Gomega) {
		for _, p := range coreDNSPods() {
			for _, ip := range p.Status.PodIPs {
				server := netip.AddrPortFrom(netip.MustParseAddr(ip.IP), 53)
				g.Expect(answer(nsPath, server)).To(Equal(want), "CoreDNS %s at %s", p.Name, server)
			}
		}
	}, 4*time.Minute, 500*time.Millisecond).Should(Succeed())
}

// txtOf is the first TXT string of name, or the error.
func txtOf(nsPath string, server netip.AddrPort, name string) string {
	r, err := ask(nsPath, server, name, dns.TypeTXT)
	if err != nil {
		return err.Error()
	}
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok && len(t.Txt) > 0 {
			return t.Txt[0]
		}
	}
	return dns.RcodeToString[r.Rcode] + " without TXT"
}
