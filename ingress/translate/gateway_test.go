package translate

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gatewayInput is a class plexus of ours, one of another controller, and the shop backends.
func gatewayInput(gateways []gwv1.Gateway, routes ...gwv1.HTTPRoute) Input {
	svcs, slices := twoBackends()
	return Input{
		GatewayClasses: []gwv1.GatewayClass{gatewayClass("plexus", gatewayController), gatewayClass("other", "example.com/other")},
		Gateways:       gateways,
		HTTPRoutes:     routes,
		Services:       svcs,
		EndpointSlices: slices,
		Namespaces:     []corev1.Namespace{namespace("shop", map[string]string{"team": "shop"}), namespace("infra", nil), namespace("guest", map[string]string{"team": "guest"})},
	}
}

// TestGatewayMatchesAndPrecedence covers every match kind and the API's precedence: Exact, then
// regular expressions, then longest prefix, then method, header and query counts, then age.
func TestGatewayMatchesAndPrecedence(t *testing.T) {
	get := gwv1.HTTPMethodGet
	exactHdr, reHdr := gwv1.HeaderMatchExact, gwv1.HeaderMatchRegularExpression
	rich := pathMatch(gwv1.PathMatchPathPrefix, "/api/")
	rich.Method = &get
	rich.Headers = []gwv1.HTTPHeaderMatch{{Type: &exactHdr, Name: "x-env", Value: "canary"}, {Type: &reHdr, Name: "X-User", Value: "^a.*"},
		{Name: "X-ENV", Value: "ignored: the first match of a name wins"}}
	rich.QueryParams = []gwv1.HTTPQueryParamMatch{{Name: "v", Value: "2"}}
	older := httpRoute("shop", "older", 1, []string{"shop.example.com"}, []gwv1.ParentReference{parent("shop", "edge", "")},
		gwv1.HTTPRouteRule{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/api")},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}})
	newer := httpRoute("shop", "newer", 5, []string{"shop.example.com", "*.example.com"}, []gwv1.ParentReference{parent("shop", "edge", "")},
		gwv1.HTTPRouteRule{Matches: []gwv1.HTTPRouteMatch{
			pathMatch(gwv1.PathMatchPathPrefix, "/api"), rich,
			pathMatch(gwv1.PathMatchExact, "/api/exact"),
			pathMatch(gwv1.PathMatchRegularExpression, `/api/v[0-9]+/items`)},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "api", 8080, 1)}},
		gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}})
	in := gatewayInput([]gwv1.Gateway{gateway("shop", "edge", httpListener("http", ""))}, newer, older)
	assertGatewayGolden(t, "gateway-matches-precedence", Translate(withGatewayServices(in, gwOpts), gwOpts))
}

