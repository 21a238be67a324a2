package bench

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plexus-net/plexus/internal/testnet"
)

// Addresses of the benchmark: the client namespace and the server namespace (backend and both
// proxies) on one veth pair.
const (
	clientAddr  = "10.251.7.1/30"
	serverIP    = "10.251.7.2"
	backendPort = 18080
	plexusPort  = 8081
	nginxPort   = 8082
	benchHost   = "bench.test"
	connections = 64
	// deployedMemoryLimit is plexus-ingress's container memory limit in the operator's
	// Deployment (controllers/render/ingress_deployment.go).
	deployedMemoryLimit = "512Mi"
	warmUp              = time.Second
	measure             = 5 * time.Second
)

// BenchmarkVsNginx runs the same load (connections keep-alive connections, measure long) from
// a client namespace through plexus-ingress (the binary, -manifests) and through Debian's nginx,
// both proxying to one Go backend in the server namespace, and reports requests/s, p50/p99 and
// each proxy's CPU time per request side by side (the median of alternating rounds).
//
// plexus-ingress runs as the operator deploys it: with its container's memory limit
// (-memory-limit, which sets its Go soft memory limit and GOGC 400); nginx runs as Debian
// builds it, with the configuration of Nginx (nginx.go).
//
// What keeps it fair: both proxies get as many workers as the machine has CPUs (nginx
// worker_processes, Go's GOMAXPROCS default), neither is pinned, both speak HTTP/1.1 on both
// sides with keep-alive to the backend, neither writes an access log, both get the same fresh
// connections and the same generator, and the response size each client saw is logged. The
// generator and the backend share the CPUs with the proxy (this process), so requests/s also
// depends on their cost; the CPU time per request of each proxy does not.
func BenchmarkVsNginx(b *testing.B) {
	testnet.RequireRoot(b)
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		b.Skip("nginx not installed (apt-get install nginx-light)")
	}
	if err := testnet.CheckNoOverlap(netip.MustParsePrefix(clientAddr).Masked()); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "plexus-ingress")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/plexus-net/plexus/cmd/plexus-ingress").CombinedOutput(); err != nil {
		b.Fatalf("build plexus-ingress: %v: %s", err, out)
	}

	client := testnet.NewNetns(b, "ingc")
	server := testnet.NewNetns(b, "ings")
	testnet.Veth(b, client, server, "eth0", "eth0")
	client.Exec(b, "ip", "addr", "add", clientAddr, "dev", "eth0")
	server.Exec(b, "ip", "addr", "add", serverIP+"/30", "dev", "eth0")

	serveBackend(b, server)
	plexusCmd := startPlexus(b, server, bin, dir)
	nginxCmd := startNginx(b, server, nginx, dir)

	targets := []target{
		{name: "plexus", port: plexusPort, pid: plexusCmd.Process.Pid},
		{name: "nginx", port: nginxPort, pid: nginxCmd.Process.Pid},
	}
	for _, t := range targets {
		waitServing(b, client, net.JoinHostPort(serverIP, fmt.Sprint(t.port)))
	}
	// Alternate the proxies round by round, so that a change in the shared machine's load hits
	// both, and report each one's median round.
	runs := map[string][]run{}
	for round := 0; round < rounds; round++ {
		for _, t := range targets {
			r := measureOnce(b, client, t)
			runs[t.name] = append(runs[t.name], r)
			b.Logf("round %d %s: %.0f requests/s, p50 %v, p99 %v, proxy CPU %v per request (%.2f cores), load generator and backend %v per request; %d requests, %d errors, %d bytes per response, %d connections to the backend; load %s",
				round+1, t.name, r.RPS(), r.P50, r.P99, r.proxyCPU, r.proxyCores(), r.ownCPU, r.Requests, r.Errors, r.ResponseBytes, r.backendDials, loadAvg())
		}
	}
	p, n := median(runs["plexus"]), median(runs["nginx"])
	// The ratio within each round compares the two proxies under the same load; its median
	// is the steadier figure when the machine's load swings between rounds.
	var ratios []float64
	for i := range runs["plexus"] {
		ratios = append(ratios, 100*runs["plexus"][i].RPS()/runs["nginx"][i].RPS())
	}
	sort.Float64s(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "rps-%-of-nginx-same-round")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	b.ReportMetric(p.RPS(), "plexus-rps")
	b.ReportMetric(n.RPS(), "nginx-rps")
	b.ReportMetric(100*p.RPS()/n.RPS(), "rps-%-of-nginx")
	b.ReportMetric(ms(p.P50), "plexus-p50-ms")
	b.ReportMetric(ms(p.P99), "plexus-p99-ms")
	b.ReportMetric(ms(n.P50), "nginx-p50-ms")
	b.ReportMetric(ms(n.P99), "nginx-p99-ms")
	b.ReportMetric(float64(p.P99)/float64(n.P99), "p99-x-nginx")
	b.ReportMetric(us(p.proxyCPU), "plexus-cpu-us/req")
	b.ReportMetric(us(n.proxyCPU), "nginx-cpu-us/req")
	b.ReportMetric(us(p.ownCPU), "plexus-client-cpu-us/req")
	b.ReportMetric(us(n.ownCPU), "nginx-client-cpu-us/req")
}

