package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// dnsLoadPort is where the echo image's DNS load generator (echo -dnsload) serves /run.
	dnsLoadPort = 8053
	// dnsLoadSeconds is how long the load runs; the CoreDNS pod is deleted dnsLoadDeleteAfter into
	// it, which leaves the replacement time to start and join kube-dns while the load goes on.
	dnsLoadSeconds = 45
	// dnsLoadBaselineSeconds is how long the load runs with nothing deleted.
	dnsLoadBaselineSeconds = 30
	dnsLoadDeleteAfter     = 10 * time.Second
	// dnsLoadRatePerRun is the lookups per second of one run; each load pod runs one per family
	// of kube-dns, so the lab gets 3 pods x 2 runs x this, each lookup an A and an AAAA question.
	dnsLoadRatePerRun = 200
	// dnsLoadMinPerSecond is the least load, in lookups (two questions each) over all pods, for the
	// spec to prove anything: a thousand questions a second and more.
	dnsLoadMinPerSecond = 500
)

// dnsLoadReport is the load generator's JSON report (hack/images/echo/dnsload.go).
type dnsLoadReport struct {
	Server    string           `json:"server"`
	Seconds   float64          `json:"seconds"`
	Lookups   int64            `json:"lookups"`
	Failed    int64            `json:"failed"`
	Retried   int64            `json:"retried"`
	TimedOut  int64            `json:"timedOut"`
	Slow      int64            `json:"slow"`
	Rcodes    map[string]int64 `json:"rcodes"`
	PerSecond float64          `json:"perSecond"`
	P50us     int64            `json:"p50us"`
	P99us     int64            `json:"p99us"`
	MaxUs     int64            `json:"maxUs"`
	Errors    []string         `json:"errors"`
	// SlowBySecond and RefusedBySecond: lookups by the second of the run they started in.
	SlowBySecond    map[int]int64 `json:"slowBySecond"`
	RefusedBySecond map[int]int64 `json:"refusedBySecond"`
	// Attempts is the number of attempts (sockets); PortReused those whose source port an
	// attempt of the run had used less than 30 s before (the old flow's conntrack entry applies).
	Attempts   int64            `json:"attempts"`
	PortReused int64            `json:"portReused"`
	Troubles   []dnsLoadTrouble `json:"troubles"`
}

// dnsLoadTrouble is an attempt that timed out or was refused (hack/images/echo/dnsload.go).
type dnsLoadTrouble struct {
	StartMs         int64  `json:"startMs"`
	Port            int    `json:"port"`
	Kind            string `json:"kind"`
	PortReusedAgoMs int64  `json:"portReusedAgoMs"`
}

func (r dnsLoadReport) String() string {
	return fmt.Sprintf("%d lookups (%.0f/s) to %s: %d took >= 5 s, %d attempts timed out, %d retried, %d failed; p50 %s p99 %s max %s; rcodes %v%s",
		r.Lookups, r.PerSecond, r.Server, r.Slow, r.TimedOut, r.Retried, r.Failed, us(r.P50us), us(r.P99us), us(r.MaxUs), r.Rcodes,
		map[bool]string{true: "; errors: " + strings.Join(r.Errors[:min(3, len(r.Errors))], " | "), false: ""}[len(r.Errors) > 0]) +
		map[bool]string{true: fmt.Sprintf("; slow by second started %v, refused by second %v", r.SlowBySecond, r.RefusedBySecond), false: ""}[len(r.SlowBySecond)+len(r.RefusedBySecond) > 0]
}

func us(n int64) time.Duration {
	return (time.Duration(n) * time.Microsecond).Round(10 * time.Microsecond)
}

// dnsLoadPod is a pod on node running the load generator.
func dnsLoadPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: lab.WorkloadNamespace, Labels: map[string]string{"app": "e2e-dnsload"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "dnsload", Image: lab.EchoImage, ImagePullPolicy: corev1.PullNever,
				Args:           []string{"-dnsload", fmt.Sprintf(":%d", dnsLoadPort)},
				Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: dnsLoadPort}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 1},
			}},
		},
	}
}

