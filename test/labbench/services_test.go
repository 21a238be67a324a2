package labbench

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/plexus-net/plexus/internal/lab"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// servicesPerRun is how many Services the programming benchmark creates, one after another.
	servicesPerRun = 100
	// Targets of network programming latency (Service created -> reachable from every node).
	targetP50 = 200 * time.Millisecond
	targetP99 = time.Second
	// dialTimeout bounds one connection attempt: a SYN to a VIP that is not programmed yet is
	// dropped, and the kernel's own retransmission (after 1 s) would hide the real latency, so each
	// attempt is a fresh connection given up quickly.
	dialTimeout = 20 * time.Millisecond
	// retryPause separates attempts that failed fast (refused, reset): short enough for the
	// figures' resolution, long enough that probing does not starve the agents of CPU.
	retryPause = 10 * time.Millisecond
	// reachTimeout bounds the wait for one Service on one node.
	reachTimeout = 30 * time.Second
	// benchNamespace holds the Services; the lab's echo pods are in lab.WorkloadNamespace too.
	benchNamespace = lab.WorkloadNamespace
)

// BenchmarkServiceProgramming creates 100 ClusterIP Services (dual-stack, in front of the lab's
// echo pods) one after another and times each from just before its create call until a TCP
// connection to every ClusterIP, from every node's network namespace, gets an HTTP answer from an
// echo pod. It reports p50, p99 and max against the targets (p50 ≤ 200 ms, p99 ≤ 1 s), and, to
// tell the control plane's share from Plexus', when the Service's EndpointSlice (written by
// kube-controller-manager) first listed a ready endpoint.
func BenchmarkServiceProgramming(b *testing.B) {
	l := startLab(b)
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sw, err := watchSlices(ctx, l)
	if err != nil {
		b.Fatal(err)
	}
	var all, eps, after []time.Duration
	for i := range b.N {
		for j := range servicesPerRun {
			name := fmt.Sprintf("labbench-%d-%03d", i, j)
			t0 := time.Now()
			d, err := timeService(ctx, l, name)
			if err != nil {
				b.Fatalf("Service %s: %v", name, err)
			}
			all = append(all, d)
			if at, ok := sw.readyAt(name); ok {
				eps = append(eps, at.Sub(t0))
				after = append(after, d-at.Sub(t0))
			}
		}
	}
	b.StopTimer()
	p50, p99, maxD := percentile(all, 50), percentile(all, 99), slices.Max(all)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(maxD), "max-ms")
	b.Logf("network programming, %d Services x %d nodes x both families: p50 %s (target ≤ %s: %s), p99 %s (target ≤ %s: %s), max %s",
		len(all), l.nodes, rd(p50), targetP50, verdict(p50 <= targetP50), rd(p99), targetP99, verdict(p99 <= targetP99), rd(maxD))
	if len(eps) > 0 {
		e50, e99 := percentile(eps, 50), percentile(eps, 99)
		b.ReportMetric(ms(e50), "slice-p50-ms")
		b.ReportMetric(ms(e99), "slice-p99-ms")
		a50, a99 := percentile(after, 50), percentile(after, 99)
		b.ReportMetric(ms(a50), "after-slice-p50-ms")
		b.ReportMetric(ms(a99), "after-slice-p99-ms")
		b.Logf("split: Service created -> EndpointSlice with a ready endpoint seen (kube-controller-manager, API watch): p50 %s, p99 %s; "+
			"EndpointSlice seen -> reachable from every node (Plexus agents): p50 %s, p99 %s (%d of %d slices seen)",
			rd(e50), rd(e99), rd(a50), rd(a99), len(eps), len(all))
	}
}

// sliceWatch records when each Service's EndpointSlice first listed a ready endpoint.
type sliceWatch struct {
	mu    sync.Mutex
	ready map[string]time.Time
}

func (s *sliceWatch) readyAt(svc string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.ready[svc]
	return t, ok
}

// watchSlices watches the EndpointSlices of benchNamespace until ctx ends.
func watchSlices(ctx context.Context, l *benchLab) (*sliceWatch, error) {
	w, err := l.kube.DiscoveryV1().EndpointSlices(benchNamespace).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	s := &sliceWatch{ready: map[string]time.Time{}}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			es, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			svc := es.Labels[discoveryv1.LabelServiceName]
			for _, e := range es.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					s.mu.Lock()
					if _, seen := s.ready[svc]; !seen {
						s.ready[svc] = time.Now()
					}
					s.mu.Unlock()
					break
				}
			}
		}
	}()
	return s, nil
}

// timeService creates one Service and returns how long it took to be reachable from every node.
func timeService(ctx context.Context, l *benchLab, name string) (time.Duration, error) {
	dual := corev1.IPFamilyPolicyPreferDualStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace, Labels: map[string]string{"app.kubernetes.io/created-by": "labbench"}},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeClusterIP,
			IPFamilyPolicy: &dual,
			IPFamilies:     []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			Selector:       map[string]string{"app": lab.EchoName},
			Ports:          []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	t0 := time.Now()
	created, err := l.kube.CoreV1().Services(benchNamespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return 0, err
	}
	if len(created.Spec.ClusterIPs) == 0 {
		return 0, fmt.Errorf("no ClusterIP allocated")
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		last time.Time
		errs []error
	)
	for i := 1; i <= l.nodes; i++ {
		n := l.cfg.NodeAt(i)
		for _, ip := range created.Spec.ClusterIPs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				at, err := waitReachable(filepath.Join("/run/netns", n.Netns), net.JoinHostPort(ip, "80"), t0.Add(reachTimeout))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("from %s to %s: %w", n.Name, ip, err))
				}
				if at.After(last) {
					last = at
				}
			}()
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		return 0, errs[0]
	}
	return last.Sub(t0), nil
}

// waitReachable connects to addr from inside the network namespace nsPath until an echo pod answers
// an HTTP request over the connection, and returns when that answer arrived.
func waitReachable(nsPath, addr string, deadline time.Time) (time.Time, error) {
	var at time.Time
	err := lab.InNetns(nsPath, func() error {
		var last error
		// Attempts start retryPause apart; one that failed slowly (a timeout) is retried at once.
		if testnet.Poll(time.Until(deadline), retryPause, func() bool {
			if last = echoOnce(addr); last != nil {
				return false
			}
			at = time.Now()
			return true
		}) {
			return nil
		}
		return fmt.Errorf("not reachable within %s: %w", reachTimeout, last)
	})
	return at, err
}

// echoOnce opens a connection to addr (from the calling thread's network namespace), sends an HTTP
// request and checks that an HTTP answer comes back.
func echoOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: labbench\r\n\r\n"); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(c, buf, len("HTTP/1.x 200"))
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.") {
		return fmt.Errorf("not an HTTP answer: %q", buf[:n])
	}
	return nil
}

// percentile is the nearest-rank p-th percentile of ds (not modified).
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
