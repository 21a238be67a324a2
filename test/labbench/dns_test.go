package labbench

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
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// dnsLoadPod runs the echo image's DNS load generator (hack/images/echo/dnsload.go) on the
	// lab's first node; dnsLoadPort is where it serves /run.
	dnsLoadPod  = "labbench-dnsload"
	dnsLoadPort = 8053
	// dnsBenchSeconds is how long each row of the DNS table loads; dnsBenchWorkers how many
	// lookups are in flight at once (closed loop: the figures are what one pod gets, not a rate
	// it was told to keep).
	dnsBenchSeconds = 10
	dnsBenchWorkers = 16
	// dnsCachedName is answered from CoreDNS' cache after its first lookup (the lab upstream's
	// own name, so cached and uncached rows differ only by the cache); uncached rows ask a new
	// name under the same zone each time, which CoreDNS must forward to the lab's upstream.
	dnsCachedName = "gateway." + lab.LabDNSZone
	// dnsKubeDNSNamespace and dnsKubeDNSService are where kube-dns is (controllers/render).
	dnsKubeDNSNamespace = "kube-system"
	dnsKubeDNSService   = "kube-dns"
)

// dnsBenchReport is the part of the load generator's JSON report the table shows.
type dnsBenchReport struct {
	Lookups   int64            `json:"lookups"`
	Failed    int64            `json:"failed"`
	Slow      int64            `json:"slow"`
	PerSecond float64          `json:"perSecond"`
	P50us     int64            `json:"p50us"`
	P99us     int64            `json:"p99us"`
	Rcodes    map[string]int64 `json:"rcodes"`
}

// BenchmarkClusterDNS measures lookups per second and their p50/p99 from one pod (on the lab's
// first node): through the kube-dns Service's IPv4 ClusterIP, and the same load sent to one
// CoreDNS pod directly by its IP (on another node when there is one), which is the cost of the
// Service path; each for a cached name and for names CoreDNS has never seen (forwarded to the
// lab's upstream). A lookup is one A question from a new UDP socket, as a resolver sends it.
func BenchmarkClusterDNS(b *testing.B) {
	l := startLab(b)
	ctx := context.Background()
	node := l.cfg.NodeAt(1)
	podIP, err := startDNSLoadPod(ctx, l, node.Name)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = l.kube.CoreV1().Pods(lab.WorkloadNamespace).Delete(ctx, dnsLoadPod, metav1.DeleteOptions{})
	}()
	svc, err := l.kube.CoreV1().Services(dnsKubeDNSNamespace).Get(ctx, dnsKubeDNSService, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	coreDNS, coreDNSNode, err := pickCoreDNSPod(ctx, l, node.Name)
	if err != nil {
		b.Fatal(err)
	}
	nsPath := filepath.Join("/run/netns", node.Netns)
	type row struct {
		path, server, names string
		unique              bool
	}
	rows := []row{
		{"kube-dns Service " + svc.Spec.ClusterIP, svc.Spec.ClusterIP, "cached", false},
		{"CoreDNS pod " + coreDNS + " on " + coreDNSNode, coreDNS, "cached", false},
		{"kube-dns Service " + svc.Spec.ClusterIP, svc.Spec.ClusterIP, "uncached", true},
		{"CoreDNS pod " + coreDNS + " on " + coreDNSNode, coreDNS, "uncached", true},
	}
	b.ResetTimer()
	var reps []dnsBenchReport
	for _, r := range rows {
		name := dnsCachedName
		if r.unique {
			name = lab.LabDNSZone
		}
		rep, err := dnsLoad(nsPath, podIP, url.Values{
			"server": {net.JoinHostPort(r.server, "53")}, "name": {name}, "unique": {strconv.FormatBool(r.unique)}, "onlyA": {"true"},
			"duration": {strconv.Itoa(dnsBenchSeconds) + "s"}, "workers": {strconv.Itoa(dnsBenchWorkers)},
		})
		if err != nil {
			b.Fatalf("load against %s: %v", r.path, err)
		}
		reps = append(reps, rep)
	}
	b.StopTimer()
	b.Logf("DNS from pod %s on %s, %d lookups in flight for %ds per row (one A question each, a new UDP socket each);", dnsLoadPod, node.Name, dnsBenchWorkers, dnsBenchSeconds)
	b.Logf("cached: %s again and again; uncached: <n>-<random>.%s, each new, forwarded to the lab's upstream", dnsCachedName, lab.LabDNSZone)
	b.Logf("%-10s %-46s %12s %10s %10s %8s %6s  %s", "NAMES", "PATH", "LOOKUPS/S", "P50", "P99", "FAILED", ">=5S", "ANSWERS")
	for i, r := range rows {
		rep := reps[i]
		b.Logf("%-10s %-46s %12.0f %10s %10s %8d %6d  %v", r.names, r.path, rep.PerSecond, us(rep.P50us), us(rep.P99us), rep.Failed, rep.Slow, rep.Rcodes)
	}
	for i, label := range []string{"svc-cached", "pod-cached", "svc-uncached", "pod-uncached"} {
		b.ReportMetric(reps[i].PerSecond, label+"-lookups/s")
		b.ReportMetric(float64(reps[i].P99us)/1000, label+"-p99-ms")
	}
}

func us(n int64) time.Duration {
	return (time.Duration(n) * time.Microsecond).Round(10 * time.Microsecond)
}

// startDNSLoadPod runs the load generator on node and returns its IP once it is ready.
func startDNSLoadPod(ctx context.Context, l *benchLab, node string) (string, error) {
	pods := l.kube.CoreV1().Pods(lab.WorkloadNamespace)
	if err := pods.Delete(ctx, dnsLoadPod, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: dnsLoadPod},
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
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsAlreadyExists(err) || time.Now().After(deadline) { // the old one may still be going
			return "", err
		}
		time.Sleep(200 * time.Millisecond)
	}
	for time.Now().Before(deadline) {
		p, err := pods.Get(ctx, dnsLoadPod, metav1.GetOptions{})
		if err == nil && p.Status.PodIP != "" {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return p.Status.PodIP, nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", fmt.Errorf("pod %s not ready in 2 minutes", dnsLoadPod)
}

// pickCoreDNSPod returns the IPv4 address and node of a ready CoreDNS pod, one not on avoid when
// there is such a pod.
func pickCoreDNSPod(ctx context.Context, l *benchLab, avoid string) (string, string, error) {
	list, err := l.kube.CoreV1().Pods(dnsKubeDNSNamespace).List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
	if err != nil {
		return "", "", err
	}
	ip, node := "", ""
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" {
			continue
		}
		if ip == "" || node == avoid {
			ip, node = p.Status.PodIP, p.Spec.NodeName
		}
	}
	if ip == "" {
		return "", "", fmt.Errorf("no running CoreDNS pod")
	}
	return ip, node, nil
}

// dnsLoad asks the load generator at podIP, from the network namespace nsPath, for one run.
func dnsLoad(nsPath, podIP string, params url.Values) (dnsBenchReport, error) {
	var rep dnsBenchReport
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return lab.DialInNetns(ctx, nsPath, network, addr)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Minute}).Get("http://" + net.JoinHostPort(podIP, strconv.Itoa(dnsLoadPort)) + "/run?" + params.Encode())
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
