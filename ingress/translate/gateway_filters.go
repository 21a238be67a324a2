package translate

// HTTPRoute filters: request mirror, header modifiers, URL rewrite and redirect, as Caddy handlers.

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// mirror copies requests to the filter's backend; nil (no mirroring) when the backend is not
// usable, which the route's ResolvedRefs reports.
func (b *ruleBuilder) mirror(r *gwv1.HTTPRoute, f *gwv1.HTTPRequestMirrorFilter) *Mirror {
	if f == nil || !backendRefVerdict(r.Namespace, &f.BackendRef, b.grants, b.idx).OK {
		return nil
	}
	ns := r.Namespace
	if f.BackendRef.Namespace != nil {
		ns = string(*f.BackendRef.Namespace)
	}
	rb := b.idx.resolveServicePort(types.NamespacedName{Namespace: ns, Name: string(f.BackendRef.Name)}, *f.BackendRef.Port)
	if len(rb.upstreams) == 0 {
		return nil
	}
	m := &Mirror{Handler: "plexus_mirror", Upstreams: rb.upstreams}
	switch {
	case f.Percent != nil:
		m.Numerator, m.Denominator = int(*f.Percent), 100
	case f.Fraction != nil:
		m.Numerator, m.Denominator = int(f.Fraction.Numerator), 100
		if f.Fraction.Denominator != nil {
			m.Denominator = int(*f.Fraction.Denominator)
		}
	}
	return m
}

// backendFilters translates a backendRef's filters (header modifiers: unsupportedInRule refuses
// the rest) into the handlers before its proxy.
func backendFilters(fs []gwv1.HTTPRouteFilter) []any {
	var hs []any
	for i := range fs {
		if h := headerFilter(&fs[i]); h != nil {
			hs = append(hs, h)
		}
	}
	return hs
}

// headerFilter is the handler of a request or response header modifier; nil for other filters.
func headerFilter(f *gwv1.HTTPRouteFilter) *Headers {
	switch f.Type {
	case gwv1.HTTPRouteFilterRequestHeaderModifier:
		return &Headers{Handler: "headers", Request: headerOps(f.RequestHeaderModifier)}
	case gwv1.HTTPRouteFilterResponseHeaderModifier:
		return &Headers{Handler: "headers", Response: &ResponseHeaders{HeaderOps: *headerOps(f.ResponseHeaderModifier), Deferred: true}}
	}
	return nil
}

// headerOps translates a header filter.
func headerOps(f *gwv1.HTTPHeaderFilter) *HeaderOps {
	ops := &HeaderOps{}
	if f == nil {
		return ops
	}
	for _, h := range f.Set {
		if ops.Set == nil {
			ops.Set = map[string][]string{}
		}
		ops.Set[string(h.Name)] = []string{h.Value}
	}
	for _, h := range f.Add {
		if ops.Add == nil {
			ops.Add = map[string][]string{}
		}
		ops.Add[string(h.Name)] = append(ops.Add[string(h.Name)], h.Value)
	}
	ops.Delete = append(ops.Delete, f.Remove...)
	return ops
}

// pathRewrite replaces the full path, or the matched prefix, of the request.
func pathRewrite(m *gwMatch, p *gwv1.HTTPPathModifier) *Rewrite {
	rw := &Rewrite{Handler: "rewrite"}
	switch {
	case p.Type == gwv1.FullPathHTTPPathModifier && p.ReplaceFullPath != nil:
		rw.PathRegexp = []PathRegexpRep{{Find: "^.*$", Replace: literalReplacement(*p.ReplaceFullPath)}}
	case p.Type == gwv1.PrefixMatchHTTPPathModifier && p.ReplacePrefixMatch != nil:
		prefix := ""
		if m.pathType == gwv1.PathMatchPathPrefix {
			prefix = prefixKey(m)
		}
		repl := strings.TrimRight(*p.ReplacePrefixMatch, "/")
		if repl == "" {
			// "/foo" → "/", "/foo/bar" → "/bar".
			rw.PathRegexp = []PathRegexpRep{{Find: "^" + regexp.QuoteMeta(prefix) + "/?(.*)$", Replace: "/$1"}}
		} else {
			rw.PathRegexp = []PathRegexpRep{{Find: "^" + regexp.QuoteMeta(prefix) + "(/.*)?$", Replace: literalReplacement(repl) + "$1"}}
		}
	}
	return rw
}

// literalReplacement escapes $ for a regular-expression replacement.
func literalReplacement(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// redirect answers with a redirect built from the filter (scheme, host, port, path, status).
func (b *ruleBuilder) redirect(m *gwMatch, f *gwv1.HTTPRequestRedirectFilter) []any {
	if f == nil {
		return []any{serverError()}
	}
	// The API: without a port, the redirect goes to the well-known port of the filter's scheme,
	// or to the listener's port when the filter keeps the scheme.
	scheme, port := "http", b.port
	if b.tls {
		scheme = "https"
	}
	if f.Scheme != nil {
		scheme = *f.Scheme
		port = map[string]int32{"http": httpPort, "https": httpsPort}[scheme]
	}
	if f.Port != nil {
		port = *f.Port
	}
	host := "{http.request.host}"
	if f.Hostname != nil {
		host = string(*f.Hostname)
	}
	if !(scheme == "http" && port == httpPort) && !(scheme == "https" && port == httpsPort) && port != 0 {
		host = fmt.Sprintf("%s:%d", host, port)
	}
	var hs []any
	if f.Path != nil {
		hs = append(hs, pathRewrite(m, f.Path))
	}
	code := 302
	if f.StatusCode != nil {
		code = *f.StatusCode
	}
	return append(hs, &StaticResponse{Handler: "static_response", StatusCode: code,
		Headers: map[string][]string{"Location": {scheme + "://" + host + "{http.request.uri}"}}})
}
