package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/plexus-net/plexus/ingress/translate"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkServe is the proxy's cost per request on loopback: keep-alive connections (one per
// parallel goroutine) through one Ingress path to a backend that answers 64 bytes, on the raw
// path and with the raw path off (Go's http.Server and Caddy's server); profile it with
// -cpuprofile.
func BenchmarkServe(b *testing.B) {
	for _, raw := range []bool{true, false} {
		name := "raw"
		if !raw {
			name = "server"
		}
		b.Run(name, func(b *testing.B) {
			SetRawPath(raw)
			defer SetRawPath(true)
			benchmarkServe(b)
		})
	}
}

func benchmarkServe(b *testing.B) {
	body := []byte("0123456789012345678901234567890123456789012345678901234567890123")
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	defer be.Close()
	u, _ := url.Parse(be.URL)
	port, _ := strconv.Atoi(u.Port())
	p := &Proxy{}
	defer func() { _ = p.Stop() }()
	httpPort := freePort(b)
	opts := translate.Options{ControllerName: controllerName, HTTPListen: listen(b, p, httpPort), StorageDir: b.TempDir(), LogLevel: "ERROR"}
	svc, es := serviceFor("be", &backend{name: "be", port: int32(port)})
	in := translate.Input{
		IngressClasses: []networkingv1.IngressClass{{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: networkingv1.IngressClassSpec{Controller: controllerName}}},
		Ingresses:      []networkingv1.Ingress{ingressOf("be", 0, hostRule("bench.test", toService(networkingv1.PathTypePrefix, "/", "be")))},
	}
	in.Ingresses[0].Namespace = "shop"
	in.Services, in.EndpointSlices = []corev1.Service{svc}, []discoveryv1.EndpointSlice{es}
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		b.Fatal(err)
	}
	req := []byte("GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n")
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
