package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// Caddy JSON of the handlers the annotations add.

// ProxyHeaders are the header changes of a reverse_proxy (upstream request and response).
type ProxyHeaders struct {
	Request  *HeaderOps `json:"request,omitempty"`
	Response *HeaderOps `json:"response,omitempty"`
}

// TransportTLS makes the transport speak TLS to the upstream.
type TransportTLS struct {
	// InsecureSkipVerify: like ingress-nginx's default (proxy_ssl_verify off), pod certificates
	// are not verified.
	InsecureSkipVerify bool `json:"insecure_skip_verify"`
	// CA verifies the upstream's certificate (the system's roots when nil) and ServerName is the
	// name sent and verified (BackendTLSPolicy, gateway_backendtls.go).
	CA         *CAPool `json:"ca,omitempty"`
	ServerName string  `json:"server_name,omitempty"`
}

// annotatedRouteName is the named route serving r when its Ingress's annotations change how it
// is proxied, adding the route to named; ok is false when they do not.
func annotatedRouteName(r pathRoute, opts *Options, named map[string]*Route) (string, bool) {
	a := r.ann
	if !a.proxyChanges() {
		return "", false
	}
	var handlers []any
	if a.redirectURL != "" {
		handlers = []any{&StaticResponse{Handler: "static_response", StatusCode: a.redirectCode,
			Headers: map[string][]string{"Location": {a.redirectURL}}}}
	} else {
		if len(r.backend.upstreams) == 0 {
			return PathTableUnavailable, true
		}
		if rw := rewriteFor(r); rw != nil {
			handlers = append(handlers, rw)
		}
		handlers = append(handlers, annotatedProxy(r.backend, a, opts))
	}
	b, _ := json.Marshal(handlers)
	sum := sha256.Sum256(b)
	name := r.backend.id + "#" + hex.EncodeToString(sum[:6])
	if a.redirectURL != "" {
		name = "redirect#" + hex.EncodeToString(sum[:6])
	}
	if _, ok := named[name]; !ok {
		named[name] = &Route{Handle: handlers, Terminal: true}
	}
	return name, true
}

// rewriteFor is the rewrite of a path whose Ingress sets rewrite-target, like ingress-nginx's
// "rewrite <path regex> <target> break": the whole path becomes the target, with $1..$9 taken
// from the path regex's groups. An Exact path is rewritten only when it matches exactly.
func rewriteFor(r pathRoute) *Rewrite {
	t := r.ann.rewriteTarget
	if t == "" {
		return nil
	}
	// $N stays as written: Caddy expands {…} placeholders in the replacement before the regexp
	// package sees it, so the ${N} form would be eaten. A group directly followed by a letter,
	// digit or underscore is read by Go as a longer group name (documented limit).
	replace := t
	find := "^" + regexp.QuoteMeta(r.key) + "$"
	if r.regex {
		find = nginxPathRegexp(r.key) + ".*"
	}
	return &Rewrite{Handler: "rewrite", PathRegexp: []PathRegexpRep{{Find: find, Replace: replace}}}
}

// nginxPathRegexp is how ingress-nginx matches a path under use-regex: case-insensitive,
// anchored at the start only.
func nginxPathRegexp(p string) string { return "(?i)^" + p }

// annotatedProxy is the backend's reverse_proxy with the annotations' protocol, timeouts and
// headers.
func annotatedProxy(b resolvedBackend, a *ingressAnnotations, opts *Options) *ReverseProxy {
	rp := reverseProxy(b, opts)
	tr := *rp.Transport
	switch a.backendProtocol {
	case "HTTPS":
		tr.TLS = &TransportTLS{InsecureSkipVerify: true}
	case "GRPCS":
		tr.TLS = &TransportTLS{InsecureSkipVerify: true}
		tr.Versions = []string{"2"}
	case "GRPC", "H2C":
		tr.Versions = []string{"h2c", "2"}
	}
	if a.connectTimeout != "" {
		tr.DialTimeout = a.connectTimeout
	}
	tr.ReadTimeout, tr.WriteTimeout = a.readTimeout, a.sendTimeout
	rp.Transport = &tr
	if len(a.requestHeaders) > 0 || len(a.responseHeaders) > 0 {
		rp.Headers = &ProxyHeaders{Request: headerSetOps(a.requestHeaders), Response: headerSetOps(a.responseHeaders)}
	}
	return fastPath(rp)
}

// headerSetOps sets each header of h to its value.
func headerSetOps(h map[string]string) *HeaderOps {
	if len(h) == 0 {
		return nil
	}
	ops := &HeaderOps{Set: map[string][]string{}}
	for k, v := range h {
		ops.Set[k] = []string{v}
	}
	return ops
}

// sslRedirects decides, per host of the served Ingresses, what their annotations ask of plain
// HTTP: skip (ssl-redirect "false" on an Ingress naming the host: no redirect even for a TLS
// host) and force (force-ssl-redirect "true": redirect even without TLS).
func sslRedirects(served []*networkingv1.Ingress, p *problems) (skip, force map[string]bool) {
	skip, force = map[string]bool{}, map[string]bool{}
	for _, ing := range served {
		a := parseAnnotations(ing, p)
		if a == nil || (a.sslRedirect == nil && !a.forceSSL) {
			continue
		}
		for _, rule := range ing.Spec.Rules {
			h := strings.ToLower(rule.Host)
			if a.sslRedirect != nil && !*a.sslRedirect {
				skip[h] = true
			}
			if a.forceSSL {
				force[h] = true
			}
		}
	}
	return skip, force
}

// sortedRegex orders regex paths longest first, then by pattern.
func sortedRegex(entries []PrefixEntry) {
	sort.SliceStable(entries, func(i, j int) bool {
		if len(entries[i].Path) != len(entries[j].Path) {
			return len(entries[i].Path) > len(entries[j].Path)
		}
		return entries[i].Path < entries[j].Path
	})
}
