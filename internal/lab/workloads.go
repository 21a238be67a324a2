package lab

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The sample workloads lab up deploys to show the network working: an echo Deployment spread over
// the nodes, a ClusterIP Service and a NodePort Service in front of it.
const (
	// WorkloadNamespace holds the sample workloads.
	WorkloadNamespace = "default"
	// EchoName names the Deployment and the ClusterIP Service; EchoNodePortName the NodePort one.
	EchoName         = "echo"
	EchoNodePortName = "echo-nodeport"
	// echoHTTPPort is the echo server's HTTP port (hack/images/echo).
	echoHTTPPort = 8080
	// KubernetesVIP is the kubernetes Service's ClusterIP (the first address of the sample's
	// IPv4 service range).
	KubernetesVIP = "10.96.0.1"
	// probeTimeout bounds one cell of the connectivity matrix.
	probeTimeout = 3 * time.Second
	// workloadTimeout bounds the wait for the echo pods and their endpoints.
	workloadTimeout = 3 * time.Minute
)

// workloads returns the manifests of the sample workloads for n nodes.
func workloads(n int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[2]s, labels: {app: %[1]s}}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: %[1]s}}}
      containers:
      - name: echo
        image: %[4]s
        imagePullPolicy: Never
        ports: [{name: http, containerPort: %[5]d}]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  type: ClusterIP
  ipFamilyPolicy: PreferDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: %[1]s}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: %[6]s, namespace: %[2]s}
spec:
  type: NodePort
  ipFamilyPolicy: PreferDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: %[1]s}
  ports: [{name: http, port: 80, targetPort: http}]