// TestGatewayFiltersAndWeights covers timeouts, header modifiers, redirects, rewrites, a sampled mirror,
// weighted backends, backends with header filters of their own (and one with a filter refused),
// an unsupported filter (500, PartiallyInvalid) and a rule without backends (500).
func TestGatewayFiltersAndWeights(t *testing.T) {
	https, code := "https", 301
	full, pre := gwv1.FullPathHTTPPathModifier, gwv1.PrefixMatchHTTPPathModifier
	rules := []gwv1.HTTPRouteRule{
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/headers")},
			Filters: []gwv1.HTTPRouteFilter{
				{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
					Set: []gwv1.HTTPHeader{{Name: "X-Set", Value: "1"}}, Add: []gwv1.HTTPHeader{{Name: "X-Add", Value: "2"}}, Remove: []string{"X-Drop"}}},
				{Type: gwv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{
					Set: []gwv1.HTTPHeader{{Name: "X-Served-By", Value: "plexus"}}}}},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)},
			Timeouts:    &gwv1.HTTPRouteTimeouts{Request: ptr(gwv1.Duration("30s")), BackendRequest: ptr(gwv1.Duration("1500ms"))}},
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/old")},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gwv1.HTTPRequestRedirectFilter{
				Scheme: &https, StatusCode: &code, Path: &gwv1.HTTPPathModifier{Type: pre, ReplacePrefixMatch: ptr("/new")}}}}},
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchExact, "/moved")},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gwv1.HTTPRequestRedirectFilter{
				Hostname: ptr(gwv1.PreciseHostname("other.example.com")), Port: ptr(int32(8443)), Path: &gwv1.HTTPPathModifier{Type: full, ReplaceFullPath: ptr("/here")}}}}},
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/rewrite")},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: &gwv1.HTTPURLRewriteFilter{
				Hostname: ptr(gwv1.PreciseHostname("internal.example.com")), Path: &gwv1.HTTPPathModifier{Type: pre, ReplacePrefixMatch: ptr("/")}}}},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "api", 8080, 1)}},
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/split")},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 3), backendRef("", "api", 8080, 1), backendRef("", "nowhere", 80, 5)}},
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/mirror")},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestMirror, RequestMirror: &gwv1.HTTPRequestMirrorFilter{
				BackendRef: gwv1.BackendObjectReference{Name: "api", Port: ptr(int32(8080))}, Percent: ptr(int32(25))}}},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}},
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/extension")},
			Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterExtensionRef, ExtensionRef: &gwv1.LocalObjectReference{
				Group: "example.com", Kind: "Auth", Name: "sso"}}},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}},
		// Backends with filters of their own: one plexus_split group each (nowhere's share 500s).
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/per-backend")},
			BackendRefs: []gwv1.HTTPBackendRef{
				withFilters(backendRef("", "web", 80, 2), gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
					RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "Backend", Value: "web"}}}}),
				withFilters(backendRef("", "api", 8080, 2), gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterResponseHeaderModifier,
					ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Add: []gwv1.HTTPHeader{{Name: "X-Backend", Value: "api"}}}}),
				backendRef("", "nowhere", 80, 1)}},
		// A backendRef filter other than a header modifier: the rule answers 500.
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/backend-rewrite")},
			BackendRefs: []gwv1.HTTPBackendRef{withFilters(backendRef("", "web", 80, 1), gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterURLRewrite,
				URLRewrite: &gwv1.HTTPURLRewriteFilter{Hostname: ptr(gwv1.PreciseHostname("x.example.com"))}})}},
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/nothing")}},
		// Does not compile: left out of the config (which must still load), reported on the route.
		{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchRegularExpression, "/bad[")},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}},
	}
	r := httpRoute("shop", "filters", 0, []string{"shop.example.com"}, []gwv1.ParentReference{parent("shop", "edge", "")}, rules...)
	in := gatewayInput([]gwv1.Gateway{gateway("shop", "edge", httpListener("http", ""))}, r)
	assertGatewayGolden(t, "gateway-filters-weights", Translate(withGatewayServices(in, gwOpts), gwOpts))
}

