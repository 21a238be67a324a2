package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// gwGet sends GET path with Host host to 127.0.0.1:port on a new connection and returns the
// status and body; status 0 when the connection is refused.
func gwGet(t *testing.T, port int, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	req.Host = host
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return 0, ""
	}
	if err != nil {
		t.Fatalf("GET %s:%d%s: %v", host, port, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func gwListener(name string, port int32, host string) gwv1.Listener {
	l := gwv1.Listener{Name: gwv1.SectionName(name), Port: gwv1.PortNumber(port), Protocol: gwv1.HTTPProtocolType}
	if host != "" {
		h := gwv1.Hostname(host)
		l.Hostname = &h
	}
	return l
}

func gwRoute(name string, parents []gwv1.ParentReference, prefix, backend string, timeout string) gwv1.HTTPRoute {
	kind := gwv1.PathMatchPathPrefix
	rule := gwv1.HTTPRouteRule{
		Matches:     []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: &kind, Value: &prefix}}},
		BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(backend), Port: ptrTo(int32(80))}}}},
	}
	if timeout != "" {
		rule.Timeouts = &gwv1.HTTPRouteTimeouts{Request: ptrTo(gwv1.Duration(timeout))}
	}
	return gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parents}, Rules: []gwv1.HTTPRouteRule{rule}}}
}

func gwParent(name, section string) gwv1.ParentReference {
	p := gwv1.ParentReference{Name: gwv1.ObjectName(name)}
	if section != "" {
		p.SectionName = ptrTo(gwv1.SectionName(section))
	}
	return p
}

// TestRealProxyGatewaysIsolated is HTTPRouteMultipleGateways and HTTPRouteListenerPortMatching
// on real loopback sockets: two Gateways with listeners on the same port are served on
// different internal ports, each with its own routes only, a route attached to both on both,
// a listener on port 8080 by hostname; the Ingress socket serves none of them. A Gateway that
// goes stops being served (its socket closes) while the other keeps answering, and a Gateway
// that comes is served without restarting anything.
func TestRealProxyGatewaysIsolated(t *testing.T) {
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	httpPort, httpsPort := freePort(t), freePort(t)
	opts := optionsFor(t, p, httpPort, httpsPort)
	opts.DefaultTLSSecret = nil
	opts.GatewayControllerName = "plexus.dev/gateway"
	in := translate.Input{}
	for _, name := range []string{"a", "b", "shared", "v2"} {
		svc, es := serviceFor(name, echoBackend(t, name))
		in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
	}
	in.GatewayClasses = plexusClass()
	gwA := gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "gw-a"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{gwListener("http", 80, "")}}}
	gwB := gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "gw-b"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{gwListener("http", 80, ""), gwListener("foo-8080", 8080, "foo.com"), gwListener("bar-8080", 8080, "bar.com")}}}
	in.Gateways = []gwv1.Gateway{gwA, gwB}
	in.HTTPRoutes = []gwv1.HTTPRoute{
		gwRoute("only-a", []gwv1.ParentReference{gwParent("gw-a", "")}, "/", "a", ""),
		gwRoute("only-b", []gwv1.ParentReference{gwParent("gw-b", "http")}, "/", "b", ""),
		gwRoute("both", []gwv1.ParentReference{gwParent("gw-a", ""), gwParent("gw-b", "http")}, "/shared", "shared", ""),
		gwRoute("foo-8080", []gwv1.ParentReference{gwParent("gw-b", "foo-8080")}, "/", "v2", ""),
	}
	base := in
	ports := gatewayServices(t, &in, opts)
	portA, portB, portB8080 := ports["shop/gw-a/80"], ports["shop/gw-b/80"], ports["shop/gw-b/8080"]
	if portA == 0 || portB == 0 || portB8080 == 0 || portA == portB {
		t.Fatalf("internal ports %v", ports)
	}
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	for _, tc := range []struct {
		port       int
		host, path string
		status     int
		backend    string
	}{
		{portA, "example.com", "/", 200, "a"},
		{portB, "example.com", "/", 200, "b"},
		{portA, "example.com", "/shared/x", 200, "shared"},
		{portB, "example.com", "/shared/x", 200, "shared"},
		{portB8080, "foo.com:8080", "/", 200, "v2"},
		{portB8080, "bar.com:8080", "/", 404, ""},
		{httpPort, "example.com", "/", 404, ""},
		{httpPort, "example.com", "/shared", 404, ""},
	} {
		status, body := gwGet(t, tc.port, tc.host, tc.path)
		if status != tc.status || (tc.backend != "" && !strings.HasPrefix(body, tc.backend+" ")) {
			t.Errorf("GET %s%s on port %d: %d %q, want %d from %q", tc.host, tc.path, tc.port, status, body, tc.status, tc.backend)
		}
	}

	// gw-b goes: its Service goes with it; gw-a keeps its port and routes.
	in = base
	in.Gateways = []gwv1.Gateway{gwA}
	in.Services = append(in.Services, serviceOf(t, &in, opts, "shop/gw-a", ports))
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load without gw-b: %v", err)
	}
	if status, body := gwGet(t, portA, "example.com", "/"); status != 200 || !strings.HasPrefix(body, "a ") {
		t.Errorf("gw-a after gw-b went: %d %q", status, body)
	}
	for _, port := range []int{portB, portB8080} {
		if status, _ := gwGet(t, port, "example.com", "/"); status != 0 {
			t.Errorf("port %d of the deleted gw-b still answers %d", port, status)
		}
	}
	// gw-b comes back on new ports, served at once.
	in = base
	ports2 := gatewayServices(t, &in, opts)
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load with gw-b again: %v", err)
	}
	if status, body := gwGet(t, ports2["shop/gw-b/80"], "example.com", "/"); status != 200 || !strings.HasPrefix(body, "b ") {
		t.Errorf("gw-b back: %d %q", status, body)
	}
}

