package translate

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Names of the Caddy servers in the config.
const (
	ServerHTTP  = "http"
	ServerHTTPS = "https"
)

// Translate turns in into one Caddy config. It never fails: whatever cannot be served is left out
// or answers 503, and is reported in Result.Problems.
func Translate(in Input, opts Options) Result {
	opts = opts.Defaults()
	p := &problems{}
	served := servedIngresses(in.IngressClasses, in.Ingresses, opts.ControllerName)
	idx := newBackendIndex(in.Services, in.EndpointSlices)
	table := buildRoutingTable(served, idx, p)
	plan := planTLS(&in, &opts, served, p)
	gw := analyzeGateways(&in, &opts, newSecretLoader(&plan, in.Secrets), idx)

	hosts := table.orderedHosts()
	for h := range plan.hostTag {
		if _, ok := table.groups[h]; !ok {
			table.group(h)
			hosts = table.orderedHosts()
		}
	}

	skipRedirect, forceRedirect := sslRedirects(served, p)
	named := map[string]*Route{}
	var httpRoutes, httpsRoutes []Route
	for _, h := range hosts {
		g := table.groups[h]
		var sub any
		if pt := g.pathTable(&opts, named); pt != nil {
			sub = pt
		}
		tag, isTLS := plan.hostTag[h]
		switch {
		case (isTLS && tag != "" && !skipRedirect[h]) || (forceRedirect[h] && sub != nil):
			httpRoutes = append(httpRoutes, hostRoute(h, redirect(opts.HTTPSRedirectPort), true))
		case isTLS && tag == "":
			httpRoutes = append(httpRoutes, hostRoute(h, unavailable(), true))
		case sub != nil:
			httpRoutes = append(httpRoutes, hostRoute(h, sub, false))
		}
		if sub != nil {
			httpsRoutes = append(httpsRoutes, hostRoute(h, sub, false))
		}
	}
	gwRoutes := buildGatewayRoutes(&gw, idx, &opts, named)
	last := Route{Handle: []any{notFound()}, Terminal: true}
	if table.defaultBackend != nil {
		last = Route{Handle: []any{backendHandler(*table.defaultBackend, &opts, named)}, Terminal: true}
	}
	httpRoutes = append(httpRoutes, last)
	httpsRoutes = append(httpsRoutes, last)

	cfg := Config{
		Admin:   Admin{Disabled: true, Config: AdminConfig{Persist: false}},
		Logging: defaultLogging(opts.LogLevel),
		Storage: &Storage{Module: "file_system", Root: opts.StorageDir},
		Apps: Apps{HTTP: HTTPApp{
			GracePeriod: opts.GracePeriod,
			Servers: map[string]*Server{ServerHTTP: {
				Listen:         []string{opts.HTTPListen},
				Routes:         httpRoutes,
				NamedRoutes:    named,
				AutomaticHTTPS: AutomaticHTTPS{Disable: true},
				Protocols:      []string{"h1"},
			}},
		},
			// Always present: without it Caddy adds a default tls app that cleans storage.
			TLS: &TLSApp{DisableOCSPStapling: true, DisableStorageClean: true},
		},
	}
	// Without any certificate there is nothing to serve TLS with: no HTTPS listener at all,
	// rather than one Caddy would run as plain HTTP.
	if policies := plan.connectionPolicies(); len(policies) > 0 {
		cfg.Apps.HTTP.Servers[ServerHTTPS] = &Server{
			Listen:                []string{opts.HTTPSListen},
			Routes:                httpsRoutes,
			NamedRoutes:           named,
			TLSConnectionPolicies: policies,
			AutomaticHTTPS:        AutomaticHTTPS{Disable: true},
			Protocols:             []string{"h1", "h2"},
		}
	}
	addGatewayServers(&cfg, &gw, gwRoutes, plan, &opts, named)
	if len(plan.certs) > 0 {
		cfg.Apps.TLS.Certificates = &Certificates{LoadPEM: plan.loadPEM()}
	}

	if onFront(opts.HTTPListen) || onFront(opts.HTTPSListen) || gatewayOnFront(&cfg) {
		cfg.Apps.Front = &FrontAppConfig{}
	}

	res := Result{Config: cfg, Problems: p.sorted(), Routes: table.routes, Gateway: gw.api}
	for _, ing := range served {
		res.Ingresses = append(res.Ingresses, types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name})
	}
	sort.Slice(res.Ingresses, func(i, j int) bool { return res.Ingresses[i].String() < res.Ingresses[j].String() })
	return res
}

