package translate

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gwMatch is one HTTPRouteMatch of one rule on one hostname: the unit of precedence.
type gwMatch struct {
	route    *gwv1.HTTPRoute
	ruleIdx  int
	matchIdx int
	match    gwv1.HTTPRouteMatch
	pathType gwv1.PathMatchType
	path     string
}

// gatewayServerRoutes are the Caddy routes of the programmed listeners, per server (one per
// Gateway and listener port), without the final 404.
type gatewayServerRoutes map[string][]Route

// buildGatewayRoutes groups the attachments' matches by server, listener hostname and effective
// hostname, and orders them. Listeners are isolated (GatewayHTTPListenerIsolation): a request
// goes to the most specific listener hostname of its server that matches its Host and is served
// only by the routes attached to that listener, else 404; inside a listener, hostnames are tried
// most specific first, a request no rule of a hostname matches falling through to the next.
func buildGatewayRoutes(a *gatewayAnalysis, idx backendIndex, opts *Options, named map[string]*Route) gatewayServerRoutes {
	type hostKey struct{ server, listener, host string }
	groups := map[hostKey][]gwMatch{}
	seen := map[string]bool{}
	listeners := map[string]*ListenerResult{} // server → one of its listeners (port, TLS)
	for _, att := range a.attachments {
		listeners[att.listener.server] = att.listener
		for _, h := range att.hostnames {
			k := hostKey{att.listener.server, att.listener.Hostname, h}
			id := k.server + "\x00" + k.listener + "\x00" + h + "\x00" + att.route.Namespace + "/" + att.route.Name
			if seen[id] {
				continue // the same route through two listeners of one server and hostname
			}
			seen[id] = true
			groups[k] = append(groups[k], routeMatches(att.route)...)
		}
	}
	// Every programmed listener owns its hostname, with routes or without (then it answers 404).
	type listenerKey struct{ server, listener string }
	hosts := map[listenerKey][]string{}
	clients := map[string]*gatewayClient{} // server → its Gateway's certificate towards TLS backends
	for gi := range a.api.Gateways {
		if g := &a.api.Gateways[gi]; g.backendClient != nil {
			for li := range g.Listeners {
				clients[g.Listeners[li].server] = &gatewayClient{gw: g.Key, cert: g.backendClient}
			}
		}
		for li := range a.api.Gateways[gi].Listeners {
			if l := &a.api.Gateways[gi].Listeners[li]; l.Programmed() {
				hosts[listenerKey{l.server, l.Hostname}] = nil
				listeners[l.server] = l
			}
		}
	}
	for k := range groups {
		lk := listenerKey{k.server, k.listener}
		hosts[lk] = append(hosts[lk], k.host)
	}
	lkeys := make([]listenerKey, 0, len(hosts))
	for k := range hosts {
		lkeys = append(lkeys, k)
	}
	sort.Slice(lkeys, func(i, j int) bool {
		if lkeys[i].server != lkeys[j].server {
			return lkeys[i].server < lkeys[j].server
		}
		return moreSpecificHost(lkeys[i].listener, lkeys[j].listener)
	})
	out := gatewayServerRoutes{}
	for _, lk := range lkeys {
		hs := hosts[lk]
		sort.Slice(hs, func(i, j int) bool { return moreSpecificHost(hs[i], hs[j]) })
		l := listeners[lk.server]
		b := ruleBuilder{tls: l.tls, port: l.Port, idx: idx, grants: a.grants, opts: opts, named: named, btls: a.btls, client: clients[lk.server]}
		inner := make([]Route, 0, len(hs)+1)
		for _, h := range hs {
			ms := groups[hostKey{lk.server, lk.listener, h}]
			sort.SliceStable(ms, func(i, j int) bool { return matchBefore(&ms[i], &ms[j]) })
			routes := make([]Route, 0, len(ms))
			for i := range ms {
				if r, ok := b.matchRoute(&ms[i]); ok {
					routes = append(routes, r)
				}
			}
			r := Route{Handle: []any{&Subroute{Handler: "subroute", Routes: routes}}}
			// The listener's matcher admits the hostname already when they are equal.
			if m := hostMatcher(h); m != nil && h != lk.listener {
				r.Match = []MatcherSet{*m}
			}
			inner = append(inner, r)
		}
		r := Route{Handle: []any{&Subroute{Handler: "subroute", Routes: append(inner, Route{Handle: []any{notFound()}, Terminal: true})}}, Terminal: true}
		if m := hostMatcher(lk.listener); m != nil {
			r.Match = []MatcherSet{*m}
		}
		out[lk.server] = append(out[lk.server], r)
	}
	return out
}