// runDNSLoad asks the load generator at podIP, from the network namespace nsPath, for one run
// and returns its report (the call lasts the run).
func runDNSLoad(nsPath, podIP string, params url.Values) (dnsLoadReport, error) {
	var rep dnsLoadReport
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return lab.DialInNetns(ctx, nsPath, network, addr)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	resp, err := c.Get("http://" + net.JoinHostPort(podIP, strconv.Itoa(dnsLoadPort)) + "/run?" + params.Encode())
	if err != nil {
		return rep, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return rep, err
	}
	if resp.StatusCode != http.StatusOK {
		return rep, fmt.Errorf("%s: %s", resp.Status, body)
	}
	return rep, json.Unmarshal(body, &rep)
}

// coreDNSPods lists the running CoreDNS pods that are not being deleted.
func coreDNSPods() []corev1.Pod {
	var l corev1.PodList
	ExpectWithOffset(1, k8s.List(ctx, &l, client.InNamespace(render.DNSNamespace), client.MatchingLabels{render.DNSAppLabel: render.DNSAppLabelValue})).To(Succeed())
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	return out
}

var _ = Describe("Cluster DNS under a sustained UDP lookup load", func() {
	It("loses no lookup to the 5 s conntrack-race timeout", func() {
		svc, _, _, loaders, name := dnsLoadSetup()
		By(fmt.Sprintf("%ds of glibc-style lookups from every load pod to every kube-dns ClusterIP %v, nothing deleted", dnsLoadBaselineSeconds, svc.Spec.ClusterIPs))
		base := loadFromAll(loaders, svc.Spec.ClusterIPs, name, dnsLoadBaselineSeconds, nil)
		AddReportEntry("DNS under load", base.summary)
		fmt.Fprintln(GinkgoWriter, "DNS under load: "+base.summary)

		expectNoPathLoss(base)
	})

	// A CoreDNS pod deleted under the same load. The loss this spec used to find (55 of 10,406
	// lookups took 5 s, 3 failed, on 2026-12-04) was the service path's, with two causes, both
	// measured (a timeline of the run beside each attempt that went wrong, with its source port):
	//
	//  1. A lookup opens a new socket, whose random source port now and then (about 5 % of
	//     attempts here) is one an earlier lookup used less than 30 s before; it then meets that
	//     lookup's conntrack entry, still DNATed to whichever CoreDNS answered it. The agents kept
	//     a terminating endpoint's entries until it stopped serving, which came after CoreDNS had
	//     ended its 5 s lameduck: such lookups went into the stopped pod, refused while its
	//     network namespace lived (20 attempts in one run, every one from a reused port), lost
	//     for 5 s after. Now the agents flush a terminating UDP endpoint's entries 2 s after it
	//     stopped getting new flows, while it still answers, and the lameduck (10 s) outlasts that.
	//  2. Every flush of an IPv6 endpoint deleted all UDP entries to the IPv6 VIP
	//     (conntrack-tools ignores --dst-nat for IPv6), cutting the lookups in flight to the
	//     replica that stays: 42 IPv6-only 5 s lookups in one run, at the agents' flushes. The
	//     agents now select by --reply-src.
	//
	// Asserted: the load is sustained, no lookup met a refusal (no question reached the stopped
	// pod), conntrack lost no packet, no lookup took 5 s beyond the two reasons below, and none
	// failed (got no answer in the two attempts glibc makes) unless CoreDNS' buffers overflowed.
	// A retry remains possible for two reasons. (a) While one replica is gone, the other takes
	// the whole load, and on a machine whose CPUs are shared a stall of that CoreDNS lets its
	// socket's receive buffer fill; the kernel drops the next questions (and counts each in
	// RcvbufErrors), and their lookups ask again after glibc's 5 s. (b) The drain race, inherent
	// to UDP: a question in flight to the terminating pod, through an entry a reused source port
	// met, at the moment the agent deletes that entry. Retries and 5 s lookups are reported.
	It("loses no lookup while a CoreDNS pod is deleted and replaced", func() {
		svc, deploy, replicas, loaders, name := dnsLoadSetup()
		By(fmt.Sprintf("the same load for %ds, a CoreDNS pod deleted %s into it", dnsLoadSeconds, dnsLoadDeleteAfter))
		var victim corev1.Pod
		var replacedAt time.Duration
		var deletedAt time.Time
		tl := &timeline{}
		watchCtx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		watchDone := make(chan struct{})
		load := loadFromAll(loaders, svc.Spec.ClusterIPs, name, dnsLoadSeconds, func(start time.Time) {
			time.Sleep(dnsLoadDeleteAfter) // the load runs on its own schedule; this only places the delete inside it
			victims := coreDNSPods()
			Expect(victims).NotTo(BeEmpty())
			victim = victims[0]
			By(fmt.Sprintf("deleting CoreDNS pod %s on %s (%s) %s into the load", victim.Name, victim.Spec.NodeName, victim.Status.PodIP, time.Since(start).Round(time.Second)))
			go func() { watchVictim(watchCtx, tl, victim); close(watchDone) }()
			deletedAt = time.Now()
			tl.add(deletedAt, "delete sent")
			Expect(k8s.Delete(ctx, &victim)).To(Succeed())
			Eventually(func(g Gomega) {
				var d appsv1.Deployment
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(deploy), &d)).To(Succeed())
				g.Expect(d.Status.ReadyReplicas).To(Equal(replicas))
				live := coreDNSPods()
				g.Expect(live).To(HaveLen(int(replicas)))
				for _, p := range live {
					g.Expect(p.Name).NotTo(Equal(victim.Name))
				}
			}, 2*time.Minute, 500*time.Millisecond).Should(Succeed(), "the Deployment replaces the deleted pod")
			replacedAt = time.Since(start).Round(time.Second)
		})
		stopWatch()
		<-watchDone
		agentSyncs(tl, deletedAt.Add(-2*time.Second), deletedAt.Add(time.Duration(dnsLoadSeconds)*time.Second))
		for _, tr := range load.troubles {
			tl.add(time.UnixMilli(tr.StartMs), "attempt of %s from port %d: %s (port last used %s before)", tr.who, tr.Port, tr.Kind, reusedAgo(tr.PortReusedAgoMs))
		}
		fmt.Fprintf(GinkgoWriter, "timeline around the deletion of %s %v (seconds from the delete):\n%s", victim.Name, victim.Status.PodIPs, tl.String(deletedAt))
		summary := fmt.Sprintf("CoreDNS pod %s deleted at %s, replaced by %s; %d lookups, %d retried, %d took >= 5 s, %d failed, %d met a refusal; %s",
			victim.Name, dnsLoadDeleteAfter, replacedAt, load.total.Lookups, load.total.Retried, load.total.Slow, load.total.Failed, load.refused, load.summary)
		AddReportEntry("DNS under load, a CoreDNS pod deleted", summary)
		fmt.Fprintln(GinkgoWriter, "with a deletion: "+summary)

		Expect(load.refused).To(BeZero(), "lookups were refused: questions reached the stopped CoreDNS: %s", summary)
		Expect(load.total.PerSecond).To(BeNumerically(">=", dnsLoadMinPerSecond), "the load must be sustained: %s", summary)
		Expect(load.drops.conntrackInsertFailed+load.drops.conntrackDrop).To(BeZero(), "conntrack lost packets of new flows: %s", summary)
		// Every 5 s lookup is a CoreDNS receive-buffer drop (counted by the kernel) or the drain
		// race: a lookup from a reused source port whose question is in flight to the terminating
		// pod at the moment its agent deletes that entry (the answer then arrives un-NATed and is
		// discarded). One such retry was seen in 48,686 lookups (run of 22:48, no buffer drop);
		// one in 10,000 is the bound. A path loss is far above it (the IPv6 flush that deleted every
		// entry of the VIP: 42 in 43,267).
		Expect(load.total.Slow).To(BeNumerically("<=", load.drops.coreDNSRcvbufErrors+load.total.Lookups/10000),
			"lookups took 5 s beyond CoreDNS' receive-buffer drops and the drain race: %s", summary)
		// A lookup fails only when both its attempts are lost; with no buffer drop, none may fail.
		// When the kernel did count drops, CoreDNS was starved of CPU long enough to lose a
		// lookup's retry too (seen on this shared machine at load averages of 40 to 100): those
		// failures are reported, not the path's.
		if load.drops.coreDNSRcvbufErrors == 0 {
			Expect(load.total.Failed).To(BeZero(), "lookups got no answer in either attempt, with no CoreDNS receive-buffer drop: %s", summary)
		}
	})
})

