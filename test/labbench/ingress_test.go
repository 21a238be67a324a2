package labbench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/ingress/bench"
	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// ingressBenchHost is the Ingress host both proxies serve.
	ingressBenchHost = "bench.ingress.test"
	// ingressBenchService is the benchmark's own LoadBalancer Service in front of the
	// plexus-ingress pod: port 80 to plexus-ingress, nginxBenchPort to the nginx that runs in the
	// same pod's network namespace, so both proxies sit behind the same address and path.
	ingressBenchService = "labbench-proxies"
	nginxBenchPort      = 18082
	// ingressBenchConns keep-alive connections, measured ingressBenchMeasure per round after
	// ingressBenchWarmUp, ingressBenchRounds rounds per proxy, alternating.
	ingressBenchConns   = 64
	ingressBenchWarmUp  = time.Second
	ingressBenchMeasure = 5 * time.Second
	ingressBenchRounds  = 3
)

// BenchmarkIngressVsNginx compares plexus-ingress, as the operator deploys it on the lab, with
// Debian's nginx as a plain reverse proxy, both proxying to the lab's echo pods (one per node)
// under the same load from outside the cluster (the lab's underlay namespace, where its router
// is).
//
// What keeps it fair: the operator runs one plexus-ingress replica, and nginx runs in that pod's
// network namespace and its container's CPU cgroups (a process of this machine, as the pod's
// containers are, with the same CPU weight), so one
// LoadBalancer Service of the benchmark's own reaches both through the same address, the same
// node and the same Service path, on two ports. nginx proxies to the same echo pods by their
// addresses, round-robin, as plexus-ingress does from the EndpointSlices. Both get as many
// workers as the machine has CPUs, keep-alive connections on both sides, no access log; the
// load generator is this process, with the same fresh connections for both, and the proxies
// are measured in alternating rounds so a change of the machine's load hits both. It reports
// the median round's requests/s, p50, p99 and CPU time per request of each proxy.
func BenchmarkIngressVsNginx(b *testing.B) {
	nginxBin, err := exec.LookPath("nginx")
	if err != nil {
		b.Skip("nginx not installed (apt-get install nginx-light)")
	}
	l := startLab(b)
	ctx := context.Background()
	k, err := ctrlClient(l)
	if err != nil {
		b.Fatal(err)
	}
	restore, err := enableIngress(ctx, k)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := restore(); err != nil {
			b.Errorf("restore spec.ingress: %v", err)
		}
	})
	if err := waitIngressServing(ctx, k, 4*time.Minute); err != nil {
		b.Fatal(err)
	}
	if err := createBenchIngress(ctx, l); err != nil {
		b.Fatal(err)
	}
	pid, podIP, err := ingressProcess(ctx, l)
	if err != nil {
		b.Fatal(err)
	}
	upstreams, err := echoUpstreams(ctx, l)
	if err != nil {
		b.Fatal(err)
	}
	nginxPID := startNginxInNetns(b, nginxBin, fmt.Sprintf("/proc/%d/ns/net", pid), pid, upstreams)
	vip, plexusPort, err := createProxiesService(ctx, l)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = l.kube.CoreV1().Services(lab.PlexusNamespace).Delete(context.Background(), ingressBenchService, metav1.DeleteOptions{})
		_ = l.kube.NetworkingV1().Ingresses(lab.WorkloadNamespace).Delete(context.Background(), ingressBenchService, metav1.DeleteOptions{})
	})
	b.Logf("plexus-ingress pid %d (pod %s), nginx pid %d in its network namespace; upstreams %v; Service %s, plexus port 80 -> %s",
		pid, podIP, nginxPID, upstreams, vip, plexusPort)

	nsPath := filepath.Join("/run/netns", l.cfg.UnderlayNetns())
	targets := []ingressTarget{
		{name: "plexus", addr: net.JoinHostPort(vip, "80"), pid: pid},
		{name: "nginx", addr: net.JoinHostPort(vip, fmt.Sprint(nginxBenchPort)), pid: nginxPID},
	}
	for _, t := range targets {
		if err := waitProxying(nsPath, t.addr, 2*time.Minute); err != nil {
			b.Fatalf("%s at %s: %v", t.name, t.addr, err)
		}
	}
	runs := map[string][]ingressRun{}
	for round := 1; round <= ingressBenchRounds; round++ {
		for _, t := range targets {
			r, err := measureProxy(nsPath, t)
			if err != nil {
				b.Fatalf("round %d %s: %v", round, t.name, err)
			}
			runs[t.name] = append(runs[t.name], r)
			b.Logf("round %d %s: %.0f requests/s, p50 %v, p99 %v, proxy CPU %v per request, %d requests, %d errors, %d bytes per response; load %s",
				round, t.name, r.RPS(), r.P50, r.P99, r.proxyCPU, r.Requests, r.Errors, r.ResponseBytes, loadAverage())
		}
	}
	var ratios []float64
	for i := range runs["plexus"] {
		ratios = append(ratios, 100*runs["plexus"][i].RPS()/runs["nginx"][i].RPS())
	}
	sort.Float64s(ratios)
	p, n := medianRun(runs["plexus"]), medianRun(runs["nginx"])
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	b.ReportMetric(p.RPS(), "plexus-rps")
	b.ReportMetric(n.RPS(), "nginx-rps")
	b.ReportMetric(100*p.RPS()/n.RPS(), "rps-%-of-nginx")
	b.ReportMetric(ratios[len(ratios)/2], "rps-%-of-nginx-same-round")
	b.ReportMetric(ms(p.P50), "plexus-p50-ms")
	b.ReportMetric(ms(p.P99), "plexus-p99-ms")
	b.ReportMetric(ms(n.P50), "nginx-p50-ms")
	b.ReportMetric(ms(n.P99), "nginx-p99-ms")
	b.ReportMetric(float64(p.P99)/float64(n.P99), "p99-x-nginx")
	b.ReportMetric(us(p.proxyCPU), "plexus-cpu-us/req")
	b.ReportMetric(us(n.proxyCPU), "nginx-cpu-us/req")
}