// rounds is how many times each proxy is measured; the median round is reported.
const rounds = 3

// target is one proxy under test.
type target struct {
	name string
	port int
	pid  int // the proxy's process; its descendants count too
}

// run is one measurement of one proxy.
type run struct {
	Result
	// proxyCPU is the proxy's CPU time per request (user + system, all its processes).
	proxyCPU time.Duration
	// ownCPU is this process's CPU time per request: the load generator and the backend.
	ownCPU time.Duration
	// backendDials is how many connections the proxy opened to the backend.
	backendDials int
}

// proxyCores is how many CPUs the proxy kept busy on average.
func (r run) proxyCores() float64 {
	return r.proxyCPU.Seconds() * float64(r.Requests) / r.Duration.Seconds()
}

// measureOnce opens fresh connections to t, warms it up and measures it.
func measureOnce(b *testing.B, client *testnet.Netns, t target) run {
	conns := dial(b, client, net.JoinHostPort(serverIP, fmt.Sprint(t.port)), connections)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	Load(conns, benchHost, warmUp)
	proxyBefore, ownBefore, dialsBefore := mustCPU(b, t.pid), mustOwnCPU(b), backendConns.Load()
	r := Load(conns, benchHost, measure)
	proxyAfter, ownAfter, dials := mustCPU(b, t.pid), mustOwnCPU(b), backendConns.Load()-dialsBefore
	if r.Errors > 0 || r.Requests == 0 {
		b.Errorf("%s: %d requests, %d errors", t.name, r.Requests, r.Errors)
		return run{Result: r}
	}
	perReq := func(d time.Duration) time.Duration { return d / time.Duration(r.Requests) }
	if h, ok := backendSaw.Load().(http.Header); ok {
		b.Logf("%s: the backend saw the headers %s", t.name, strings.Join(slices.Sorted(maps.Keys(h)), ", "))
	}
	return run{Result: r, proxyCPU: perReq(proxyAfter - proxyBefore), ownCPU: perReq(ownAfter - ownBefore), backendDials: int(dials)}
}

// median is the run with the median requests/s.
func median(runs []run) run {
	sorted := append([]run(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].RPS() < sorted[j].RPS() })
	return sorted[len(sorted)/2]
}

func mustCPU(b *testing.B, pid int) time.Duration {
	d, err := cpuTime(pid)
	if err != nil {
		b.Fatalf("CPU time of %d: %v", pid, err)
	}
	return d
}

func mustOwnCPU(b *testing.B) time.Duration {
	d, err := ownCPUTime()
	if err != nil {
		b.Fatalf("own CPU time: %v", err)
	}
	return d
}

func loadAvg() string {
	load, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(load))[:3], " ")
}

// backendConns counts the connections the backend accepted: with keep-alive to the backend,
// a proxy opens a few per round, not one per request.
var backendConns atomic.Int64

// backendSaw is the sorted header names of the last request the backend served, to check that
// both proxies send the backend the same request.
var backendSaw atomic.Value

