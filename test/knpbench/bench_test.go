package knpbench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	pt "github.com/plexus-net/plexus/agent/policy/policytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// reps is the number of samples per incremental figure (p99 of 20 is their maximum).
	reps = 20
	// policies is the number of scale policies at every size.
	policies = 1000
	// quietWindow: no sync logged for this long means KNP's retries are over.
	quietWindow = 700 * time.Millisecond
	// addedBase numbers the pods of the "pod added" figure, far above the fixture's.
	addedBase = 50000
)

// figures are KNP's results at one size.
type figures struct {
	pods             int
	created          time.Duration // creating the size's pods
	cold             time.Duration // process start → end of its first sync
	informers        time.Duration // process start → informer caches synced
	add, relabel     []time.Duration
	policyChange     []time.Duration
	tableObjects     int    // objects of KNP's table in the kernel (table, chains, sets, rules)
	tableElements    int    // elements of its sets in the kernel
	wouldElements    int    // IPs its sets would hold: local pods selected by a policy
	refusal          string // the kernel's answer to KNP's transaction, if refused
	rss, peak        float64
	connect0         time.Duration // connect with no queue rule (KNP's data path without policies)
	connect1k        time.Duration // connect with the first packet queued to KNP
	queueErr         string        // why the nfqueue figure is missing, if it is
	verdicts         float64       // packets KNP accepted during the 1k measurement
	evalP50, evalP99 float64       // KNP's own evaluation time (µs), from its metrics
}

var measured = map[int]figures{}

// BenchmarkKNP prints, for 1k and 10k pods with 1k policies on one node, the figures of the
// upstream reference agent kube-network-policies v0.8.0, in the rows of Plexus' policy
// benchmark. Run with -benchtime 1x.
func BenchmarkKNP(b *testing.B) {
	testnet.RequireRoot(b)
	bin := ensureKNP(b)
	cp := startControlPlane(b)
	cp.ensureNode(b)
	scale := pt.NewScale(10000, policies)
	cp.ensureNamespaces(b, scale.Namespaces)
	cp.ensurePolicies(b, scale.Policies)
	fl := cp.newFlow(b)
	created := 0
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n/1000)+"k", func(b *testing.B) {
			fig, ok := measured[n]
			if !ok {
				fig = figures{pods: n, created: cp.ensurePods(b, scale.Pods[:n], created)}
				created = n
				cp.measure(b, bin, scale, fl, &fig)
				measured[n] = fig
			}
			report(b, fig)
		})
	}
}