// serviceOf returns the Service of one Gateway with the internal ports given in ports.
func serviceOf(t *testing.T, in *translate.Input, opts translate.Options, gw string, ports map[string]int) corev1.Service {
	t.Helper()
	res := translate.Translate(*in, opts)
	for i := range res.Gateway.Gateways {
		g := &res.Gateway.Gateways[i]
		if g.Key.String() != gw {
			continue
		}
		internal := translate.GatewayPorts{}
		for _, lp := range g.ServicePorts() {
			internal[lp.Port] = int32(ports[fmt.Sprintf("%s/%d", gw, lp.Port)])
		}
		return *translate.GatewayService(translate.GatewayServiceSpec{Gateway: g.Key, Namespace: "plexus-system", Ports: g.ServicePorts(), Internal: internal})
	}
	t.Fatalf("no Gateway %s", gw)
	return corev1.Service{}
}

// TestRealProxyGatewayListenerIsolation is GatewayHTTPListenerIsolation on loopback: four
// listeners of one port (no hostname, *.example.com, *.foo.example.com, abc.foo.example.com),
// a route on each, and a fifth listener without routes; a request is served only by the routes
// of the most specific listener its Host matches, every other path gets 404.
func TestRealProxyGatewayListenerIsolation(t *testing.T) {
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	opts := optionsFor(t, p, freePort(t), freePort(t))
	opts.DefaultTLSSecret = nil
	opts.GatewayControllerName = "plexus.dev/gateway"
	in := translate.Input{}
	svc, es := serviceFor("a", echoBackend(t, "a"))
	in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
	in.GatewayClasses = plexusClass()
	listeners := map[string]string{"empty-hostname": "", "wildcard-example-com": "*.example.com", "wildcard-foo-example-com": "*.foo.example.com", "abc-foo-example-com": "abc.foo.example.com"}
	gw := gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "iso"}, Spec: gwv1.GatewaySpec{GatewayClassName: "plexus"}}
	for _, name := range []string{"empty-hostname", "wildcard-example-com", "wildcard-foo-example-com", "abc-foo-example-com"} {
		gw.Spec.Listeners = append(gw.Spec.Listeners, gwListener(name, 80, listeners[name]))
		in.HTTPRoutes = append(in.HTTPRoutes, gwRoute(name, []gwv1.ParentReference{gwParent("iso", name)}, "/"+name, "a", ""))
	}
	// A listener without routes still owns its hostname.
	gw.Spec.Listeners = append(gw.Spec.Listeners, gwListener("quiet", 80, "quiet.example.com"))
	in.Gateways = []gwv1.Gateway{gw}
	port := gatewayServices(t, &in, opts)["shop/iso/80"]
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	owner := map[string]string{"bar.com": "empty-hostname", "bar.example.com": "wildcard-example-com",
		"bar.foo.example.com": "wildcard-foo-example-com", "abc.foo.example.com": "abc-foo-example-com", "quiet.example.com": "quiet"}
	for host, own := range owner {
		for path := range listeners {
			want := 404
			if path == own {
				want = 200
			}
			if status, body := gwGet(t, port, host, "/"+path); status != want {
				t.Errorf("GET %s/%s: %d %q, want %d", host, path, status, body, want)
			}
		}
	}
}

