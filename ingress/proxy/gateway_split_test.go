package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// TestRealProxyGatewayBackendFilters: backendRefs with request header filters of their own, 3:1:
// every request reaches the backend whose filter set its Backend header (none crosses over), the
// counts follow the weights exactly over whole cycles, and a backend's response header filter
// shows only on its answers.
func TestRealProxyGatewayBackendFilters(t *testing.T) {
	p, opts := gatewayProxy(t)
	in := translate.Input{}
	for _, name := range []string{"a", "b"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s backend-header=%s", name, r.Header.Get("Backend"))
		}))
		t.Cleanup(srv.Close)
		addBackend(&in, name, &backend{name: name, srv: srv, port: int32(srv.Listener.Addr().(*net.TCPAddr).Port)})
	}
	in.GatewayClasses = plexusClass()
	in.Gateways = []gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edge"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}}
	to := func(svc string, weight int32, fs ...gwv1.HTTPRouteFilter) gwv1.HTTPBackendRef {
		return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
			Name: gwv1.ObjectName(svc), Port: ptrTo(int32(80))}, Weight: &weight}, Filters: fs}
	}
	setBackend := func(v string) gwv1.HTTPRouteFilter {
		return gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
			RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "Backend", Value: v}}}}
	}
	tagB := gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Served-By", Value: "b"}}}}
	in.HTTPRoutes = []gwv1.HTTPRoute{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "split"}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "edge"}}},
		Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{to("a", 3, setBackend("a")), to("b", 1, setBackend("b"), tagB)}}}}}}
	gwPort := gatewayServices(t, &in, opts)["shop/edge/80"]
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	counts := map[string]int{}
	for i := 0; i < 40; i++ {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", gwPort))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var name, header string
		if _, err := fmt.Sscanf(string(body), "%s backend-header=%s", &name, &header); err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if header != name {
			t.Errorf("request %d reached %s with Backend: %s", i, name, header)
		}
		if tag := resp.Header.Get("X-Served-By"); (name == "b") != (tag == "b") {
			t.Errorf("request %d from %s: X-Served-By %q", i, name, tag)
		}
		counts[name]++
	}
	if counts["a"] != 30 || counts["b"] != 10 {
		t.Errorf("40 requests at 3:1 went %v, want a:30 b:10", counts)
	}
}