// TestGatewayListenersAndRefs covers listener validation (ports, protocols, conflicts, kinds,
// TLS certificates across namespaces), allowedRoutes (Same, All, Selector), hostname
// intersection and backend references refused without a ReferenceGrant.
func TestGatewayListenersAndRefs(t *testing.T) {
	shop := testCert(t, "shop.example.com")
	wild := testCert(t, "*.example.com")
	in := gatewayInput(nil)
	in.FallbackCertificate = ptr(testCert(t, "fallback.invalid"))
	in.Secrets = []corev1.Secret{tlsSecret("shop", "shop-cert", shop.CertPEM, shop.KeyPEM), tlsSecret("infra", "wild-cert", wild.CertPEM, wild.KeyPEM)}
	in.Services = append(in.Services, service("infra", "shared", "http", 80, 8080))
	in.EndpointSlices = append(in.EndpointSlices, slice("infra", "shared", "shared-1", "http", 8080, endpoint{"10.0.9.1", true}))
	tcp := httpListener("tcp", "")
	tcp.Protocol = gwv1.TCPProtocolType
	odd := httpListener("odd-port", "")
	odd.Port = 8080
	kinds := httpListener("kinds", "kinds.example.com")
	kinds.AllowedRoutes = &gwv1.AllowedRoutes{Kinds: []gwv1.RouteGroupKind{{Kind: "HTTPRoute"}, {Kind: "TCPRoute"}}}
	in.Gateways = []gwv1.Gateway{
		gateway("infra", "edge",
			allowFrom(httpListener("http", "shop.example.com"), gwv1.NamespacesFromSelector, map[string]string{"team": "shop"}),
			allowFrom(httpListener("http-dup", "shop.example.com"), gwv1.NamespacesFromAll, nil),
			allowFrom(httpListener("any", "*.example.com"), gwv1.NamespacesFromAll, nil),
			allowFrom(httpsListener("https", "shop.example.com", "shop", "shop-cert"), gwv1.NamespacesFromAll, nil),
			allowFrom(httpsListener("https-wild", "*.example.com", "", "wild-cert"), gwv1.NamespacesFromAll, nil),
			httpsListener("https-missing", "missing.example.com", "", "absent"),
			tcp, odd, kinds),
		gateway("infra", "ignored-class", httpListener("http", "")),
	}
	in.Gateways[1].Spec.GatewayClassName = "other"
	// The shop Secret is in another namespace than the Gateway: refused until granted.
	toSvc := func(ns, name string, port int32) []gwv1.HTTPBackendRef {
		return []gwv1.HTTPBackendRef{backendRef(ns, name, port, 1)}
	}
	in.HTTPRoutes = []gwv1.HTTPRoute{
		httpRoute("shop", "by-selector", 0, nil, []gwv1.ParentReference{parent("infra", "edge", "http")},
			gwv1.HTTPRouteRule{BackendRefs: toSvc("", "web", 80)}),
		httpRoute("guest", "not-selected", 0, nil, []gwv1.ParentReference{parent("infra", "edge", "http")},
			gwv1.HTTPRouteRule{BackendRefs: toSvc("shop", "web", 80)}),
		httpRoute("shop", "other-host", 0, []string{"www.other.test"}, []gwv1.ParentReference{parent("infra", "edge", "any")},
			gwv1.HTTPRouteRule{BackendRefs: toSvc("", "web", 80)}),
		httpRoute("shop", "deep-wildcard", 0, []string{"a.b.example.com"}, []gwv1.ParentReference{parent("infra", "edge", "")},
			gwv1.HTTPRouteRule{BackendRefs: toSvc("infra", "shared", 80)}),
		httpRoute("shop", "no-section", 0, nil, []gwv1.ParentReference{parent("infra", "edge", "nope"), parent("infra", "ignored-class", "")},
			gwv1.HTTPRouteRule{BackendRefs: toSvc("", "web", 80)}),
	}
	kindRef := backendRef("", "web", 80, 1)
	kindRef.Kind = ptr(gwv1.Kind("ConfigMap"))
	in.HTTPRoutes = append(in.HTTPRoutes, httpRoute("infra", "bad-kind", 0, []string{"kinds.example.com"}, []gwv1.ParentReference{parent("infra", "edge", "kinds")},
		gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{kindRef}}))
	t.Run("without grants", func(t *testing.T) {
		assertGatewayGolden(t, "gateway-listeners-refs", Translate(withGatewayServices(in, gwOpts), gwOpts))
	})
	t.Run("with grants", func(t *testing.T) {
		granted := in
		granted.ReferenceGrants = []gwv1.ReferenceGrant{grant("shop", kindGateway, "infra", kindSecret), grant("infra", kindHTTPRoute, "shop", kindService)}
		assertGatewayGolden(t, "gateway-listeners-refs-granted", Translate(withGatewayServices(granted, gwOpts), gwOpts))
	})
}

// TestGatewayOffByDefault: without a gateway controller name nothing of the Gateway API is read.
func TestGatewayOffByDefault(t *testing.T) {
	in := gatewayInput([]gwv1.Gateway{gateway("shop", "edge", httpListener("http", ""))},
		httpRoute("shop", "r", 0, nil, []gwv1.ParentReference{parent("shop", "edge", "")}, gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}}))
	res := Translate(in, opts)
	if len(res.Gateway.Classes)+len(res.Gateway.Gateways)+len(res.Gateway.Routes) != 0 {
		t.Fatalf("Gateway API objects analysed with the Gateway API off: %+v", res.Gateway)
	}
	if got := len(res.Config.Apps.HTTP.Servers[ServerHTTP].Routes); got != 1 {
		t.Fatalf("%d HTTP routes, want only the 404", got)
	}
}

// TestGatewayBadExpressionStaysOut: an expression that does not compile never reaches the config
// (Caddy would refuse all of it) and the route says why.
func TestGatewayBadExpressionStaysOut(t *testing.T) {
	reHdr := gwv1.HeaderMatchRegularExpression
	badHeader := pathMatch(gwv1.PathMatchPathPrefix, "/h")
	badHeader.Headers = []gwv1.HTTPHeaderMatch{{Type: &reHdr, Name: "X-A", Value: "(unclosed"}}
	r := httpRoute("shop", "bad", 0, nil, []gwv1.ParentReference{parent("shop", "edge", "")},
		gwv1.HTTPRouteRule{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchRegularExpression, "/bad["), badHeader},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}},
		gwv1.HTTPRouteRule{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchExact, "/good")}, BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}})
	res := Translate(withGatewayServices(gatewayInput([]gwv1.Gateway{gateway("shop", "edge", httpListener("http", ""))}, r), gwOpts), gwOpts)
	b, err := res.Config.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "bad[") || strings.Contains(string(b), "(unclosed") || !strings.Contains(string(b), "/good") {
		t.Fatalf("config: %s", b)
	}
	p := res.Gateway.Routes[0].Parents[0].PartiallyInvalid
	if !p.OK || !strings.Contains(p.Message, "does not compile") {
		t.Fatalf("PartiallyInvalid %+v, want the expression named", p)
	}
}