// ingressTarget is one proxy under test: where the load goes and the process whose CPU counts.
type ingressTarget struct {
	name, addr string
	pid        int
}

// ingressRun is one measured round of one proxy.
type ingressRun struct {
	bench.Result
	proxyCPU time.Duration // per request
}

func medianRun(runs []ingressRun) ingressRun {
	sorted := slices.Clone(runs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].RPS() < sorted[j].RPS() })
	return sorted[len(sorted)/2]
}

// measureProxy opens fresh connections to t from the namespace nsPath, warms them up and
// measures one round.
func measureProxy(nsPath string, t ingressTarget) (ingressRun, error) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < ingressBenchConns; i++ {
		c, err := lab.DialInNetns(context.Background(), nsPath, "tcp", t.addr)
		if err != nil {
			return ingressRun{}, err
		}
		conns = append(conns, c)
	}
	bench.Load(conns, ingressBenchHost, ingressBenchWarmUp)
	before, err := bench.CPUTime(t.pid)
	if err != nil {
		return ingressRun{}, err
	}
	r := bench.Load(conns, ingressBenchHost, ingressBenchMeasure)
	after, err := bench.CPUTime(t.pid)
	if err != nil {
		return ingressRun{}, err
	}
	if r.Errors > 0 || r.Requests == 0 {
		return ingressRun{Result: r}, fmt.Errorf("%d requests, %d errors", r.Requests, r.Errors)
	}
	return ingressRun{Result: r, proxyCPU: (after - before) / time.Duration(r.Requests)}, nil
}

// waitProxying polls addr from nsPath until one request for the bench host gets 200.
func waitProxying(nsPath, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		c, err := lab.DialInNetns(context.Background(), nsPath, "tcp", addr)
		if err == nil {
			r := bench.Load([]net.Conn{c}, ingressBenchHost, 200*time.Millisecond)
			_ = c.Close()
			if r.Requests > 0 && r.Errors == 0 {
				return nil
			}
			err = fmt.Errorf("%d requests, %d errors", r.Requests, r.Errors)
		}
		last = err
		time.Sleep(time.Second)
	}
	return fmt.Errorf("not proxying after %s: %v", timeout, last)
}

// ctrlClient is a controller-runtime client of the lab, for the ClusterNetwork.
func ctrlClient(l *benchLab) (client.Client, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", l.cfg.AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	log.SetLogger(logr.Discard()) // the client logs nothing the benchmark wants
	return client.New(rc, client.Options{Scheme: controllers.NewScheme()})
}