`, EchoName, WorkloadNamespace, n, EchoImage, echoHTTPPort, EchoNodePortName)
}

// deployWorkloads applies the sample workloads and waits until every echo pod is ready.
func (c Config) deployWorkloads() error {
	t0 := time.Now()
	c.step("deploying sample workloads: Deployment %s (%d replicas, one per node), Services %s (ClusterIP) and %s (NodePort)",
		EchoName, c.Nodes, EchoName, EchoNodePortName)
	if _, err := c.kubectl(workloads(c.Nodes), "apply", "--server-side", "--field-manager", FieldManager, "-f", "-"); err != nil {
		return err
	}
	if _, err := c.kubectl("", "-n", WorkloadNamespace, "rollout", "status", "deployment/"+EchoName,
		"--timeout", fmt.Sprintf("%ds", int(workloadTimeout.Seconds()))); err != nil {
		pods, _ := c.kubectl("", "-n", WorkloadNamespace, "get", "pods", "-o", "wide")
		return fmt.Errorf("echo Deployment not available:\n%s%w", pods, err)
	}
	c.step("sample workloads ready in %s", time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// echoPod is one echo pod and the network namespace of its process.
type echoPod struct {
	name, node string
	ips        []string
	netns      string // /proc/<pid>/ns/net of the echo process; "" when not found
}

// matrix is what the connectivity matrix reads from the cluster.
type matrix struct {
	pods       []echoPod
	clusterIPs []string
	nodePort   int
}

// gatherMatrix reads the echo pods, their processes and the Services.
func (c Config) gatherMatrix() (matrix, error) {
	var m matrix
	out, err := c.kubectl("", "-n", WorkloadNamespace, "get", "pods", "-l", "app="+EchoName, "-o", "json")
	if err != nil {
		return m, err
	}
	var pods corev1.PodList
	if err := json.Unmarshal([]byte(out), &pods); err != nil {
		return m, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		ep := echoPod{name: p.Name, node: p.Spec.NodeName, netns: c.podNetns(p.Name)}
		for _, ip := range p.Status.PodIPs {
			ep.ips = append(ep.ips, ip.IP)
		}
		m.pods = append(m.pods, ep)
	}
	sort.Slice(m.pods, func(i, j int) bool { return m.pods[i].node < m.pods[j].node })
	svc := func(name string) (*corev1.Service, error) {
		out, err := c.kubectl("", "-n", WorkloadNamespace, "get", "service", name, "-o", "json")
		if err != nil {
			return nil, err
		}
		var s corev1.Service
		return &s, json.Unmarshal([]byte(out), &s)
	}
	s, err := svc(EchoName)
	if err != nil {
		return m, err
	}
	m.clusterIPs = s.Spec.ClusterIPs
	if s, err = svc(EchoNodePortName); err != nil {
		return m, err
	}
	if len(s.Spec.Ports) > 0 {
		m.nodePort = int(s.Spec.Ports[0].NodePort)
	}
	return m, nil
}

// podNetns finds the echo process of pod name (containers are processes of this machine) and
// returns its network namespace path.
func (c Config) podNetns(name string) string {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	want := []byte("POD_NAME=" + name + "\x00")
	for _, f := range procs {
		dir := filepath.Dir(f)
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "echo" {
			continue
		}
		env, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// Another lab on the machine may run a pod of the same name: only this lab's cgroup counts.
		cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
		if err != nil || !strings.Contains(string(cg), ":/"+c.CgroupRoot()+"/") {
			continue
		}
		if strings.Contains(string(env), string(want)) {
			return filepath.Join(dir, "ns", "net")
		}
	}
	return ""
}

// probe GETs url from inside the network namespace nsPath; any HTTP answer is a success (the API
// server answers 401/403 to an anonymous client, which still proves the path).
func probe(nsPath, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return DialInNetns(ctx, nsPath, network, addr)
		},
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // only the path is tested
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// cell is one probe of the matrix.
type cell struct {
	from, to, nsPath, url string
	err                   error
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// PrintMatrix probes and prints the connectivity matrix: every echo pod to every other echo pod
// (each address family), to the echo ClusterIPs and to the kubernetes Service VIP; every node to
// the NodePort on every node; then the DNS rows (summary_dns.go). It returns the number of failed
// cells.
func (c Config) PrintMatrix() (int, error) {
	m, err := c.gatherMatrix()
	if err != nil {
		return 0, fmt.Errorf("read the sample workloads (is the lab up?): %w", err)
	}
	var cells []*cell
	podCols := []string{}
	for _, p := range m.pods {
		for _, ip := range p.ips {
			podCols = append(podCols, p.name+"@"+p.node+" "+family(ip))
		}
	}
	var svcCols []string
	for _, ip := range m.clusterIPs {
		svcCols = append(svcCols, "ClusterIP "+ip)
	}
	svcCols = append(svcCols, "kubernetes "+KubernetesVIP)
	for _, src := range m.pods {
		from := "pod " + src.name + "@" + src.node
		for _, dst := range m.pods {
			if dst.name == src.name {
				continue
			}
			for _, ip := range dst.ips {
				cells = append(cells, &cell{from: from, to: dst.name + "@" + dst.node + " " + family(ip), nsPath: src.netns,
					url: "http://" + hostPort(ip, echoHTTPPort) + "/"})
			}
		}
		for _, ip := range m.clusterIPs {
			cells = append(cells, &cell{from: from, to: "ClusterIP " + ip, nsPath: src.netns, url: "http://" + hostPort(ip, 80) + "/"})
		}
		cells = append(cells, &cell{from: from, to: "kubernetes " + KubernetesVIP, nsPath: src.netns,
			url: "https://" + hostPort(KubernetesVIP, 443) + "/readyz"})
	}
	var npCols []string
	for _, n := range c.nodes() {
		for _, ip := range []string{n.IPv4.String(), n.IPv6.String()} {
			npCols = append(npCols, "NodePort "+hostPort(ip, m.nodePort))
		}
	}
	for _, src := range c.nodes() {
		for _, dst := range c.nodes() {
			for _, ip := range []string{dst.IPv4.String(), dst.IPv6.String()} {
				cells = append(cells, &cell{from: "node " + src.Name, to: "NodePort " + hostPort(ip, m.nodePort),
					nsPath: filepath.Join("/run/netns", src.Netns), url: "http://" + hostPort(ip, m.nodePort) + "/"})
			}
		}
	}
	var wg sync.WaitGroup
	for _, cl := range cells {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cl.nsPath == "" {
				cl.err = fmt.Errorf("no process of the pod found on this machine")
				return
			}
			cl.err = probe(cl.nsPath, cl.url)
		}()
	}
	wg.Wait()

	results := map[[2]string]*cell{}
	var rowsPods, rowsNodes []string
	for _, cl := range cells {
		results[[2]string{cl.from, cl.to}] = cl
	}
	for _, p := range m.pods {
		rowsPods = append(rowsPods, "pod "+p.name+"@"+p.node)
	}
	for _, n := range c.nodes() {
		rowsNodes = append(rowsNodes, "node "+n.Name)
	}
	failed := 0
	print := func(title string, rows, cols []string) {
		fmt.Fprintf(c.Out, "\n%s\n", title)
		w := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
		fmt.Fprint(w, "FROM \\ TO")
		for i := range cols {
			fmt.Fprintf(w, "\t[%d]", i+1)
		}
		fmt.Fprintln(w)
		for _, r := range rows {
			fmt.Fprint(w, r)
			for _, col := range cols {
				cl, ok := results[[2]string{r, col}]
				switch {
				case !ok:
					fmt.Fprint(w, "\t-")
				case cl.err != nil:
					failed++
					fmt.Fprint(w, "\t✗")
				default:
					fmt.Fprint(w, "\t✓")
				}
			}
			fmt.Fprintln(w)
		}
		_ = w.Flush()
		for i, col := range cols {
			fmt.Fprintf(c.Out, "  [%d] %s\n", i+1, col)
		}
	}
	print("Connectivity (HTTP GET from inside each pod's network namespace):", rowsPods, append(podCols, svcCols...))
	print("NodePort "+strconv.Itoa(m.nodePort)+" of Service "+EchoNodePortName+" (from each node's network namespace):", rowsNodes, npCols)
	for _, cl := range cells {
		if cl.err != nil {
			fmt.Fprintf(c.Out, "  ✗ %s -> %s: %v\n", cl.from, cl.to, cl.err)
		}
	}
	fmt.Fprintf(c.Out, "%d of %d cells ✓\n", len(cells)-failed, len(cells))
	dnsFailed, err := c.printDNSMatrix(m)
	if err != nil {
		fmt.Fprintf(c.Out, "\nDNS: %v\n", err)
		dnsFailed = 1
	}
	return failed + dnsFailed, nil
}

func family(ip string) string {
	if strings.Contains(ip, ":") {
		return "IPv6"
	}
	return "IPv4"
}
