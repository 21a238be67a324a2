package translate

// The HTTPRoute CORS filter (HTTPRouteCORS), as plexus-ingress's own Caddy handler.

import gwv1 "sigs.k8s.io/gateway-api/apis/v1"

// CORS is plexus-ingress's handler "plexus_cors" (ingress/proxy/cors.go): it answers CORS
// preflight requests itself and adds the CORS response headers to the answers of requests
// whose Origin it allows. Fields are the filter's; MaxAge 0 is the API's default (5 s).
type CORS struct {
	Handler          string   `json:"handler"`
	AllowOrigins     []string `json:"allow_origins,omitempty"`
	AllowCredentials bool     `json:"allow_credentials,omitempty"`
	AllowMethods     []string `json:"allow_methods,omitempty"`
	AllowHeaders     []string `json:"allow_headers,omitempty"`
	ExposeHeaders    []string `json:"expose_headers,omitempty"`
	MaxAge           int      `json:"max_age,omitempty"`
}

// corsHandler translates a rule's CORS filter; nil when the rule has none. It runs first in the
// rule, whatever the filter's position: a preflight is answered before any other filter, a
// redirect or a backend sees it, and every answer of the rule (redirects included) carries the
// headers a browser needs to read it.
func corsHandler(rule *gwv1.HTTPRouteRule) *CORS {
	for _, f := range rule.Filters {
		if f.Type != gwv1.HTTPRouteFilterCORS || f.CORS == nil {
			continue
		}
		c := &CORS{Handler: "plexus_cors", MaxAge: int(f.CORS.MaxAge)}
		for _, o := range f.CORS.AllowOrigins {
			c.AllowOrigins = append(c.AllowOrigins, string(o))
		}
		if f.CORS.AllowCredentials != nil {
			c.AllowCredentials = *f.CORS.AllowCredentials
		}
		for _, m := range f.CORS.AllowMethods {
			c.AllowMethods = append(c.AllowMethods, string(m))
		}
		for _, h := range f.CORS.AllowHeaders {
			c.AllowHeaders = append(c.AllowHeaders, string(h))
		}
		for _, h := range f.CORS.ExposeHeaders {
			c.ExposeHeaders = append(c.ExposeHeaders, string(h))
		}
		return c
	}
	return nil
}