// enableIngress turns ingress on with one replica and returns what puts spec.ingress back.
func enableIngress(ctx context.Context, k client.Client) (func() error, error) {
	var saved *v1.Ingress
	update := func(set func(cn *v1.ClusterNetwork)) error {
		var err error
		for i := 0; i < 30; i++ {
			cn := &v1.ClusterNetwork{}
			if err = k.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn); err != nil {
				return err
			}
			set(cn)
			if err = k.Update(ctx, cn); !apierrors.IsConflict(err) {
				return err
			}
			time.Sleep(time.Second)
		}
		return err
	}
	err := update(func(cn *v1.ClusterNetwork) {
		saved = cn.Spec.Ingress.DeepCopy()
		cn.Spec.Ingress = &v1.Ingress{Enabled: ptr.To(true), Replicas: ptr.To[int32](1)}
	})
	return func() error { return update(func(cn *v1.ClusterNetwork) { cn.Spec.Ingress = saved }) }, err
}

// waitIngressServing waits for IngressAvailable=True at the current generation.
func waitIngressServing(ctx context.Context, k client.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no condition yet"
	for time.Now().Before(deadline) {
		cn := &v1.ClusterNetwork{}
		if err := k.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(cn.Status.Conditions, v1.ConditionIngressAvailable); c != nil {
			last = fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
			if c.ObservedGeneration == cn.Generation && c.Status == metav1.ConditionTrue && strings.Contains(c.Message, "1 of 1") {
				return nil
			}
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("IngressAvailable not true with 1 replica after %s: %s", timeout, last)
}

// createBenchIngress routes the bench host to the lab's echo Service.
func createBenchIngress(ctx context.Context, l *benchLab) error {
	in := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: lab.WorkloadNamespace, Name: ingressBenchService},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("plexus"), // the default ingress.ingressClassName
			Rules: []networkingv1.IngressRule{{Host: ingressBenchHost, IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: lab.EchoName, Port: networkingv1.ServiceBackendPort{Name: "http"}}},
				}}},
			}}},
		},
	}
	_, err := l.kube.NetworkingV1().Ingresses(lab.WorkloadNamespace).Create(ctx, in, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// ingressProcess finds the one ready plexus-ingress pod and its process on this machine (the
// lab's containers are processes here): the process whose comm is plexus-ingress, in this lab's
// cgroup, whose network namespace holds the pod's address.
func ingressProcess(ctx context.Context, l *benchLab) (pid int, podIP string, err error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, err := l.kube.CoreV1().Pods(lab.PlexusNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=ingress"})
		if err != nil {
			return 0, "", err
		}
		var ready []corev1.Pod
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.PodIP != "" && podReady(p) {
				ready = append(ready, p)
			}
		}
		if len(ready) == 1 && len(pods.Items) == 1 {
			podIP = ready[0].Status.PodIP
			break
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("want exactly one ready plexus-ingress pod, have %d of %d", len(ready), len(pods.Items))
		}
		time.Sleep(time.Second)
	}
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, f := range comms {
		dir := filepath.Dir(f)
		comm, err := os.ReadFile(f)
		if err != nil || strings.TrimSpace(string(comm)) != "plexus-ingress" {
			continue
		}
		cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
		if err != nil || !strings.Contains(string(cg), ":/"+l.cfg.CgroupRoot()+"/") {
			continue
		}
		var has bool
		_ = lab.InNetns(filepath.Join(dir, "ns", "net"), func() error {
			addrs, _ := net.InterfaceAddrs()
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.String() == podIP {
					has = true
				}
			}
			return nil
		})
		if has {
			var n int
			_, _ = fmt.Sscanf(filepath.Base(dir), "%d", &n)
			return n, podIP, nil
		}
	}
	return 0, "", fmt.Errorf("no plexus-ingress process holds the pod address %s", podIP)
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// echoUpstreams are the echo pods' IPv4 endpoints (address:port) from the echo Service's
// EndpointSlices: the backends both proxies use.
func echoUpstreams(ctx context.Context, l *benchLab) ([]string, error) {
	eps, err := l.kube.DiscoveryV1().EndpointSlices(lab.WorkloadNamespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + lab.EchoName})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range eps.Items {
		if s.AddressType != discoveryv1.AddressTypeIPv4 || len(s.Ports) == 0 || s.Ports[0].Port == nil {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				out = append(out, net.JoinHostPort(e.Addresses[0], fmt.Sprint(*s.Ports[0].Port)))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the %s Service has no ready IPv4 endpoints", lab.EchoName)
	}
	slices.Sort(out)
	return out, nil
}

