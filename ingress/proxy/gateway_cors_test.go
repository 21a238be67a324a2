package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// TestRealProxyGatewayCORS is HTTPRouteCORS on real loopback sockets, with the conformance
// suite's routes: preflights are answered by the proxy (the backend never sees them) with the
// policy's headers for allowed origins (exact, wildcard over several labels, "*", with and
// without credentials) and none for others; actual requests reach the backend and their answers
// get the origin, credentials and exposed headers, replacing the backend's own CORS headers, or
// lose them for an origin the policy does not allow.
func TestRealProxyGatewayCORS(t *testing.T) {
	p, opts := gatewayProxy(t)

	seen := make(chan string, 64) // method and path of every request the backend gets
	backendSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Method + " " + r.URL.Path
		w.Header().Set("Access-Control-Allow-Origin", "https://backend.example") // overridden by the route's policy
		w.Header().Set("X-Header-3", "three")
		fmt.Fprintf(w, "backend %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(backendSrv.Close)
	svc, es := serviceFor("infra", &backend{name: "infra", srv: backendSrv, port: int32(backendSrv.Listener.Addr().(*net.TCPAddr).Port)})
	in := translate.Input{}
	in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
	in.GatewayClasses = plexusClass()
	in.Gateways = []gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edge"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{gwListener("http", 80, "")}}}}
	yes, no := true, false
	corsRule := func(prefix string, f gwv1.HTTPCORSFilter) gwv1.HTTPRouteRule {
		r := gwRoute("", nil, prefix, "infra", "").Spec.Rules[0]
		r.Filters = []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterCORS, CORS: &f}}
		return r
	}
	route := gwRoute("cors", []gwv1.ParentReference{gwParent("edge", "")}, "/plain", "infra", "")
	route.Spec.Rules = append(route.Spec.Rules,
		corsRule("/cors-1", gwv1.HTTPCORSFilter{
			AllowOrigins: []gwv1.CORSOrigin{"https://www.foo.com", "https://*.bar.com"}, AllowCredentials: &yes,
			AllowMethods: []gwv1.HTTPMethodWithWildcard{"GET", "OPTIONS"}, AllowHeaders: []gwv1.HTTPHeaderName{"x-header-1", "x-header-2"},
			ExposeHeaders: []gwv1.HTTPHeaderName{"x-header-3", "x-header-4"}, MaxAge: 3600}),
		corsRule("/cors-2", gwv1.HTTPCORSFilter{AllowOrigins: []gwv1.CORSOrigin{"https://www.foo.com"}, AllowMethods: []gwv1.HTTPMethodWithWildcard{"*"}}),
		corsRule("/cors-wildcard-origin", gwv1.HTTPCORSFilter{AllowOrigins: []gwv1.CORSOrigin{"*"}, AllowMethods: []gwv1.HTTPMethodWithWildcard{"PUT"}, AllowCredentials: &no}),
		corsRule("/cors-creds", gwv1.HTTPCORSFilter{AllowOrigins: []gwv1.CORSOrigin{"*"}, AllowMethods: []gwv1.HTTPMethodWithWildcard{"*"},
			AllowHeaders: []gwv1.HTTPHeaderName{"*"}, ExposeHeaders: []gwv1.HTTPHeaderName{"*"}, AllowCredentials: &yes}),
		corsRule("/cors-port", gwv1.HTTPCORSFilter{AllowOrigins: []gwv1.CORSOrigin{"http://*.foo.com:8080", "https://www.foo.com"}}),
	)
	in.HTTPRoutes = []gwv1.HTTPRoute{route}
	port := gatewayServices(t, &in, opts)["shop/edge/80"]
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}

	c := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	send := func(method, path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	preflight := func(origin, method, headers string) map[string]string {
		h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
		if headers != "" {
			h["Access-Control-Request-Headers"] = headers
		}
		return h
	}
	const absent = "<absent>"
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		want               map[string]string // response header → value (absent: not sent)
		toBackend          bool
	}{
		{"preflight exact origin", "OPTIONS", "/cors-1", preflight("https://www.foo.com", "GET", "x-header-1, x-header-2"), 204, map[string]string{
			"Access-Control-Allow-Origin": "https://www.foo.com", "Access-Control-Allow-Methods": "GET, OPTIONS",
			"Access-Control-Allow-Headers": "x-header-1, x-header-2", "Access-Control-Expose-Headers": "x-header-3, x-header-4",
			"Access-Control-Max-Age": "3600", "Access-Control-Allow-Credentials": "true"}, false},
		{"preflight wildcard origin, several labels", "OPTIONS", "/cors-1", preflight("https://xpto.www.bar.com", "GET", ""), 204, map[string]string{
			"Access-Control-Allow-Origin": "https://xpto.www.bar.com"}, false},
		{"preflight wildcard needs a label", "OPTIONS", "/cors-1", preflight("https://bar.com", "GET", ""), 204, map[string]string{
			"Access-Control-Allow-Origin": absent}, false},
		{"preflight other scheme", "OPTIONS", "/cors-1", preflight("http://www.foo.com", "GET", ""), 204, map[string]string{
			"Access-Control-Allow-Origin": absent}, false},
		{"preflight default port spelled out", "OPTIONS", "/cors-1", preflight("https://www.foo.com:443", "GET", ""), 204, map[string]string{
			"Access-Control-Allow-Origin": "https://www.foo.com:443"}, false},
		{"preflight non-matching origin", "OPTIONS", "/cors-1", preflight("https://foobar.com", "GET", ""), 204, map[string]string{
			"Access-Control-Allow-Origin": absent, "Access-Control-Allow-Methods": absent, "Access-Control-Max-Age": absent}, false},
		{"actual request, exact origin", "GET", "/cors-1", map[string]string{"Origin": "https://www.foo.com"}, 200, map[string]string{
			"Access-Control-Allow-Origin": "https://www.foo.com", "Access-Control-Allow-Credentials": "true",
			"Access-Control-Expose-Headers": "x-header-3, x-header-4", "Access-Control-Max-Age": absent}, true},
		{"actual request, non-matching origin", "GET", "/cors-1", map[string]string{"Origin": "https://foobar.com"}, 200, map[string]string{
			"Access-Control-Allow-Origin": absent, "Access-Control-Allow-Credentials": absent}, true},
		{"OPTIONS without request method is no preflight", "OPTIONS", "/cors-1", map[string]string{"Origin": "https://www.foo.com"}, 200, map[string]string{
			"Access-Control-Allow-Origin": "https://www.foo.com"}, true},
		{"allowMethods * echoes the method", "OPTIONS", "/cors-2", preflight("https://www.foo.com", "POST", ""), 204, map[string]string{
			"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Credentials": absent, "Access-Control-Max-Age": "5"}, false},
		{"allowOrigins * with a port", "OPTIONS", "/cors-wildcard-origin", preflight("https://foobar.com:12345", "PUT", ""), 204, map[string]string{
			"Access-Control-Allow-Origin": "https://foobar.com:12345", "Access-Control-Allow-Methods": "PUT"}, false},
		{"allowOrigins * actual request", "PUT", "/cors-wildcard-origin", map[string]string{"Origin": "https://foobar.com"}, 200, map[string]string{
			"Access-Control-Allow-Origin": "https://foobar.com", "Access-Control-Allow-Credentials": absent}, true},
		{"wildcards with credentials echo the request", "OPTIONS", "/cors-creds", preflight("https://other.foo.com", "PUT", "x-header-1, x-header-2"), 204, map[string]string{
			"Access-Control-Allow-Origin": "https://other.foo.com", "Access-Control-Allow-Methods": "PUT",
			"Access-Control-Allow-Headers": "x-header-1, x-header-2", "Access-Control-Allow-Credentials": "true", "Access-Control-Expose-Headers": absent}, false},
		{"allowHeaders * without requested headers", "OPTIONS", "/cors-creds", preflight("https://other.foo.com", "PUT", ""), 204, map[string]string{
			"Access-Control-Allow-Headers": absent}, false},
		{"exposeHeaders * with credentials lists the response's headers", "GET", "/cors-creds", map[string]string{"Origin": "https://other.foo.com"}, 200, map[string]string{
			"Access-Control-Allow-Origin": "https://other.foo.com", "Access-Control-Allow-Credentials": "true"}, true},
		{"wildcard origin with a port", "OPTIONS", "/cors-port", preflight("http://a.foo.com:8080", "GET", ""), 204, map[string]string{
			"Access-Control-Allow-Origin": "http://a.foo.com:8080"}, false},
		{"wildcard origin, other port", "OPTIONS", "/cors-port", preflight("http://a.foo.com", "GET", ""), 204, map[string]string{
			"Access-Control-Allow-Origin": absent}, false},
		{"a rule without the filter keeps the backend's headers", "OPTIONS", "/plain", preflight("https://www.foo.com", "GET", ""), 200, map[string]string{
			"Access-Control-Allow-Origin": "https://backend.example"}, true},
	} {
		resp, body := send(tc.method, tc.path, tc.hdr)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d %q, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
		for name, want := range tc.want {
			got, ok := resp.Header[http.CanonicalHeaderKey(name)]
			switch {
			case want == absent && ok:
				t.Errorf("%s: %s is %q, want it absent", tc.name, name, got)
			case want != absent && strings.Join(got, ",") != want:
				t.Errorf("%s: %s is %q, want %q", tc.name, name, got, want)
			}
		}
		select {
		case r := <-seen:
			if !tc.toBackend {
				t.Errorf("%s: the backend got %s, want the proxy to answer", tc.name, r)
			}
		default:
			if tc.toBackend {
				t.Errorf("%s: the backend got nothing", tc.name)
			}
		}
		if tc.name == "exposeHeaders * with credentials lists the response's headers" {
			if got := resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "X-Header-3") || strings.Contains(got, "*") {
				t.Errorf("%s: Access-Control-Expose-Headers %q, want the response's names", tc.name, got)
			}
		}
	}
}