// serveBackend answers every request with a 64-byte body, in ns.
func serveBackend(b *testing.B, ns *testnet.Netns) {
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(serverIP, fmt.Sprint(backendPort)))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	body := []byte(strings.Repeat("x", 63) + "\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backendSaw.Store(r.Header)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			backendConns.Add(1)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
}

// startPlexus runs plexus-ingress in ns with an Ingress for benchHost to the backend.
func startPlexus(b *testing.B, ns *testnet.Netns, bin, dir string) *exec.Cmd {
	manifest := fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: plexus}
spec: {controller: plexus.dev/ingress}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {namespace: bench, name: bench}
spec:
  ingressClassName: plexus
  rules:
  - host: %s
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: backend, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {namespace: bench, name: backend}
spec:
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: bench, name: backend-1, labels: {kubernetes.io/service-name: backend}}
addressType: IPv4
ports: [{name: http, port: %d, protocol: TCP}]
endpoints: [{addresses: [%s], conditions: {ready: true}}]
`, benchHost, backendPort, serverIP)
	path := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		b.Fatal(err)
	}
	// PLEXUS_BENCH_INGRESS_ENV (e.g. "GOGC=200 GOMAXPROCS=1") sets the proxy's environment
	// only, for experiments; env(1) execs the proxy, so the pid stays the proxy's.
	args := append([]string{"env"}, strings.Fields(os.Getenv("PLEXUS_BENCH_INGRESS_ENV"))...)
	args = append(args, bin, "-manifests", path,
		"-http-listen", net.JoinHostPort(serverIP, fmt.Sprint(plexusPort)),
		"-https-listen", net.JoinHostPort(serverIP, fmt.Sprint(plexusPort+1000)),
		"-storage-dir", filepath.Join(dir, "caddy"), "-log-level", "ERROR",
		// As deployed: the operator's Deployment gives plexus-ingress its container's memory
		// limit (controllers/render), which sets its soft memory limit and GOGC.
		"-memory-limit", deployedMemoryLimit)
	cmd := ns.Start(b, args...)
	stopGracefully(b, cmd)
	return cmd
}

// startNginx runs nginx in ns as a reverse proxy to the backend, with keep-alive upstream
// connections like plexus-ingress.
func startNginx(b *testing.B, ns *testnet.Netns, nginx, dir string) *exec.Cmd {
	conf := Nginx{Dir: dir, Listen: net.JoinHostPort(serverIP, fmt.Sprint(nginxPort)), Host: benchHost,
		Upstreams: []string{net.JoinHostPort(serverIP, fmt.Sprint(backendPort))}, Workers: runtime.NumCPU()}.Config()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := ns.Start(b, nginx, "-e", filepath.Join(dir, "nginx-error.log"), "-c", path)
	stopGracefully(b, cmd)
	return cmd
}

// stopGracefully asks cmd to stop with SIGTERM before testnet's cleanup kills it: nginx's
// master stops its workers only then (a killed master leaves them running).
func stopGracefully(b *testing.B, cmd *exec.Cmd) {
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
}

// dial opens n connections to addr from ns.
func dial(b *testing.B, ns *testnet.Netns, addr string, n int) []net.Conn {
	var conns []net.Conn
	if err := ns.Do(func() error {
		for i := 0; i < n; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	}); err != nil {
		b.Fatalf("dial %s: %v", addr, err)
	}
	return conns
}

// waitServing polls addr from ns until it answers 200 for benchHost (bounded at 20 s).
func waitServing(b *testing.B, ns *testnet.Netns, addr string) {
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		var conns []net.Conn
		if err := ns.Do(func() (err error) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conns = append(conns, c)
			}
			return err
		}); err != nil {
			last = err
			time.Sleep(50 * time.Millisecond)
			continue
		}
		r := Load(conns, benchHost, time.Millisecond)
		_ = conns[0].Close()
		if r.Requests > 0 {
			return
		}
		last = fmt.Errorf("%d requests, %d errors", r.Requests, r.Errors)
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("%s does not serve: %v", addr, last)
}
