package translate

import (
	"testing"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestGatewayCORS: a CORS filter becomes a plexus_cors handler at the head of its rule, before
// the rule's timeout, header filters and backends, and before a redirect, whatever the filter's
// position; the route is accepted without PartiallyInvalid. Rules without the filter get none.
func TestGatewayCORS(t *testing.T) {
	creds := true
	cors := gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterCORS, CORS: &gwv1.HTTPCORSFilter{
		AllowOrigins:     []gwv1.CORSOrigin{"https://www.foo.com", "https://*.bar.com"},
		AllowCredentials: &creds,
		AllowMethods:     []gwv1.HTTPMethodWithWildcard{"GET", "OPTIONS"},
		AllowHeaders:     []gwv1.HTTPHeaderName{"x-header-1", "x-header-2"},
		ExposeHeaders:    []gwv1.HTTPHeaderName{"x-header-3"},
		MaxAge:           3600,
	}}
	wildcard := gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterCORS, CORS: &gwv1.HTTPCORSFilter{
		AllowOrigins: []gwv1.CORSOrigin{"*"}, AllowMethods: []gwv1.HTTPMethodWithWildcard{"*"}, AllowHeaders: []gwv1.HTTPHeaderName{"*"}}}
	setHeader := gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
		Set: []gwv1.HTTPHeader{{Name: "X-Set", Value: "1"}}}}
	redirect := gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gwv1.HTTPRequestRedirectFilter{
		Hostname: ptr(gwv1.PreciseHostname("elsewhere.example.com"))}}
	r := httpRoute("shop", "cors", 0, nil, []gwv1.ParentReference{parent("shop", "edge", "")},
		gwv1.HTTPRouteRule{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/api")},
			Filters:     []gwv1.HTTPRouteFilter{setHeader, cors},
			BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "api", 8080, 1)},
			Timeouts:    &gwv1.HTTPRouteTimeouts{Request: ptr(gwv1.Duration("10s"))}},
		gwv1.HTTPRouteRule{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/moved")},
			Filters: []gwv1.HTTPRouteFilter{redirect, wildcard}},
		gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}})
	in := gatewayInput([]gwv1.Gateway{gateway("shop", "edge", httpListener("http", ""))}, r)
	res := Translate(withGatewayServices(in, gwOpts), gwOpts)
	assertGatewayGolden(t, "gateway-cors", res)
	if p := res.Gateway.Routes[0].Parents[0]; !p.Accepted.OK || p.PartiallyInvalid.OK {
		t.Fatalf("route status %+v: a CORS filter is served", p)
	}
}
