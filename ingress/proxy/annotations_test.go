package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/plexus-net/plexus/ingress/translate"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNginxAnnotationsThroughTheProxy sends requests through ingress-nginx annotations as
// served: rewrites with and without capture groups, redirects, the upstream Host and headers.
func TestNginxAnnotationsThroughTheProxy(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s host=%s team=%s", r.URL.Path, r.Host, r.Header.Get("X-Team"))
	}))
	defer echo.Close()
	u, _ := url.Parse(echo.URL)
	port, _ := strconv.Atoi(u.Port())
	b := &backend{name: "echo", srv: echo, port: int32(port)}

	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	httpPort := freePort(t)
	opts := translate.Options{ControllerName: controllerName, HTTPListen: listen(t, p, httpPort), StorageDir: t.TempDir(), LogLevel: "ERROR"}
	annotated := func(host string, ann map[string]string, paths ...networkingv1.HTTPIngressPath) networkingv1.Ingress {
		i := ingressOf(host, 0, hostRule(host, paths...))
		i.Annotations = ann
		return i
	}
	in := translate.Input{
		IngressClasses: []networkingv1.IngressClass{{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: networkingv1.IngressClassSpec{Controller: controllerName}}},
		Ingresses: []networkingv1.Ingress{
			annotated("capture.test", map[string]string{"nginx.ingress.kubernetes.io/rewrite-target": "/$2", "nginx.ingress.kubernetes.io/use-regex": "true"},
				toService(networkingv1.PathTypeImplementationSpecific, "/api(/|$)(.*)", "echo")),
			annotated("whole.test", map[string]string{"plexus.dev/rewrite-target": "/index.html"},
				toService(networkingv1.PathTypePrefix, "/app", "echo")),
			annotated("moved.test", map[string]string{"nginx.ingress.kubernetes.io/permanent-redirect": "https://new.test/"},
				toService(networkingv1.PathTypePrefix, "/", "echo")),
			annotated("vhost.test", map[string]string{
				"nginx.ingress.kubernetes.io/upstream-vhost": "internal.test",
				"plexus.dev/request-headers":                 "X-Team: shop",
				"plexus.dev/response-headers":                "X-Served-By: plexus",
			}, toService(networkingv1.PathTypePrefix, "/", "echo")),
		},
	}
	svc, es := serviceFor("echo", b)
	for i := range in.Ingresses {
		in.Ingresses[i].Namespace = "shop"
	}
	in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
	res := translate.Translate(in, opts)
	if len(res.Problems) != 0 {
		t.Fatalf("problems: %+v", res.Problems)
	}
	if _, err := p.Load(res.Config); err != nil {
		t.Fatal(err)
	}
	cl := newClient(httpPort, 0, nil)
	t.Cleanup(cl.closeIdle)
	for _, tc := range []struct {
		host, path string
		status     int
		body, loc  string
	}{
		{"capture.test", "/api/users/7", 200, "/users/7 host=capture.test:" + itoa(httpPort) + " team=", ""},
		{"capture.test", "/API", 200, "/ host=capture.test:" + itoa(httpPort) + " team=", ""}, // nginx regexes ignore case
		{"capture.test", "/apix", 404, "404 page not found\n", ""},
		{"whole.test", "/app/deep/link", 200, "/index.html host=whole.test:" + itoa(httpPort) + " team=", ""},
		{"moved.test", "/any", 301, "", "https://new.test/"},
		{"vhost.test", "/v", 200, "/v host=internal.test team=shop", ""},
	} {
		got, err := cl.get("http", tc.host, tc.path)
		if err != nil {
			t.Errorf("%s%s: %v", tc.host, tc.path, err)
			continue
		}
		if got.status != tc.status || got.body != tc.body || got.location != tc.loc {
			t.Errorf("%s%s = %d %q location %q, want %d %q location %q", tc.host, tc.path, got.status, got.body, got.location, tc.status, tc.body, tc.loc)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://vhost.test:%d/", httpPort), nil)
	resp, err := cl.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Served-By"); got != "plexus" {
		t.Errorf("response header X-Served-By = %q, want plexus", got)
	}
}