// reusedAgo says how long before a port was last used ("-" when not within 30 s).
func reusedAgo(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// dnsLoadSetup waits for DNSAvailable, starts a load generator pod on every node and returns them
// with the kube-dns Service, the CoreDNS Deployment and the name the load asks.
func dnsLoadSetup() (svc *corev1.Service, deploy *appsv1.Deployment, replicas int32, loaders []dnsLoader, name string) {
	Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(clusterNetwork().Status.Conditions, v1.ConditionDNSAvailable)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(BeEquivalentTo("True"), c.Message)
	}, 3*time.Minute, time.Second).Should(Succeed())
	svc = &corev1.Service{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSServiceName}, svc)).To(Succeed())
	deploy = &appsv1.Deployment{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSDeploymentName}, deploy)).To(Succeed())
	replicas = *deploy.Spec.Replicas
	Expect(replicas).To(BeNumerically(">=", 2), "a deleted replica needs another to fail over to")

	By("starting a load generator pod on every node")
	var pods []*corev1.Pod
	for i := 1; i <= labNodes; i++ {
		n := labCfg.NodeAt(i)
		p := dnsLoadPod("e2e-dnsload-"+strconv.Itoa(i), n.Name)
		Expect(k8s.Create(ctx, p)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, p))).To(Succeed()) })
		pods = append(pods, p)
	}
	for i, p := range pods {
		var live corev1.Pod
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), &live)).To(Succeed())
			g.Expect(live.Status.PodIP).NotTo(BeEmpty())
			ready := false
			for _, c := range live.Status.Conditions {
				ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
			}
			g.Expect(ready).To(BeTrue(), "pod %s ready", p.Name)
		}, convergeBound, 200*time.Millisecond).Should(Succeed())
		n := labCfg.NodeAt(i + 1)
		loaders = append(loaders, dnsLoader{pod: p.Name, node: n.Name, ip: live.Status.PodIP, nsPath: filepath.Join("/run/netns", n.Netns)})
	}

	return svc, deploy, replicas, loaders, "kubernetes.default.svc." + clusterDomain()
}