// TestRealProxyGatewayPortTaken: a Gateway whose internal port something else holds costs that
// Gateway only: the config loads, the other Gateway is served, Load reports the address, and the
// same config loaded again serves it once the port is free.
func TestRealProxyGatewayPortTaken(t *testing.T) {
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	opts := optionsFor(t, p, freePort(t), freePort(t))
	opts.DefaultTLSSecret = nil
	opts.GatewayControllerName = "plexus.dev/gateway"
	in := translate.Input{}
	for _, name := range []string{"a", "b"} {
		svc, es := serviceFor(name, echoBackend(t, name))
		in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
	}
	in.GatewayClasses = plexusClass()
	for _, name := range []string{"gw-a", "gw-b"} {
		in.Gateways = append(in.Gateways, gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Spec: gwv1.GatewaySpec{
			GatewayClassName: "plexus", Listeners: []gwv1.Listener{gwListener("http", 80, "")}}})
	}
	in.HTTPRoutes = []gwv1.HTTPRoute{
		gwRoute("a", []gwv1.ParentReference{gwParent("gw-a", "")}, "/", "a", ""),
		gwRoute("b", []gwv1.ParentReference{gwParent("gw-b", "")}, "/", "b", ""),
	}
	ports := gatewayServices(t, &in, opts)
	squatter, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports["shop/gw-b/80"]))
	if err != nil {
		t.Fatal(err)
	}
	cfg := translate.Translate(in, opts).Config
	res, err := p.Load(cfg)
	if err != nil {
		t.Fatalf("a taken Gateway port failed the whole load: %v", err)
	}
	if len(res.Unserved) != 1 || !strings.HasSuffix(res.Unserved[0], fmt.Sprintf(":%d", ports["shop/gw-b/80"])) || res.UnservedErr == nil {
		t.Fatalf("unserved %v (%v), want gw-b's port", res.Unserved, res.UnservedErr)
	}
	if status, body := gwGet(t, ports["shop/gw-a/80"], "example.com", "/"); status != 200 || !strings.HasPrefix(body, "a ") {
		t.Errorf("gw-a next to a taken port: %d %q", status, body)
	}
	squatter.Close()
	if res, err := p.Load(cfg); err != nil || len(res.Unserved) != 0 {
		t.Fatalf("the same config again, port free: %+v %v", res, err)
	}
	if status, body := gwGet(t, ports["shop/gw-b/80"], "example.com", "/"); status != 200 || !strings.HasPrefix(body, "b ") {
		t.Errorf("gw-b once its port is free: %d %q", status, body)
	}
}