// TestGatewayWeightsManyEndpoints: endpoint counts whose least common multiple is huge still give
// positive weights in the backends' proportions (rounded), never an overflow.
func TestGatewayWeightsManyEndpoints(t *testing.T) {
	in := gatewayInput([]gwv1.Gateway{gateway("shop", "edge", httpListener("http", ""))})
	var refs []gwv1.HTTPBackendRef
	for i, n := range []int{13, 17, 19, 23, 29} {
		name := fmt.Sprintf("s%d", i)
		in.Services = append(in.Services, service("shop", name, "http", 80, 8080))
		var eps []endpoint
		for j := range n {
			eps = append(eps, endpoint{fmt.Sprintf("10.1.%d.%d", i, j+1), true})
		}
		in.EndpointSlices = append(in.EndpointSlices, slice("shop", name, name+"-1", "http", 8080, eps...))
		refs = append(refs, backendRef("", name, 80, int32(1000000)))
	}
	in.HTTPRoutes = []gwv1.HTTPRoute{httpRoute("shop", "wide", 0, nil, []gwv1.ParentReference{parent("shop", "edge", "")}, gwv1.HTTPRouteRule{BackendRefs: refs})}
	res := Translate(withGatewayServices(in, gwOpts), gwOpts)
	var rp *ReverseProxy
	for _, r := range res.Config.Apps.HTTP.Servers[ServerHTTP].NamedRoutes {
		rp = r.Handle[0].(*ReverseProxy)
	}
	if rp == nil || len(rp.Upstreams) != 13+17+19+23+29 {
		t.Fatalf("reverse proxy %+v", rp)
	}
	w := rp.LoadBalancing.SelectionPolicy.Weights
	// Per backend: endpoints × endpoint weight must be about the same (equal backend weights).
	share := map[int]int{}
	for i, u := range rp.Upstreams {
		if w[i] <= 0 {
			t.Fatalf("weight %d of %s", w[i], u.Dial)
		}
		var b, h int
		fmt.Sscanf(u.Dial, "10.1.%d.%d", &b, &h)
		share[b] += w[i]
	}
	for b, s := range share {
		if d := float64(s)/float64(share[0]) - 1; d > 0.01 || d < -0.01 {
			t.Fatalf("backend %d gets %d against %d: shares differ by more than 1%%", b, s, share[0])
		}
	}
}