// expectNoPathLoss requires a load sustained at dnsLoadMinPerSecond, no conntrack insert failure
// or drop, and no lookup that took 5 s beyond the questions CoreDNS' own full socket buffers lost.
func expectNoPathLoss(r loadResult) {
	ExpectWithOffset(1, r.total.PerSecond).To(BeNumerically(">=", dnsLoadMinPerSecond), "the load must be sustained: %s", r.summary)
	ExpectWithOffset(1, r.drops.conntrackInsertFailed+r.drops.conntrackDrop).To(BeZero(), "conntrack lost packets of new flows (the insertion race): %s", r.summary)
	// A question lost to a CoreDNS that could not keep up (its socket buffer full: the kernel
	// counts each) also costs 5 s; that is this shared machine's CPU, not the data path. Every
	// other 5 s lookup is the path's: a conntrack race or a stale entry.
	ExpectWithOffset(1, r.total.Slow).To(BeNumerically("<=", r.drops.coreDNSRcvbufErrors),
		"lookups took the classic 5 s timeout, more than CoreDNS' own receive-buffer overflows explain: %s", r.summary)
}

// dnsLoader is a load generator pod, reached from its node's network namespace.
type dnsLoader struct{ pod, node, ip, nsPath string }

// loadResult is the sum of the runs of one load, the kernel's drop counters over it, and its
// summary for the log.
type loadResult struct {
	total    dnsLoadReport
	drops    dropCounters
	summary  string
	troubles []whoTrouble
	// refused is the number of lookups that met a refusal (an ICMP port unreachable came back).
	refused int64
}