// measure runs KNP over the first fig.pods pods of scale and fills fig.
func (cp *controlPlane) measure(b *testing.B, bin string, scale *pt.Scale, fl *flow, fig *figures) {
	ctx := context.Background()
	pods := scale.Pods[:fig.pods]
	fig.wouldElements = selectedIPs(pods, scale.Policies)

	t0 := time.Now()
	knp := cp.startKNP(b, bin)
	end := waitSyncEnd(b, knp, "cold start", t0, 5*time.Minute)
	fig.cold = end.Sub(t0)
	l := readKNPLog(knp.log)
	fig.informers = l.cachesSynced.Sub(t0)
	fig.refusal = l.refusal
	fig.tableObjects, fig.tableElements = cp.countTable()

	// One pod added (selected by scale policy ns: app0 of its namespace): API write of its IPs
	// → the end of the sync that follows.
	var added []*corev1.Pod
	for i := 0; i < reps; i++ {
		p := pt.ScalePod(addedBase+fig.pods/1000*100+i, "app0")
		created, err := cp.createPodWithoutIPs(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		added = append(added, p)
		quiet(knp, quietWindow) // the pod without IPs triggers a sync of its own
		start := time.Now()
		if err := cp.setPodIPs(ctx, created, p.Status); err != nil {
			b.Fatal(err)
		}
		fig.add = append(fig.add, waitSyncEnd(b, knp, "pod added", start, time.Minute).Sub(start))
	}
	// One pod relabelled from its app to the next one and back (so the fixture stays as it
	// was). Pods 0-999 have apps 0-9, which policies select in every namespace: KNP queues a
	// sync only for a pod that a policy selects after the change, so relabelling a pod out of
	// every policy would not be synced at all (its IP stays in the set until another change).
	for i := 0; i < reps; i++ {
		orig := pods[(i/2)*37%1000]
		app := orig.Labels["app"]
		if i%2 == 0 {
			var a int
			_, _ = fmt.Sscanf(app, "app%d", &a)
			app = fmt.Sprintf("app%d", (a+1)%10)
		}
		quiet(knp, quietWindow)
		start := time.Now()
		patch := fmt.Sprintf(`{"metadata":{"labels":{"app":%q}}}`, app)
		if _, err := cp.cs.CoreV1().Pods(orig.Namespace).Patch(ctx, orig.Name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		fig.relabel = append(fig.relabel, waitSyncEnd(b, knp, "pod relabelled", start, time.Minute).Sub(start))
	}
	// One policy changed: its port 80 → 81 and back. Policies 4, 9, … (deny all) have no port,
	// and an update that changes nothing is no event: they are left out.
	for i := 0; i < reps; i++ {
		port := 81
		if i%2 == 1 {
			port = 80
		}
		want := pt.ScalePolicy(i/2+i/2/4, port)
		quiet(knp, quietWindow)
		start := time.Now()
		if err := cp.updatePolicy(ctx, want); err != nil {
			b.Fatal(err)
		}
		fig.policyChange = append(fig.policyChange, waitSyncEnd(b, knp, "policy changed", start, time.Minute).Sub(start))
	}
	fig.rss, fig.peak = knp.memory()

	// First packet: with no queue rule (what KNP's table does for pods no policy selects), then
	// with the flow's first packet queued to KNP, which evaluates the 1k policies.
	quiet(knp, quietWindow)
	var err error
	if fig.connect0, err = fl.connectTime(connectReps); err != nil {
		b.Fatalf("without a queue rule: %v", err)
	}
	if fig.tableObjects == 0 {
		if err := cp.mirrorQueueRule(fl.dstAddr.Addr()); err != nil {
			fig.queueErr = err.Error()
		}
	}
	if fig.queueErr == "" {
		before := cp.knpMetrics()
		if fig.connect1k, err = fl.connectTime(connectReps); err != nil {
			b.Fatalf("through KNP's nfqueue: %v\n%s", err, knp.tail())
		}
		// KNP counts a verdict in a deferred call after sending it: the last connects' counts
		// may lag the connects by a moment.
		const accepted = `kube_network_policies_packet_count{family="IPv4",protocol="TCP",verdict="accept"}`
		var after map[string]float64
		testnet.Poll(2*time.Second, 20*time.Millisecond, func() bool {
			after = cp.knpMetrics()
			fig.verdicts = after[accepted] - before[accepted]
			return fig.verdicts >= connectReps
		})
		fig.evalP50 = after[`kube_network_policies_packet_process_duration_microseconds{quantile="0.5"}`]
		fig.evalP99 = after[`kube_network_policies_packet_process_duration_microseconds{quantile="0.99"}`]
		if fig.verdicts < connectReps {
			b.Fatalf("KNP accepted %.0f packets during %d connects: the first packets did not go through its queue", fig.verdicts, connectReps)
		}
	}
	cp.dropMirror()
	knp.stop()
	for _, p := range added {
		if err := cp.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	_, _ = cp.nft("delete", "table", "inet", knpTable)
}

// updatePolicy replaces the spec of an existing policy.
func (cp *controlPlane) updatePolicy(ctx context.Context, want *networkingv1.NetworkPolicy) error {
	cur, err := cp.cs.NetworkingV1().NetworkPolicies(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	cur.Spec = want.Spec
	_, err = cp.cs.NetworkingV1().NetworkPolicies(want.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// selectedIPs counts the IPs KNP's sets hold for pods (all local): those of pods that a policy
// of their namespace selects.
func selectedIPs(pods []*corev1.Pod, pols []*networkingv1.NetworkPolicy) int {
	n := 0
	for _, p := range pods {
		for _, pol := range pols {
			if pol.Namespace != p.Namespace {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
			if err == nil && sel.Matches(labels.Set(p.Labels)) {
				n += len(p.Status.PodIPs)
				break
			}
		}
	}
	return n
}

// countTable counts the objects of KNP's table in the kernel (0 when it does not exist) and
// the elements of its sets.
func (cp *controlPlane) countTable() (objects, elements int) {
	out, err := cp.nft("-j", "list", "table", "inet", knpTable)
	if err != nil {
		return 0, 0
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if json.Unmarshal([]byte(out), &doc) != nil {
		return 0, 0
	}
	for _, o := range doc.Nftables {
		if _, ok := o["metainfo"]; ok {
			continue
		}
		objects++
		if raw, ok := o["set"]; ok {
			var s struct {
				Elem []json.RawMessage `json:"elem"`
			}
			_ = json.Unmarshal(raw, &s)
			elements += len(s.Elem)
		}
	}
	return objects, elements
}

// knpMetrics scrapes KNP's metrics (series → value).
func (cp *controlPlane) knpMetrics() map[string]float64 {
	out := map[string]float64{}
	text, err := cp.get("http://"+knpMetricsAddr+"/metrics", "")
	if err != nil {
		return out
	}
	for _, l := range strings.Split(text, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// report prints KNP's block in the rows of Plexus' policy benchmark.
func report(b *testing.B, f figures) {
	objects := fmt.Sprintf("%d", f.tableObjects)
	objNote := fmt.Sprintf("%d set elements in the kernel", f.tableElements)
	if f.tableObjects == 0 {
		objNote = fmt.Sprintf("its table was refused (%s); as written it holds 1 table, 2 chains, %d rules, 2 sets with %d elements (one per IP of a local pod a policy selects)",
			f.refusal, knpRules, f.wouldElements)
	}
	sync := "API write → end of KNP's next sync (its log)"
	if f.refusal != "" {
		sync += ", which the kernel refused"
	}
	type row struct{ what, value, unit, note string }
	rows := []row{
		{"cold: start → programmed", msStr(f.cold), "ms", fmt.Sprintf("start → end of its first sync; informer caches synced at %s ms", msStr(f.informers))},
		{"one pod added p50 / p99", msStr(pct(f.add, 50)) + " / " + msStr(pct(f.add, 99)), "ms", sync},
		{"one pod relabelled p50 / p99", msStr(pct(f.relabel, 50)) + " / " + msStr(pct(f.relabel, 99)), "ms", sync},
		{"one policy changed p50 / p99", msStr(pct(f.policyChange, 50)) + " / " + msStr(pct(f.policyChange, 99)), "ms", sync},
		{"kernel objects", objects, "", objNote},
		{"memory RSS (peak)", fmt.Sprintf("%.1f (%.1f)", f.rss, f.peak), "MiB", "the KNP process, after the incremental figures"},
		{"first packet, 0 policies", usStr(f.connect0), "µs", "TCP connect, no queue rule: KNP queues nothing for pods no policy selects"},
	}
	if f.queueErr != "" {
		rows = append(rows, row{"first packet, 1k policies", "—", "µs", "not measured: " + f.queueErr})
	} else {
		rows = append(rows, row{"first packet, 1k policies", usStr(f.connect1k), "µs",
			fmt.Sprintf("TCP connect, SYN queued to KNP (+%s µs); KNP's own evaluation p50 %.0f / p99 %.0f µs; %.0f verdicts",
				usStr(f.connect1k-f.connect0), f.evalP50, f.evalP99, f.verdicts)})
	}
	b.Logf("policy-knp %5d: %-30s %15s %-4s  kube-network-policies %s, %d pods × %d policies on one node (pods created in %s), %d samples, p99 = max",
		f.pods, "figure", "knp", "", knpVersion, f.pods, policies, f.created.Round(100*time.Millisecond), reps)
	for _, r := range rows {
		b.Logf("policy-knp %5d: %-30s %15s %-4s  %s", f.pods, r.what, r.value, r.unit, r.note)
	}
	b.ReportMetric(ms(f.cold), "knp-cold-ms")
	b.ReportMetric(ms(pct(f.add, 99)), "knp-pod-added-p99-ms")
	b.ReportMetric(ms(pct(f.policyChange, 99)), "knp-policy-changed-p99-ms")
	b.ReportMetric(f.rss, "knp-rss-MiB")
	b.ReportMetric(float64(f.connect1k.Nanoseconds())/1000, "knp-first-packet-1k-µs")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msStr(d time.Duration) string { return strconv.FormatFloat(ms(d), 'f', 1, 64) }

func usStr(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Nanoseconds())/1000, 'f', 1, 64)
}

// pct is the nearest-rank percentile p of d.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(float64(p)/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}
