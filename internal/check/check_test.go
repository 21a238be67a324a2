package check

import (
	"bytes"
	"strings"
	"testing"

	"github.com/plexus-net/plexus/internal/probe"
)

func testCluster() Cluster {
	return Cluster{
		Nodes:       []Node{{Name: "a", IPs: []string{"10.99.0.2"}}, {Name: "b", IPs: []string{"10.99.0.3", "fd10::3"}}},
		Servers:     map[string][]string{"a": {"10.244.0.5", "fd00::5"}, "b": {"10.244.1.5"}},
		IsolatedIPs: []string{"10.244.0.9"},
		ClusterIPs:  []string{"10.96.0.20", "fd00:96::20"},
		NodePortTCP: 30080,
		APIServer:   []string{"10.96.0.1"},
		APIPort:     443,
		DNSNames:    []string{"kubernetes.default.svc.cluster.local"},
	}
}

func count(ts []probe.Target) map[string]int {
	m := map[string]int{}
	for _, t := range ts {
		m[t.Check]++
	}
	return m
}

func TestTargets(t *testing.T) {
	pod := PodTargets(testCluster())
	want := map[string]int{CheckPodToPod: 3, CheckPodToClusterIP: 4, CheckPodToDNS: 1, CheckPodToAPI: 1, CheckIsolation: 1}
	if got := count(pod); !equalCounts(got, want) {
		t.Errorf("pod targets %v, want %v", got, want)
	}
	for _, tg := range pod {
		if tg.Check == CheckIsolation != tg.ExpectDenied {
			t.Errorf("%+v: only the isolation probe expects a refusal", tg)
		}
		if tg.Address == "" || tg.Kind == "" {
			t.Errorf("incomplete target %+v", tg)
		}
	}
	host := HostTargets(testCluster())
	if got := count(host); !equalCounts(got, map[string]int{CheckNodeToNodePort: 3, CheckNodeToPod: 3}) {
		t.Errorf("host targets %v", got)
	}
	if host[2].Address != "[fd10::3]:30080" {
		t.Errorf("IPv6 node port address %q", host[2].Address)
	}
	c := testCluster()
	c.IsolatedIPs, c.DNSNames = nil, nil
	if got := count(PodTargets(c)); got[CheckIsolation] != 0 || got[CheckPodToDNS] != 0 {
		t.Errorf("no policy, no DNS: %v", got)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestReport(t *testing.T) {
	ok := func(check string, lat int64) probe.Result {
		return probe.Result{Target: probe.Target{Check: check, Name: "x"}, OK: true, LatencyMicros: lat}
	}
	r := Report{Rows: []Row{
		{Source: "a pod", Results: []probe.Result{ok(CheckPodToPod, 300), ok(CheckPodToPod, 500), ok(CheckPodToPod, 100),
			{Target: probe.Target{Check: CheckIsolation, Name: "10.244.0.9", ExpectDenied: true}, Error: "i/o timeout"}}},
		{Source: "b host", Results: []probe.Result{ok(CheckNodeToNodePort, 200)}},
	}}
	var out bytes.Buffer
	Format(&out, r)
	s := out.String()
	for _, want := range []string{"✓ 3/3 300µs", "✓ 1/1", "check: OK, 5 probes from 2 clients"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	r.Rows[0].Results[3].OK = true
	r.Rows = append(r.Rows, Row{Source: "c pod", Err: "pod failed: ImagePullBackOff"})
	out.Reset()
	Format(&out, r)
	s = out.String()
	for _, want := range []string{"✗ 0/1", "answered, but a NetworkPolicy denies it", "c pod: pod failed: ImagePullBackOff", "check: FAILED"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// TestIngressTargets: with an ingress controller, every pod client probes HTTP through each of its
// addresses with the check's host; the ingress column applies only then.
func TestIngressTargets(t *testing.T) {
	c := testCluster()
	if cols := ColumnsFor(c); len(cols) != len(Columns)-1 || strings.Contains(strings.Join(cols, ","), CheckPodToIngress) {
		t.Errorf("without ingress, columns %v", cols)
	}
	c.IngressAddresses = []string{"10.96.0.30:80", "10.99.2.240:80"}
	c.IngressHost = IngressHost("plexus-check-abc")
	var got []probe.Target
	for _, tg := range PodTargets(c) {
		if tg.Check == CheckPodToIngress {
			got = append(got, tg)
		}
	}
	if len(got) != 2 || got[1].Kind != probe.HTTP || got[1].Address != "10.99.2.240:80" || got[1].Host != "plexus-check-abc.check.plexus.invalid" {
		t.Errorf("ingress targets %+v", got)
	}
	if cols := ColumnsFor(c); len(cols) != len(Columns) {
		t.Errorf("with ingress, columns %v", cols)
	}
	in := Ingress("plexus-check-abc", "edge")
	if *in.Spec.IngressClassName != "edge" || in.Spec.Rules[0].Host != c.IngressHost || in.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Name != "http" {
		t.Errorf("Ingress %+v", in.Spec)
	}
}

// TestProbeNodePortIsTheTCPProbePort: the NodePort probes expect the TCP greeting, so they aim at
// the node port of the TCP probe port, wherever the HTTP port sits in the list.
func TestProbeNodePortIsTheTCPProbePort(t *testing.T) {
	svc := Service("ns")
	for i := range svc.Spec.Ports {
		svc.Spec.Ports[i].NodePort = int32(30000 + i)
	}
	if got := probeNodePort(svc); got != 30000 {
		t.Fatalf("node port %d, want the tcp port's 30000 (ports %+v)", got, svc.Spec.Ports)
	}
}