// routeMatches lists a route's matches (a rule without matches matches every path).
func routeMatches(r *gwv1.HTTPRoute) []gwMatch {
	var out []gwMatch
	for ri := range r.Spec.Rules {
		matches := r.Spec.Rules[ri].Matches
		if len(matches) == 0 {
			matches = []gwv1.HTTPRouteMatch{{}}
		}
		for mi, m := range matches {
			g := gwMatch{route: r, ruleIdx: ri, matchIdx: mi, match: m, pathType: gwv1.PathMatchPathPrefix, path: "/"}
			if m.Path != nil {
				if m.Path.Type != nil {
					g.pathType = *m.Path.Type
				}
				if m.Path.Value != nil {
					g.path = *m.Path.Value
				}
			}
			out = append(out, g)
		}
	}
	return out
}

// moreSpecificHost orders hostnames: precise ones first, then wildcards by length (longest
// first), then "" (any host).
func moreSpecificHost(a, b string) bool {
	rank := func(h string) int {
		switch {
		case h == "":
			return 2
		case strings.HasPrefix(h, "*"):
			return 1
		}
		return 0
	}
	if rank(a) != rank(b) {
		return rank(a) < rank(b)
	}
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a < b
}

// matchBefore is the API's match precedence (see gateway.go).
func matchBefore(a, b *gwMatch) bool {
	rank := map[gwv1.PathMatchType]int{gwv1.PathMatchExact: 0, gwv1.PathMatchRegularExpression: 1, gwv1.PathMatchPathPrefix: 2}
	if rank[a.pathType] != rank[b.pathType] {
		return rank[a.pathType] < rank[b.pathType]
	}
	if la, lb := len(prefixKey(a)), len(prefixKey(b)); la != lb {
		return la > lb
	}
	if (a.match.Method != nil) != (b.match.Method != nil) {
		return a.match.Method != nil
	}
	if len(a.match.Headers) != len(b.match.Headers) {
		return len(a.match.Headers) > len(b.match.Headers)
	}
	if len(a.match.QueryParams) != len(b.match.QueryParams) {
		return len(a.match.QueryParams) > len(b.match.QueryParams)
	}
	if a.route != b.route {
		return olderObject(&a.route.ObjectMeta, &b.route.ObjectMeta)
	}
	if a.ruleIdx != b.ruleIdx {
		return a.ruleIdx < b.ruleIdx
	}
	return a.matchIdx < b.matchIdx
}

// prefixKey is the path compared for length: prefixes without trailing slashes.
func prefixKey(m *gwMatch) string {
	if m.pathType == gwv1.PathMatchPathPrefix {
		return strings.TrimRight(m.path, "/")
	}
	return m.path
}

// hostMatcher matches a Gateway hostname; nil for any host. A Gateway wildcard covers one or
// more labels, Caddy's host matcher only one, so wildcards match the Host header by expression.
func hostMatcher(host string) *MatcherSet {
	switch {
	case host == "":
		return nil
	case strings.HasPrefix(host, "*."):
		pattern := `(?i)^[^.:]+(\.[^.:]+)*` + regexp.QuoteMeta(host[1:]) + `(:[0-9]+)?$`
		return &MatcherSet{HeaderRE: map[string]*Regexp{"Host": {Pattern: pattern}}}
	}
	return &MatcherSet{Host: []string{host}}
}

// ruleBuilder turns matches into Caddy routes for one server: a Gateway's listeners on one port.
type ruleBuilder struct {
	tls    bool  // the listeners are HTTPS
	port   int32 // the listeners' port
	idx    backendIndex
	grants referenceGrants
	opts   *Options
	named  map[string]*Route
	btls   backendTLSIndex
	// client is the Gateway's certificate for TLS backends, nil for none.
	client *gatewayClient
}

