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

// TestAcceptEncodingPassesThrough checks that the proxy sends the backend the client's
// Accept-Encoding as it is: none when the client sent none (Go's transport would otherwise ask
// for gzip and unzip the answer itself), and a gzip answer unchanged to a client that asked.
func TestAcceptEncodingPassesThrough(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ae := r.Header.Get("Accept-Encoding")
		if ae == "gzip" {
			w.Header().Set("Content-Encoding", "gzip")
		}
		fmt.Fprintf(w, "accept-encoding=%q", ae)
	}))
	defer be.Close()
	u, _ := url.Parse(be.URL)
	port, _ := strconv.Atoi(u.Port())
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	httpPort := freePort(t)
	opts := translate.Options{ControllerName: controllerName, HTTPListen: listen(t, p, httpPort), StorageDir: t.TempDir(), LogLevel: "ERROR"}
	svc, es := serviceFor("be", &backend{name: "be", port: int32(port)})
	in := translate.Input{
		IngressClasses: []networkingv1.IngressClass{{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: networkingv1.IngressClassSpec{Controller: controllerName}}},
		Ingresses:      []networkingv1.Ingress{ingressOf("be", 0, hostRule("enc.test", toService(networkingv1.PathTypePrefix, "/", "be")))},
		Services:       []corev1.Service{svc},
		EndpointSlices: []discoveryv1.EndpointSlice{es},
	}
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, tc := range []struct{ header, wantBody, wantEncoding string }{
		{"", `accept-encoding=""`, ""},
		{"Accept-Encoding: gzip\r\n", `accept-encoding="gzip"`, "gzip"},
	} {
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: enc.test\r\n%s\r\n", tc.header); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != tc.wantBody || resp.Header.Get("Content-Encoding") != tc.wantEncoding {
			t.Errorf("request with %q: body %q, Content-Encoding %q; want %q, %q",
				tc.header, body, resp.Header.Get("Content-Encoding"), tc.wantBody, tc.wantEncoding)
		}
	}
}