// TestGatewayAddressesIsolate: two Gateways with listeners on the same port, and listeners on
// ports other than 80 and 443, each get a proxy server of their own on an internal port: a
// route attached to one Gateway appears only in that Gateway's servers, a route attached to both
// in both, and the Ingress servers carry no Gateway route. A redirect that keeps the scheme keeps
// the listener's port.
func TestGatewayAddressesIsolate(t *testing.T) {
	shop := testCert(t, "shop.example.com")
	in := gatewayInput(nil)
	in.FallbackCertificate = ptr(testCert(t, "fallback.invalid"))
	in.Secrets = []corev1.Secret{tlsSecret("shop", "shop-cert", shop.CertPEM, shop.KeyPEM)}
	foo8080, bar8080, conflict := httpListener("foo-8080", "foo.com"), httpListener("bar-8080", "bar.com"), httpsListener("https-8080", "", "shop", "shop-cert")
	foo8080.Port, bar8080.Port, conflict.Port = 8080, 8080, 8080
	in.Gateways = []gwv1.Gateway{
		gateway("shop", "gw-a", httpListener("http", ""), httpsListener("https", "shop.example.com", "", "shop-cert")),
		gateway("shop", "gw-b", httpListener("http", ""), foo8080, bar8080, conflict),
	}
	to := func(name string, port int32) []gwv1.HTTPBackendRef {
		return []gwv1.HTTPBackendRef{backendRef("", name, port, 1)}
	}
	prefix := func(p string) []gwv1.HTTPRouteMatch {
		return []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, p)}
	}
	keep := gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gwv1.HTTPRequestRedirectFilter{Hostname: ptr(gwv1.PreciseHostname("elsewhere.example.com"))}}
	on8080 := parent("shop", "gw-b", "")
	on8080.Port = ptr(gwv1.PortNumber(8080))
	in.HTTPRoutes = []gwv1.HTTPRoute{
		httpRoute("shop", "only-a", 0, nil, []gwv1.ParentReference{parent("shop", "gw-a", "")}, gwv1.HTTPRouteRule{Matches: prefix("/"), BackendRefs: to("web", 80)}),
		httpRoute("shop", "only-b", 0, nil, []gwv1.ParentReference{parent("shop", "gw-b", "http")}, gwv1.HTTPRouteRule{Matches: prefix("/"), BackendRefs: to("api", 8080)}),
		httpRoute("shop", "shared", 0, nil, []gwv1.ParentReference{parent("shop", "gw-a", "http"), parent("shop", "gw-b", "http")},
			gwv1.HTTPRouteRule{Matches: prefix("/shared"), BackendRefs: to("web", 80)}),
		httpRoute("shop", "port-8080", 0, nil, []gwv1.ParentReference{on8080},
			gwv1.HTTPRouteRule{Matches: prefix("/moved"), Filters: []gwv1.HTTPRouteFilter{keep}}, gwv1.HTTPRouteRule{BackendRefs: to("api", 8080)}),
	}
	res := Translate(withGatewayServices(in, gwOpts), gwOpts)
	assertGatewayGolden(t, "gateway-addresses-isolate", res)
	servers := res.Config.Apps.HTTP.Servers
	names := make([]string, 0, len(servers))
	for n := range servers {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := []string{"gateway/shop/gw-a/443", "gateway/shop/gw-a/80", "gateway/shop/gw-b/80", "gateway/shop/gw-b/8080", "http", "https"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("servers %v, want %v", names, want)
	}
	listen := map[string]bool{}
	for _, n := range names {
		b, _ := json.Marshal(servers[n].Routes)
		s := string(b)
		switch n {
		case "http", "https":
			if strings.Contains(s, "subroute") && strings.Contains(s, "/shared") {
				t.Errorf("Ingress server %s serves a Gateway route: %s", n, s)
			}
		case "gateway/shop/gw-a/80":
			if !strings.Contains(s, "/shared") || strings.Contains(s, ":8080") {
				t.Errorf("gw-a's port 80 routes %s", s)
			}
		case "gateway/shop/gw-b/8080":
			if !strings.Contains(s, "elsewhere.example.com:8080") {
				t.Errorf("gw-b's port-8080 redirect does not keep the listener port: %s", s)
			}
		}
		for _, l := range servers[n].Listen {
			if listen[l] {
				t.Errorf("%s listens on %s twice", n, l)
			}
			listen[l] = true
		}
	}
	if servers["gateway/shop/gw-b/80"].TLSConnectionPolicies != nil || len(servers["gateway/shop/gw-a/443"].TLSConnectionPolicies) == 0 {
		t.Errorf("TLS policies on the wrong servers")
	}
}

// TestGatewayH2CBackend: a Gateway backend whose Service port has appProtocol kubernetes.io/h2c
// is proxied over HTTP/2 cleartext by a proxy of its own; an Ingress to the same port is not.
func TestGatewayH2CBackend(t *testing.T) {
	in := gatewayInput([]gwv1.Gateway{gateway("shop", "edge", httpListener("http", ""))},
		httpRoute("shop", "r", 0, nil, []gwv1.ParentReference{parent("shop", "edge", "")}, gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}}))
	in.Services[0].Spec.Ports[0].AppProtocol = ptr(AppProtocolH2C)
	in.IngressClasses = []networkingv1.IngressClass{ingressClass("plexus", false)}
	in.Ingresses = []networkingv1.Ingress{ing("shop", "site", 0, rule("", prefix("/", svcPort("web", 80))))}
	res := Translate(withGatewayServices(in, gwOpts), gwOpts)
	named := res.Config.Apps.HTTP.Servers[ServerHTTP].NamedRoutes
	if rp := named["h2c:shop/web:80"]; rp == nil || !reflect.DeepEqual(rp.Handle[0].(*ReverseProxy).Transport.Versions, []string{"h2c"}) {
		t.Fatalf("no h2c proxy for the Gateway backend: %v", named)
	}
	if rp := named["shop/web:80"]; rp == nil || rp.Handle[0].(*ReverseProxy).Transport.Versions != nil {
		t.Fatalf("the Ingress backend's proxy changed: %+v", rp)
	}
}