// startNginxInNetns runs nginx in the network namespace nsPath and the CPU cgroups of process
// podPID (the plexus-ingress container's; the pid is nginx's master's) and stops it when the
// benchmark ends.
func startNginxInNetns(b *testing.B, nginxBin, nsPath string, podPID int, upstreams []string) int {
	dir := b.TempDir()
	conf := bench.Nginx{Dir: dir, Listen: fmt.Sprintf("0.0.0.0:%d", nginxBenchPort), Host: ingressBenchHost,
		Upstreams: upstreams, Workers: runtime.NumCPU()}.Config()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	// nginx joins the plexus-ingress container's CPU cgroups before it starts: a pod's
	// processes run with the CPU weight of its request (100m: cpu.shares 102), a process of
	// this machine with the root's (1024), and on a machine the lab keeps busy that weight,
	// not the proxy, decided how much CPU each got.
	procs, err := cpuCgroupProcs(podPID)
	if err != nil {
		b.Fatalf("the plexus-ingress container's CPU cgroups: %v", err)
	}
	// sh writes its own pid into each cgroup.procs, then execs nsenter, which execs nginx:
	// the pid stays nginx's master's, and its workers inherit the cgroups.
	script := `n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 1; shift; n=$((n-1)); done; exec "$@"`
	args := append([]string{"-c", script, "sh", strconv.Itoa(len(procs))}, procs...)
	args = append(args, "nsenter", "--net="+nsPath, nginxBin, "-e", filepath.Join(dir, "nginx-error.log"), "-c", path)
	cmd := exec.Command("sh", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start nginx: %v", err)
	}
	b.Cleanup(func() {
		// SIGTERM: nginx's master stops its workers only then (a killed master leaves them).
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	return cmd.Process.Pid
}

// cpuCgroupProcs returns the cgroup.procs files of pid's CPU cgroups: the cpu, cpuacct and
// cpuset hierarchies of cgroup v1, or its cgroup under v2.
func cpuCgroupProcs(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dirs []string
		if parts[0] == "0" && parts[1] == "" {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				dirs = []string{"/sys/fs/cgroup"} // unified hierarchy
			}
		} else {
			for _, ctrl := range strings.Split(parts[1], ",") {
				if ctrl == "cpu" || ctrl == "cpuacct" || ctrl == "cpuset" {
					dirs = append(dirs, "/sys/fs/cgroup/"+ctrl)
				}
			}
		}
		for _, d := range dirs {
			f := filepath.Join(d, parts[2], "cgroup.procs")
			if _, err := os.Stat(f); err != nil {
				return nil, err
			}
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CPU cgroup found in /proc/%d/cgroup", pid)
	}
	return out, nil
}

// createProxiesService makes the benchmark's LoadBalancer Service in front of the plexus-ingress
// pod (port 80 to its HTTP port, nginxBenchPort to nginx) and returns its load-balancer address
// and plexus-ingress's target port.
func createProxiesService(ctx context.Context, l *benchLab) (vip string, plexusTarget string, err error) {
	op, err := l.kube.CoreV1().Services(lab.PlexusNamespace).Get(ctx, render.IngressName, metav1.GetOptions{})
	if err != nil {
		return "", "", err
	}
	var target intstr.IntOrString
	for _, p := range op.Spec.Ports {
		if p.Port == 80 {
			target = p.TargetPort
		}
	}
	if target.String() == "0" || target.String() == "" {
		return "", "", fmt.Errorf("the %s Service has no port 80", render.IngressName)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: lab.PlexusNamespace, Name: ingressBenchService},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: render.IngressLabels(),
			Ports: []corev1.ServicePort{
				{Name: "plexus", Port: 80, TargetPort: target},
				{Name: "nginx", Port: nginxBenchPort, TargetPort: intstr.FromInt32(nginxBenchPort)},
			},
		},
	}
	if _, err := l.kube.CoreV1().Services(lab.PlexusNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", "", err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		s, err := l.kube.CoreV1().Services(lab.PlexusNamespace).Get(ctx, ingressBenchService, metav1.GetOptions{})
		if err != nil {
			return "", "", err
		}
		if len(s.Status.LoadBalancer.Ingress) > 0 {
			return s.Status.LoadBalancer.Ingress[0].IP, target.String(), nil
		}
		time.Sleep(time.Second)
	}
	return "", "", fmt.Errorf("Service %s got no load-balancer address", ingressBenchService)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
