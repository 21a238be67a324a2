package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// echoBackend answers "<name> host=<Host> path=<path> x-set=<X-Set> x-drop=<X-Drop>" and sets
// the response header X-Upstream, so filters show in what a client gets.
func echoBackend(t *testing.T, name string) *backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		fmt.Fprintf(w, "%s host=%s path=%s x-set=%s x-drop=%s", name, r.Host, r.URL.Path, r.Header.Get("X-Set"), r.Header.Get("X-Drop"))
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return &backend{name: name, srv: srv, port: int32(p)}
}

// TestRealProxyServesGatewayRoutes loads a Gateway API translation into Caddy and sends real
// requests: matches and their precedence, wildcard hostnames over several labels, header
// filters, redirect, rewrite, weights (counted) and the 500 of a rule without backends.
func TestRealProxyServesGatewayRoutes(t *testing.T) {
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	httpPort, httpsPort := freePort(t), freePort(t)
	opts := optionsFor(t, p, httpPort, httpsPort)
	opts.DefaultTLSSecret = nil
	opts.GatewayControllerName = "plexus.dev/gateway"

	in := translate.Input{}
	for _, name := range []string{"a", "b"} {
		svc, es := serviceFor(name, echoBackend(t, name))
		in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
	}
	slowSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "slow")
	}))
	t.Cleanup(slowSrv.Close)
	slowSvc, slowES := serviceFor("slow", &backend{name: "slow", srv: slowSrv, port: int32(slowSrv.Listener.Addr().(*net.TCPAddr).Port)})
	in.Services, in.EndpointSlices = append(in.Services, slowSvc), append(in.EndpointSlices, slowES)
	mirrored := make(chan string, 16)
	mirrorSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mirrored <- r.Method + " " + r.Host + r.URL.RequestURI() + " " + r.Header.Get("X-Set") + " " + string(b)
	}))
	t.Cleanup(mirrorSrv.Close)
	mirrorSvc, mirrorES := serviceFor("mirror", &backend{name: "mirror", srv: mirrorSrv, port: int32(mirrorSrv.Listener.Addr().(*net.TCPAddr).Port)})
	in.Services, in.EndpointSlices = append(in.Services, mirrorSvc), append(in.EndpointSlices, mirrorES)
	in.GatewayClasses = []gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: gwv1.GatewayClassSpec{ControllerName: "plexus.dev/gateway"}}}
	in.Gateways = []gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edge"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}}
	to := func(svc string, weight int32) gwv1.HTTPBackendRef {
		return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(svc), Port: ptrTo(int32(80))}, Weight: &weight}}
	}
	match := func(kind gwv1.PathMatchType, path string) gwv1.HTTPRouteMatch {
		return gwv1.HTTPRouteMatch{Path: &gwv1.HTTPPathMatch{Type: &kind, Value: &path}}
	}
	canary := match(gwv1.PathMatchPathPrefix, "/")
	canary.Headers = []gwv1.HTTPHeaderMatch{{Name: "x-canary", Value: "yes"}}
	prefix := gwv1.PrefixMatchHTTPPathModifier
	rules := []gwv1.HTTPRouteRule{
		{BackendRefs: []gwv1.HTTPBackendRef{to("a", 1)}},
		{Matches: []gwv1.HTTPRouteMatch{canary}, BackendRefs: []gwv1.HTTPBackendRef{to("b", 1)}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchExact, "/exact")}, BackendRefs: []gwv1.HTTPBackendRef{to("b", 1)}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchPathPrefix, "/headers")},
			Filters: []gwv1.HTTPRouteFilter{
				{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Set", Value: "set"}}, Remove: []string{"X-Drop"}}},
				{Type: gwv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Upstream", Value: "rewritten"}}}}},
			BackendRefs: []gwv1.HTTPBackendRef{to("a", 1)}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchPathPrefix, "/old")},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gwv1.HTTPRequestRedirectFilter{
				Scheme: ptrTo("https"), StatusCode: ptrTo(301), Path: &gwv1.HTTPPathModifier{Type: prefix, ReplacePrefixMatch: ptrTo("/new")}}}}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchPathPrefix, "/rewrite")},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: &gwv1.HTTPURLRewriteFilter{
				Hostname: ptrTo(gwv1.PreciseHostname("internal.test")), Path: &gwv1.HTTPPathModifier{Type: prefix, ReplacePrefixMatch: ptrTo("/")}}}},
			BackendRefs: []gwv1.HTTPBackendRef{to("a", 1)}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchPathPrefix, "/split")}, BackendRefs: []gwv1.HTTPBackendRef{to("a", 3), to("b", 1)}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchPathPrefix, "/none")}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchPathPrefix, "/slow")}, BackendRefs: []gwv1.HTTPBackendRef{to("slow", 1)},
			Timeouts: &gwv1.HTTPRouteTimeouts{Request: ptrTo(gwv1.Duration("10s")), BackendRequest: ptrTo(gwv1.Duration("200ms"))}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchPathPrefix, "/in-time")}, BackendRefs: []gwv1.HTTPBackendRef{to("a", 1)},
			Timeouts: &gwv1.HTTPRouteTimeouts{Request: ptrTo(gwv1.Duration("10s"))}},
		// An expression that does not compile must not stop the config from loading.
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchRegularExpression, "/bad[")}, BackendRefs: []gwv1.HTTPBackendRef{to("b", 1)}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchPathPrefix, "/halfbad")}, BackendRefs: []gwv1.HTTPBackendRef{to("a", 1), to("missing", 1)}},
		{Matches: []gwv1.HTTPRouteMatch{match(gwv1.PathMatchPathPrefix, "/mirror")},
			Filters: []gwv1.HTTPRouteFilter{
				{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Set", Value: "before-mirror"}}}},
				{Type: gwv1.HTTPRouteFilterRequestMirror, RequestMirror: &gwv1.HTTPRequestMirrorFilter{BackendRef: gwv1.BackendObjectReference{Name: "mirror", Port: ptrTo(int32(80))}}}},
			BackendRefs: []gwv1.HTTPBackendRef{to("a", 1)}},
	}
	in.HTTPRoutes = []gwv1.HTTPRoute{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "site"}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "edge"}}},
		Hostnames:       []gwv1.Hostname{"*.shop.test"}, Rules: rules}}}
	gwPort := gatewayServices(t, &in, opts)["shop/edge/80"]
	res := translate.Translate(in, opts)
	if _, err := p.Load(res.Config); err != nil {
		t.Fatalf("load: %v", err)
	}

	do := func(path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", gwPort, path), nil)
		req.Host = "www.eu.shop.test"
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, tc := range []struct {
		path   string
		hdr    map[string]string
		status int
		body   string
	}{
		{"/anything", nil, 200, "a host=www.eu.shop.test path=/anything"},
		{"/anything", map[string]string{"X-Canary": "yes"}, 200, "b "},
		{"/exact", nil, 200, "b "},
		{"/exact/not", nil, 200, "a "},
		{"/headers/x", map[string]string{"X-Drop": "gone"}, 200, "a host=www.eu.shop.test path=/headers/x x-set=set x-drop="},
		{"/rewrite/deep/er", nil, 200, "a host=internal.test path=/deep/er"},
		{"/rewrite", nil, 200, "a host=internal.test path=/ "},
		{"/none", nil, 500, "500"},
		{"/slow", nil, 504, ""},
		{"/in-time", nil, 200, "a "},
	} {
		resp, body := do(tc.path, tc.hdr)
		if resp.StatusCode != tc.status || !strings.HasPrefix(body+" ", tc.body) {
			t.Errorf("GET %s %v: %d %q, want %d %q...", tc.path, tc.hdr, resp.StatusCode, body, tc.status, tc.body)
		}
	}
	if resp, _ := do("/headers", nil); resp.Header.Get("X-Upstream") != "rewritten" {
		t.Errorf("response header X-Upstream = %q, want the filter's value", resp.Header.Get("X-Upstream"))
	}
	if resp, _ := do("/old/page?q=1", nil); resp.StatusCode != 301 || resp.Header.Get("Location") != "https://www.eu.shop.test/new/page?q=1" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The mirror gets a copy, after the filters before it, body included; the client the real answer.
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/mirror/x?y=1", gwPort), strings.NewReader("payload"))
	req.Host = "m.shop.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "a host=m.shop.test path=/mirror/x x-set=before-mirror") {
		t.Errorf("mirrored request answered %q", b)
	}
	select {
	case got := <-mirrored:
		if got != "POST m.shop.test/mirror/x?y=1 before-mirror payload" {
			t.Errorf("mirror got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("the mirror got no copy in 10s")
	}
	counts := map[string]int{}
	for range 400 {
		_, body := do("/split", nil)
		counts[strings.Fields(body)[0]]++
	}
	// Weighted round-robin is exact per cycle: 3 of every 4 requests go to a.
	if counts["a"] != 300 || counts["b"] != 100 {
		t.Errorf("weights 3:1 over 400 requests gave %v", counts)
	}
	// An invalid backend keeps its weight as 500s: about half of 400 (8 standard deviations of
	// slack either way, so chance alone never fails the test).
	statuses := map[int]int{}
	for range 400 {
		resp, _ := do("/halfbad", nil)
		statuses[resp.StatusCode]++
	}
	if statuses[500] < 120 || statuses[500] > 280 || statuses[200]+statuses[500] != 400 {
		t.Errorf("a 1:1 split with a missing backend gave %v, want about 200 of each of 200 and 500", statuses)
	}
}

func ptrTo[T any](v T) *T { return &v }

// gatewayServices adds to in the per-Gateway Services the controller's leader would make, with a
// free loopback port as the internal port of each Gateway and listener port, and returns those
// ports by "namespace/name/listener port".
func gatewayServices(t *testing.T, in *translate.Input, opts translate.Options) map[string]int {
	t.Helper()
	res := translate.Translate(*in, opts)
	ports := map[string]int{}
	for i := range res.Gateway.Gateways {
		g := &res.Gateway.Gateways[i]
		internal := translate.GatewayPorts{}
		for _, lp := range g.ServicePorts() {
			p := freePort(t)
			internal[lp.Port] = int32(p)
			ports[fmt.Sprintf("%s/%d", g.Key, lp.Port)] = p
		}
		if svc := translate.GatewayService(translate.GatewayServiceSpec{Gateway: g.Key, Namespace: "plexus-system", Ports: g.ServicePorts(), Internal: internal}); svc != nil {
			in.Services = append(in.Services, *svc)
		}
	}
	return ports
}

// TestRealProxyGatewayTLS: HTTPS listeners terminate with their Secrets, picked by SNI; a
// wildcard listener covers names several labels deep; other names get the fallback certificate.
func TestRealProxyGatewayTLS(t *testing.T) {
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	httpPort, httpsPort := freePort(t), freePort(t)
	opts := optionsFor(t, p, httpPort, httpsPort)
	opts.DefaultTLSSecret = nil
	opts.GatewayControllerName = "plexus.dev/gateway"
	wild, api, fallback := newTestCert(t, "*.shop.test"), newTestCert(t, "api.other.test"), newTestCert(t, "fallback.invalid")
	svc, es := serviceFor("a", echoBackend(t, "a"))
	in := translate.Input{Services: []corev1.Service{svc}, EndpointSlices: []discoveryv1.EndpointSlice{es},
		Secrets:             []corev1.Secret{wild.secret("wild"), api.secret("api")},
		FallbackCertificate: &translate.PEMPair{CertPEM: fallback.certPEM, KeyPEM: fallback.keyPEM}}
	listener := func(name, host, secret string) gwv1.Listener {
		h := gwv1.Hostname(host)
		return gwv1.Listener{Name: gwv1.SectionName(name), Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: &h,
			TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: gwv1.ObjectName(secret)}}}}
	}
	in.GatewayClasses = []gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: gwv1.GatewayClassSpec{ControllerName: "plexus.dev/gateway"}}}
	in.Gateways = []gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edge"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{listener("wild", "*.shop.test", "wild"), listener("api", "api.other.test", "api")}}}}
	in.HTTPRoutes = []gwv1.HTTPRoute{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "site"}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "edge"}}},
		Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Name: "a", Port: ptrTo(int32(80))}}}}}}}}}
	gwPort := gatewayServices(t, &in, opts)["shop/edge/443"]
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	for sni, want := range map[string]string{"a.b.shop.test": "*.shop.test", "x.shop.test": "*.shop.test", "api.other.test": "api.other.test", "else.test": "fallback.invalid"} {
		cert, err := getInsecure(gwPort, sni)
		if err != nil {
			t.Fatalf("handshake with SNI %s: %v", sni, err)
		}
		if len(cert.DNSNames) == 0 || cert.DNSNames[0] != want {
			t.Errorf("SNI %s got the certificate of %v, want %s", sni, cert.DNSNames, want)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(wild.leaf)
	// (X.509 lets *.shop.test cover one label only, so the verified request uses one.)
	a, err := newClient(httpPort, gwPort, roots).get("https", "x.shop.test", "/x")
	if err != nil || a.status != 200 || !strings.HasPrefix(a.body, "a host=x.shop.test:") {
		t.Fatalf("HTTPS through the wildcard listener: %+v %v", a, err)
	}
	// A Host of another listener than the connection's server name: 421
	// (GatewayHTTPSListenerDetectMisdirectedRequests); another name of the same listener: served.
	for _, c := range []struct {
		sni, host string
		want      int
	}{
		{"x.shop.test", "api.other.test", http.StatusMisdirectedRequest},
		{"api.other.test", "x.shop.test", http.StatusMisdirectedRequest},
		{"x.shop.test", "y.shop.test", http.StatusOK},
		{"api.other.test", "api.other.test:443", http.StatusOK},
	} {
		status, err := statusWithSNI(gwPort, c.sni, c.host)
		if err != nil || status != c.want {
			t.Errorf("SNI %s, Host %s: status %d (%v), want %d", c.sni, c.host, status, err, c.want)
		}
	}
}

// statusWithSNI sends GET / over HTTPS to the loopback port with TLS server name sni and Host
// host (certificates not verified) and returns the status.
func statusWithSNI(port int, sni, host string) (int, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true}} // #nosec G402 -- a test of the server's name handling
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/", port), nil)
	if err != nil {
		return 0, err
	}
	req.Host = host
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