// matchRoute is one match's route: its matchers and the rule's filters and backends; false when
// the match cannot be expressed (an expression that does not compile: the route's status says so).
func (b *ruleBuilder) matchRoute(m *gwMatch) (Route, bool) {
	rule := &m.route.Spec.Rules[m.ruleIdx]
	set := MatcherSet{}
	switch m.pathType {
	case gwv1.PathMatchExact:
		set.PathRegexp = &Regexp{Pattern: "^" + regexp.QuoteMeta(m.path) + "$"}
	case gwv1.PathMatchRegularExpression:
		if _, err := regexp.Compile(m.path); err != nil {
			return Route{}, false
		}
		set.PathRegexp = &Regexp{Pattern: "^(?:" + m.path + ")$"}
	default:
		if key := prefixKey(m); key != "" {
			set.PathRegexp = &Regexp{Pattern: "^" + regexp.QuoteMeta(key) + "(?:/.*)?$"}
		}
	}
	if m.match.Method != nil {
		set.Method = []string{string(*m.match.Method)}
	}
	for _, h := range m.match.Headers {
		if set.HeaderRE == nil {
			set.HeaderRE = map[string]*Regexp{}
		}
		name := canonicalHeader(string(h.Name))
		if _, dup := set.HeaderRE[name]; dup {
			continue // the API: the first match of a name wins
		}
		pattern := "^" + regexp.QuoteMeta(h.Value) + "$"
		if h.Type != nil && *h.Type == gwv1.HeaderMatchRegularExpression {
			if _, err := regexp.Compile(h.Value); err != nil {
				return Route{}, false
			}
			pattern = h.Value
		}
		set.HeaderRE[name] = &Regexp{Pattern: pattern}
	}
	for _, q := range m.match.QueryParams {
		if set.Query == nil {
			set.Query = map[string][]string{}
		}
		if _, dup := set.Query[string(q.Name)]; !dup {
			set.Query[string(q.Name)] = []string{q.Value}
		}
	}
	route := Route{Handle: b.ruleHandlers(rule, m), Terminal: true}
	if set.PathRegexp != nil || set.Method != nil || set.HeaderRE != nil || set.Query != nil {
		route.Match = []MatcherSet{set}
	}
	return route, true
}