// onFront says whether a listen address is served by the proxy's fronts.
func onFront(listen string) bool { return strings.HasPrefix(listen, FrontNetwork+"/") }

// JSON is the config as Caddy loads it.
func (c Config) JSON() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode caddy config: %w", err)
	}
	return b, nil
}

// subroute is the host group's path routes, or nil when it has none.
func (g *hostGroup) subroute(opts *Options, named map[string]*Route) *Subroute {
	if len(g.routes) == 0 {
		return nil
	}
	routes := make([]Route, 0, len(g.routes))
	for _, r := range g.routes {
		route := Route{Handle: []any{backendHandler(r.backend, opts, named)}, Terminal: true}
		if m := r.pathMatcher(); m != nil {
			route.Match = []MatcherSet{{PathRegexp: m}}
		}
		routes = append(routes, route)
	}
	return &Subroute{Handler: "subroute", Routes: routes}
}

// hostRoute runs handler for requests to host (every host when ""). A subroute that matches no
// path lets the next host group try, so it is not terminal.
func hostRoute(host string, handler any, terminal bool) Route {
	r := Route{Handle: []any{handler}, Terminal: terminal}
	if host != "" {
		r.Match = []MatcherSet{{Host: []string{host}}}
	}
	return r
}

// backendHandler invokes the backend's named route, adding it to named, or answers 503 when the
// backend has no endpoints.
func backendHandler(b resolvedBackend, opts *Options, named map[string]*Route) any {
	if len(b.upstreams) == 0 {
		return unavailable()
	}
	if _, ok := named[b.id]; !ok {
		named[b.id] = &Route{Handle: []any{fastPath(reverseProxy(b, opts))}, Terminal: true}
	}
	return &Invoke{Handler: "invoke", Name: b.id}
}

// reverseProxy proxies to the backend's endpoints.
func reverseProxy(b resolvedBackend, opts *Options) *ReverseProxy {
	ups := make([]Upstream, len(b.upstreams))
	for i, u := range b.upstreams {
		ups[i] = Upstream{Dial: u}
	}
	return &ReverseProxy{
		Handler:   "reverse_proxy",
		Upstreams: ups,
		LoadBalancing: &LoadBalancing{
			SelectionPolicy: SelectionPolicy{Policy: "round_robin"},
			Retries:         opts.Retries,
			TryDuration:     opts.TryDuration,
			TryInterval:     opts.TryInterval,
		},
		HealthChecks: &HealthChecks{Passive: PassiveHealthCheck{FailDuration: opts.FailDuration, MaxFails: 1}},
		// Caddy keeps 32 idle connections per pod by default; with more requests in flight
		// than that, every burst closes and redials connections (measured against nginx).
		Transport: &Transport{Protocol: "http", DialTimeout: opts.DialTimeout, KeepAlive: &KeepAlive{MaxIdleConnsPerHost: 1024}, Compression: new(false)},
	}
}

// redirect sends plain HTTP to the same host and URI over HTTPS (308 keeps the method and body).
func redirect(port int) *StaticResponse {
	loc := "https://{http.request.host}{http.request.uri}"
	if port != 443 {
		loc = fmt.Sprintf("https://{http.request.host}:%d{http.request.uri}", port)
	}
	return &StaticResponse{Handler: "static_response", StatusCode: 308, Headers: map[string][]string{"Location": {loc}}}
}

// unavailable is the answer of a route whose backend or certificate is missing.
func unavailable() *StaticResponse {
	return &StaticResponse{Handler: "static_response", StatusCode: 503, Body: "503 service unavailable\n"}
}

// notFound answers requests that match no rule when no Ingress sets a default backend.
func notFound() *StaticResponse {
	return &StaticResponse{Handler: "static_response", StatusCode: 404, Body: "404 page not found\n"}
}

// problems collects Problems without duplicates.
type problems struct {
	seen map[Problem]bool
	list []Problem
}

func (p *problems) add(ing types.NamespacedName, reason, msg string) {
	pr := Problem{Ingress: ing, Reason: reason, Message: msg}
	if p.seen == nil {
		p.seen = map[Problem]bool{}
	}
	if !p.seen[pr] {
		p.seen[pr] = true
		p.list = append(p.list, pr)
	}
}

// sorted returns the problems ordered by Ingress, reason, message.
func (p *problems) sorted() []Problem {
	out := append([]Problem(nil), p.list...)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Ingress != b.Ingress {
			return a.Ingress.String() < b.Ingress.String()
		}
		if a.Reason != b.Reason {
			return a.Reason < b.Reason
		}
		return strings.Compare(a.Message, b.Message) < 0
	})
	return out
}