// whoTrouble is a troubled attempt with the run it belongs to.
type whoTrouble struct {
	dnsLoadTrouble
	who string
}

// loadFromAll runs the load generator of every loader against every server IP at once (each run
// at dnsLoadRatePerRun), calls during (if not nil) while they run, and sums the reports.
func loadFromAll(loaders []dnsLoader, serverIPs []string, name string, seconds int, during func(start time.Time)) loadResult {
	type result struct {
		who string
		rep dnsLoadReport
		err error
	}
	results := make(chan result, len(loaders)*len(serverIPs))
	var wg sync.WaitGroup
	before := readDropCounters()
	rcvCtx, stopRcv := context.WithCancel(ctx)
	defer stopRcv()
	rcvbuf := watchRcvbuf(rcvCtx)
	start := time.Now()
	for _, l := range loaders {
		for _, ip := range serverIPs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep, err := runDNSLoad(l.nsPath, l.ip, url.Values{
					"server": {net.JoinHostPort(ip, "53")}, "name": {name}, "duration": {strconv.Itoa(seconds) + "s"},
					"rate": {strconv.Itoa(dnsLoadRatePerRun)}, "workers": {"64"},
				})
				results <- result{who: l.pod + "@" + l.node, rep: rep, err: err}
			}()
		}
	}
	if during != nil {
		during(start)
	}
	wg.Wait()
	close(results)
	drops := readDropCounters().minus(before)
	drops.coreDNSRcvbufErrors = rcvbuf.drops()
	var total dnsLoadReport
	var lines []string
	var troubles []whoTrouble
	var refused int64
	for r := range results {
		ExpectWithOffset(1, r.err).NotTo(HaveOccurred(), "load from %s", r.who)
		lines = append(lines, r.who+": "+r.rep.String())
		total.Lookups += r.rep.Lookups
		total.Slow += r.rep.Slow
		total.TimedOut += r.rep.TimedOut
		total.Retried += r.rep.Retried
		total.Failed += r.rep.Failed
		total.PerSecond += r.rep.PerSecond
		total.P99us = max(total.P99us, r.rep.P99us)
		total.MaxUs = max(total.MaxUs, r.rep.MaxUs)
		total.Attempts += r.rep.Attempts
		total.PortReused += r.rep.PortReused
		for _, n := range r.rep.RefusedBySecond {
			refused += n
		}
		for _, tr := range r.rep.Troubles {
			troubles = append(troubles, whoTrouble{dnsLoadTrouble: tr, who: r.who + "->" + r.rep.Server})
		}
	}
	return loadResult{total: total, drops: drops, troubles: troubles, refused: refused, summary: fmt.Sprintf("%d lookups (%.0f/s, A+AAAA each) from %d pods over %ds; "+
		"%d lookups took >= 5 s, %d attempts timed out, %d lookups retried, %d failed; worst p99 of a run %s, max %s; "+
		"%d of %d attempts reused a source port used < 30 s before; kernel: %s\n  %s",
		total.Lookups, total.PerSecond, len(loaders), seconds, total.Slow, total.TimedOut, total.Retried, total.Failed,
		us(total.P99us), us(total.MaxUs), total.PortReused, total.Attempts, drops, strings.Join(lines, "\n  "))}
}

// clusterDomain is the served cluster domain (status.effective), without a trailing dot.
func clusterDomain() string {
	cn := clusterNetwork()
	if e := cn.Status.Effective; e != nil && e.DNS != nil && e.DNS.ClusterDomain != "" {
		return strings.TrimSuffix(e.DNS.ClusterDomain, ".")
	}
	return "cluster.local"
}