// canonicalHeader is the MIME-canonical form of a header name (case-insensitive in HTTP).
func canonicalHeader(name string) string {
	parts := strings.Split(strings.ToLower(name), "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// ruleHandlers are the rule's filters in order, then its backends; a redirect ends the chain.
func (b *ruleBuilder) ruleHandlers(rule *gwv1.HTTPRouteRule, m *gwMatch) []any {
	if msg := unsupportedInRule(rule); msg != "" {
		return []any{serverError()}
	}
	var hs []any
	if c := corsHandler(rule); c != nil {
		hs = append(hs, c)
	}
	timed := ruleTimeout(rule)
	if timed > 0 {
		hs = append(hs, &Timeout{Handler: "plexus_timeout", Duration: timed.String()})
	}
	for _, f := range rule.Filters {
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier, gwv1.HTTPRouteFilterResponseHeaderModifier:
			hs = append(hs, headerFilter(&f))
		case gwv1.HTTPRouteFilterURLRewrite:
			if rw := f.URLRewrite; rw != nil {
				if rw.Hostname != nil {
					hs = append(hs, &Headers{Handler: "headers", Request: &HeaderOps{Set: map[string][]string{"Host": {string(*rw.Hostname)}}}})
				}
				if rw.Path != nil {
					hs = append(hs, pathRewrite(m, rw.Path))
				}
			}
		case gwv1.HTTPRouteFilterRequestRedirect:
			return append(hs, b.redirect(m, f.RequestRedirect)...)
		case gwv1.HTTPRouteFilterRequestMirror:
			if mh := b.mirror(m.route, f.RequestMirror); mh != nil {
				hs = append(hs, mh)
			}
		}
	}
	return append(hs, b.backends(m.route, rule, timed > 0)...)
}

// backends proxies to the rule's usable backends, weighted; 500 when there is none. Invalid
// backendRefs (refused, missing, without ready endpoints) keep their weight: that share of
// requests gets a 500 (a FailShare before the proxy), as the API requires.
//
// A rule with a timeout (timed) proxies through a reverse_proxy of its own without passive health
// checks: Caddy counts a request its deadline cut short as a failure of the endpoint (only a
// client's cancellation is exempt), and with the shared proxy's checks one timed-out request
// would mark every endpoint of the Service down for every route using it.
func (b *ruleBuilder) backends(r *gwv1.HTTPRoute, rule *gwv1.HTTPRouteRule, timed bool) []any {
	type weighted struct {
		rb      resolvedBackend
		weight  int
		filters []gwv1.HTTPRouteFilter
	}
	var usable []weighted
	failing, total := 0, 0
	for _, ref := range rule.BackendRefs {
		w := 1
		if ref.Weight != nil {
			w = int(*ref.Weight)
		}
		if w == 0 {
			continue
		}
		total += w
		if !backendRefVerdict(r.Namespace, &ref.BackendObjectReference, b.grants, b.idx).OK {
			failing += w
			continue
		}
		ns := r.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		key := types.NamespacedName{Namespace: ns, Name: string(ref.Name)}
		rb := b.idx.resolveServicePort(key, *ref.Port)
		if len(rb.upstreams) == 0 || !b.withBackendTLS(&rb, key, *ref.Port) {
			failing += w
			continue
		}
		usable = append(usable, weighted{rb, w, ref.Filters})
	}
	if len(usable) == 0 {
		return []any{serverError()}
	}
	var hs []any
	if failing > 0 {
		g := gcd(failing, total)
		hs = append(hs, &FailShare{Handler: "plexus_fail_share", Numerator: failing / g, Denominator: total / g})
	}
	if slices.ContainsFunc(usable, func(u weighted) bool { return len(u.filters) > 0 || u.rb.tls != usable[0].rb.tls }) {
		// Backends with filters of their own, or with different TLS: one group per backend,
		// its filters then its proxy, chosen by weight per request.
		split := &Split{Handler: "plexus_split"}
		g := 0
		for _, u := range usable {
			g = gcd(g, u.weight)
		}
		for _, u := range usable {
			group := append(backendFilters(u.filters), b.invoke(u.rb.id, u.rb, nil, timed))
			split.Groups = append(split.Groups, SplitGroup{Weight: u.weight / g, Routes: []Route{{Handle: group}}})
		}
		return append(hs, split)
	}
	if len(usable) == 1 {
		if !timed && !usable[0].rb.h2c && usable[0].rb.tls == nil {
			return append(hs, backendHandler(usable[0].rb, b.opts, b.named))
		}
		return append(hs, b.invoke(usable[0].rb.id, usable[0].rb, nil, timed))
	}
	// Each backend's share is split evenly over its endpoints: endpoint weight = backend weight
	// × L / its own endpoint count, L the least common multiple of the endpoint counts, reduced
	// by the common divisor. Where that could overflow, weights are rounded to 1/1000 of a
	// backend's weight per endpoint instead (never below 1).
	l, exact := 1, true
	for _, u := range usable {
		n := len(u.rb.upstreams)
		l = l / gcd(l, n) * n
		if l > 1<<20 {
			exact = false
			break
		}
	}
	var ids []string
	merged := resolvedBackend{}
	var weights []int
	for _, u := range usable {
		ids = append(ids, fmt.Sprintf("%s*%d", u.rb.id, u.weight))
		n := len(u.rb.upstreams)
		w := u.weight * l / n
		if !exact {
			w = max(1, u.weight*1000/n)
		}
		for _, up := range u.rb.upstreams {
			merged.upstreams = append(merged.upstreams, up)
			weights = append(weights, w)
		}
	}
	g := weights[0]
	for _, w := range weights {
		g = gcd(g, w)
	}
	for i := range weights {
		weights[i] /= g
	}
	// One transport for all: HTTP/2 cleartext only when every backend speaks it.
	merged.h2c = !slices.ContainsFunc(usable, func(u weighted) bool { return !u.rb.h2c })
	merged.tls = usable[0].rb.tls // the same for all, else they went to plexus_split
	return append(hs, b.invoke("weighted:"+strings.Join(ids, ","), merged, &SelectionPolicy{Policy: "weighted_round_robin", Weights: weights}, timed))
}

// invoke runs the named route of a reverse_proxy to rb's upstreams (adding it to the server's
// named routes once): with policy as its selection policy when set, over HTTP/2 cleartext when
// rb.h2c, and without passive health checks when timed. Variants get their own name (id with a
// "timed:" or "h2c:" prefix): the plain one is shared with Ingress.
func (b *ruleBuilder) invoke(id string, rb resolvedBackend, policy *SelectionPolicy, timed bool) *Invoke {
	if rb.tls != nil {
		rb.h2c = false // TLS, as the policy asks; ALPN may still agree on HTTP/2
		id = "tls:" + rb.tls.policy.String() + ":" + id
		if b.client != nil {
			id = "client:" + b.client.gw.String() + ":" + id
		}
	}
	if rb.h2c {
		id = "h2c:" + id
	}
	if timed {
		id = "timed:" + id
	}
	if _, done := b.named[id]; !done {
		rp := reverseProxy(rb, b.opts)
		if policy != nil {
			rp.LoadBalancing.SelectionPolicy = *policy
		}
		if rb.h2c {
			rp.Transport.Versions = []string{"h2c"}
		}
		if rb.tls != nil {
			withBackendTLS(rp.Transport, rb.tls, b.client)
			// Caddy keeps an endpoint's health per address, across proxies: a handshake that
			// fails one policy's verification would take the endpoint out for every route
			// and policy that uses it (the API lets several target the same pods).
			rp.HealthChecks = nil
		}
		if timed {
			rp.HealthChecks = nil
		}
		b.named[id] = &Route{Handle: []any{fastPath(rp)}, Terminal: true}
	}
	return &Invoke{Handler: "invoke", Name: id}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// serverError is the answer of a rule that cannot be served (no usable backend, an unsupported
// filter), as the Gateway API requires.
func serverError() *StaticResponse {
	return &StaticResponse{Handler: "static_response", StatusCode: 500, Body: "500 internal server error\n"}
}

// ruleTimeout is the rule's deadline: the shorter of timeouts.request and
// timeouts.backendRequest (one backend try per request, so they bound the same time); 0 for none
// ("0s" disables a timeout, as the API says).
func ruleTimeout(rule *gwv1.HTTPRouteRule) time.Duration {
	if rule.Timeouts == nil {
		return 0
	}
	var d time.Duration
	for _, v := range []*gwv1.Duration{rule.Timeouts.Request, rule.Timeouts.BackendRequest} {
		if v == nil {
			continue
		}
		t, err := time.ParseDuration(string(*v))
		if err != nil || t <= 0 {
			continue
		}
		if d == 0 || t < d {
			d = t
		}
	}
	return d
}

// unsupportedInRule names what in the rule plexus-ingress cannot serve, or "".
func unsupportedInRule(rule *gwv1.HTTPRouteRule) string {
	for _, f := range rule.Filters {
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier, gwv1.HTTPRouteFilterResponseHeaderModifier,
			gwv1.HTTPRouteFilterRequestRedirect, gwv1.HTTPRouteFilterURLRewrite, gwv1.HTTPRouteFilterRequestMirror,
			gwv1.HTTPRouteFilterCORS:
		default:
			return fmt.Sprintf("filter %s is not supported", f.Type)
		}
	}
	for _, b := range rule.BackendRefs {
		for _, f := range b.Filters {
			if f.Type != gwv1.HTTPRouteFilterRequestHeaderModifier && f.Type != gwv1.HTTPRouteFilterResponseHeaderModifier {
				return fmt.Sprintf("backendRef filter %s is not supported (header modifiers are)", f.Type)
			}
		}
	}
	for _, m := range rule.Matches {
		for _, q := range m.QueryParams {
			if q.Type != nil && *q.Type != gwv1.QueryParamMatchExact {
				return "query parameter match type " + string(*q.Type) + " is not supported"
			}
		}
		// An expression Caddy cannot compile would fail the whole config's load: refuse it here.
		if m.Path != nil && m.Path.Type != nil && *m.Path.Type == gwv1.PathMatchRegularExpression && m.Path.Value != nil {
			if _, err := regexp.Compile(*m.Path.Value); err != nil {
				return fmt.Sprintf("path expression %q does not compile: %v", *m.Path.Value, err)
			}
		}
		for _, h := range m.Headers {
			if h.Type != nil && *h.Type == gwv1.HeaderMatchRegularExpression {
				if _, err := regexp.Compile(h.Value); err != nil {
					return fmt.Sprintf("header %s expression %q does not compile: %v", h.Name, h.Value, err)
				}
			}
		}
	}
	return ""
}
