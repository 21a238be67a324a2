package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plexus-net/plexus/ingress/translate"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lockedBuffer is an access log sink safe for the proxy's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMetricsAndAccessLog scrapes the metrics of requests to a served route, to a route whose
// only endpoint refuses connections, and to a route without a Service, and reads the access log.
func TestMetricsAndAccessLog(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	UseMetrics(m)
	logs := &lockedBuffer{}
	SetAccessLog(logs)
	t.Cleanup(func() { UseMetrics(nil); SetAccessLog(nil) })

	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	port := freePort(t)
	opts := translate.Options{ControllerName: controllerName, HTTPListen: listen(t, p, port), StorageDir: t.TempDir(), LogLevel: "ERROR", Metrics: true}
	up := startBackend(t, "up")
	down := startBackend(t, "down")
	down.srv.Close() // its endpoint refuses connections
	in := translate.Input{
		IngressClasses: []networkingv1.IngressClass{{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: networkingv1.IngressClassSpec{Controller: controllerName}}},
		Ingresses: []networkingv1.Ingress{ingressOf("m", 0, hostRule("m.test",
			toService(networkingv1.PathTypePrefix, "/ok", "svc-up"),
			toService(networkingv1.PathTypeExact, "/down", "svc-down"),
			toService(networkingv1.PathTypePrefix, "/none", "svc-none"),
		))},
	}
	for name, b := range map[string]*backend{"svc-up": up, "svc-down": down} {
		svc, es := serviceFor(name, b)
		in.Services = append(in.Services, svc)
		in.EndpointSlices = append(in.EndpointSlices, es)
	}
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatal(err)
	}
	cl := newClient(port, 0, nil)
	t.Cleanup(cl.closeIdle)
	for path, want := range map[string]int{"/ok/a": 200, "/ok": 200, "/down": 502, "/none/x": 503} {
		got, err := cl.get("http", "m.test", path)
		if err != nil || got.status != want {
			t.Fatalf("GET %s = %+v, %v; want %d", path, got, err, want)
		}
	}

	scrape := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer scrape.Close()
	resp, err := http.Get(scrape.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`plexus_ingress_requests_total{route="m.test/ok/*",status="2xx"} 2`,
		`plexus_ingress_requests_total{route="m.test=/down",status="5xx"} 1`,
		`plexus_ingress_requests_total{route="m.test/none/*",status="5xx"} 1`,
		`plexus_ingress_upstream_errors_total{route="m.test=/down"} 1`,
		`plexus_ingress_request_duration_seconds_count{route="m.test/ok/*"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q; got:\n%s", want, grepLines(text, "plexus_ingress_"))
		}
	}
	if strings.Contains(text, `plexus_ingress_upstream_errors_total{route="m.test/none/*"}`) {
		t.Errorf("a route without a Service counted as an upstream error")
	}

	var entries []accessEntry
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var e accessEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	statuses := map[string]int{}
	for _, e := range entries {
		statuses[e.URI] = e.Status
		if e.Method != "GET" || !strings.HasPrefix(e.Host, "m.test") {
			t.Errorf("access log entry %+v: want method GET and host m.test", e)
		}
	}
	if want := map[string]int{"/ok/a": 200, "/ok": 200, "/down": 502, "/none/x": 503}; len(entries) != 4 || !mapsEqual(statuses, want) {
		t.Errorf("access log statuses %v (%d lines), want %v", statuses, len(entries), want)
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func mapsEqual(a, b map[string]int) bool {
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
