package proxy

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// CORS response and request header names (Fetch standard, "HTTP extensions").
const (
	hdrOrigin           = "Origin"
	hdrRequestMethod    = "Access-Control-Request-Method"
	hdrRequestHeaders   = "Access-Control-Request-Headers"
	hdrAllowOrigin      = "Access-Control-Allow-Origin"
	hdrAllowCredentials = "Access-Control-Allow-Credentials"
	hdrAllowMethods     = "Access-Control-Allow-Methods"
	hdrAllowHeaders     = "Access-Control-Allow-Headers"
	hdrExposeHeaders    = "Access-Control-Expose-Headers"
	hdrMaxAge           = "Access-Control-Max-Age"
	hdrVary             = "Vary"
)

// corsResponseHeaders are the headers a CORS policy decides; a backend's own values are replaced
// (or removed, for an origin the policy does not allow) so the route's policy is the only one.
var corsResponseHeaders = []string{hdrAllowOrigin, hdrAllowCredentials, hdrAllowMethods, hdrAllowHeaders, hdrExposeHeaders, hdrMaxAge}

// defaultCORSMaxAge is the API's Access-Control-Max-Age when the filter sets none.
const defaultCORSMaxAge = 5

// CORS is the Caddy handler "plexus_cors" (translate.CORS in the config): the Gateway API's
// HTTPRoute CORS filter. A preflight request (OPTIONS with Origin and
// Access-Control-Request-Method) is answered here with 204, with the policy's headers when its
// origin is allowed and without any CORS header when not, and never reaches the backend. Any
// other request goes on; when its Origin is allowed, the response gets Access-Control-Allow-Origin
// (the request's origin, so it is right with or without credentials), -Allow-Credentials and
// -Expose-Headers.
//
// Wildcards ("*" in AllowMethods, AllowHeaders) are answered by echoing what the preflight asks
// for: the API allows that in every case and requires it when credentials are allowed. A
// wildcard in ExposeHeaders is sent as "*" without credentials; with credentials, where a
// browser reads "*" as a header name, the response's own header names are listed instead.
type CORS struct {
	// AllowOrigins are the allowed origins: "*" for all, else "scheme://host[:port]" where host
	// may start with "*" (any number of labels: "https://*.example.com" allows
	// https://a.b.example.com) or be "*" (any host). A missing port is the scheme's default.
	AllowOrigins     []string `json:"allow_origins,omitempty"`
	AllowCredentials bool     `json:"allow_credentials,omitempty"`
	// AllowMethods, AllowHeaders, ExposeHeaders are sent as listed; ["*"] is a wildcard.
	AllowMethods  []string `json:"allow_methods,omitempty"`
	AllowHeaders  []string `json:"allow_headers,omitempty"`
	ExposeHeaders []string `json:"expose_headers,omitempty"`
	// MaxAge is the seconds a preflight's answer may be cached; 0 means the API's default, 5.
	MaxAge int `json:"max_age,omitempty"`

	origins []originPattern
}

func init() { caddy.RegisterModule(&CORS{}) }

// CaddyModule implements caddy.Module.
func (*CORS) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.plexus_cors", New: func() caddy.Module { return new(CORS) }}
}

// Provision implements caddy.Provisioner: it parses the allowed origins once.
func (c *CORS) Provision(caddy.Context) error {
	c.origins = c.origins[:0]
	for _, o := range c.AllowOrigins {
		if p, ok := parseOriginPattern(o); ok {
			c.origins = append(c.origins, p)
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (c *CORS) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	origin := r.Header.Get(hdrOrigin)
	if origin == "" {
		return next.ServeHTTP(w, r) // not a cross-origin request
	}
	allowed := c.allows(origin)
	if r.Method == http.MethodOptions && r.Header.Get(hdrRequestMethod) != "" {
		h := w.Header()
		h.Add(hdrVary, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
		if allowed {
			c.preflightHeaders(h, r)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return next.ServeHTTP(&corsWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, cors: c, origin: origin, allowed: allowed}, r)
}

// preflightHeaders sets the answer to an allowed preflight request.
func (c *CORS) preflightHeaders(h http.Header, r *http.Request) {
	h.Set(hdrAllowOrigin, r.Header.Get(hdrOrigin))
	if c.AllowCredentials {
		h.Set(hdrAllowCredentials, "true")
	}
	if len(c.AllowMethods) > 0 {
		if isWildcard(c.AllowMethods) {
			h.Set(hdrAllowMethods, r.Header.Get(hdrRequestMethod))
		} else {
			h.Set(hdrAllowMethods, strings.Join(c.AllowMethods, ", "))
		}
	}
	if len(c.AllowHeaders) > 0 {
		if isWildcard(c.AllowHeaders) {
			if asked := r.Header.Values(hdrRequestHeaders); len(asked) > 0 {
				h.Set(hdrAllowHeaders, strings.Join(asked, ", "))
			}
		} else {
			h.Set(hdrAllowHeaders, strings.Join(c.AllowHeaders, ", "))
		}
	}
	if v := c.exposeHeaders(nil); v != "" {
		h.Set(hdrExposeHeaders, v)
	}
	maxAge := c.MaxAge
	if maxAge <= 0 {
		maxAge = defaultCORSMaxAge
	}
	h.Set(hdrMaxAge, strconv.Itoa(maxAge))
}

// exposeHeaders is the Access-Control-Expose-Headers value: the list, "*" for a wildcard
// without credentials, or with credentials the names in resp (none for a preflight).
func (c *CORS) exposeHeaders(resp http.Header) string {
	if len(c.ExposeHeaders) == 0 {
		return ""
	}
	if !slices.Contains(c.ExposeHeaders, "*") {
		return strings.Join(c.ExposeHeaders, ", ")
	}
	if !c.AllowCredentials {
		return "*"
	}
	var names []string
	for name := range resp {
		if !strings.HasPrefix(name, "Access-Control-") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// allows says whether origin is one of the allowed origins.
func (c *CORS) allows(origin string) bool {
	o, ok := parseOrigin(origin)
	for _, p := range c.origins {
		if p.any || (ok && p.matches(o)) {
			return true
		}
	}
	return false
}

// corsWriter adds the CORS headers of an actual (not preflight) request when the response's
// header is written, over whatever the backend sent.
type corsWriter struct {
	*caddyhttp.ResponseWriterWrapper
	cors        *CORS
	origin      string
	allowed     bool
	wroteHeader bool
}

// WriteHeader implements http.ResponseWriter.
func (cw *corsWriter) WriteHeader(status int) {
	if !cw.wroteHeader && (status < 100 || status > 199) {
		cw.wroteHeader = true
		h := cw.Header()
		for _, name := range corsResponseHeaders {
			h.Del(name)
		}
		h.Add(hdrVary, hdrOrigin)
		if cw.allowed {
			h.Set(hdrAllowOrigin, cw.origin)
			if cw.cors.AllowCredentials {
				h.Set(hdrAllowCredentials, "true")
			}
			if v := cw.cors.exposeHeaders(h); v != "" {
				h.Set(hdrExposeHeaders, v)
			}
		}
	}
	cw.ResponseWriterWrapper.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (cw *corsWriter) Write(b []byte) (int, error) {
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriterWrapper.Write(b)
}

// ReadFrom implements io.ReaderFrom: the wrapper's own would write the body past WriteHeader.
func (cw *corsWriter) ReadFrom(r io.Reader) (int64, error) {
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriterWrapper.ReadFrom(r)
}

// origin is a parsed Origin: scheme, lower-case host and port (the scheme's default when the
// origin has none).
type origin struct {
	scheme, host, port string
}

// originPattern is a parsed allowed origin; any is "*", hostSuffix a host "*.example.com"
// (kept as ".example.com"), anyHost a host "*".
type originPattern struct {
	origin
	any, anyHost bool
	hostSuffix   string
}

func (p originPattern) matches(o origin) bool {
	if p.scheme != o.scheme || p.port != o.port {
		return false
	}
	switch {
	case p.anyHost:
		return true
	case p.hostSuffix != "":
		return len(o.host) > len(p.hostSuffix) && strings.HasSuffix(o.host, p.hostSuffix)
	}
	return p.host == o.host
}

func parseOriginPattern(s string) (originPattern, bool) {
	if s == "*" {
		return originPattern{any: true}, true
	}
	o, ok := parseOrigin(s)
	if !ok {
		return originPattern{}, false
	}
	p := originPattern{origin: o}
	switch {
	case o.host == "*":
		p.anyHost = true
	case strings.HasPrefix(o.host, "*."):
		p.hostSuffix = o.host[1:]
	case strings.Contains(o.host, "*"):
		return originPattern{}, false
	}
	return p, true
}

// parseOrigin parses "scheme://host[:port]" (an IPv6 host in brackets); false for anything
// else, such as the opaque origin "null".
func parseOrigin(s string) (origin, bool) {
	scheme, rest, ok := strings.Cut(s, "://")
	scheme = strings.ToLower(scheme)
	if !ok || rest == "" || strings.ContainsAny(rest, "/?#@") {
		return origin{}, false
	}
	o := origin{scheme: scheme, host: strings.ToLower(rest)}
	if i := strings.LastIndexByte(o.host, ':'); i >= 0 && !strings.HasSuffix(o.host, "]") {
		o.host, o.port = o.host[:i], o.host[i+1:]
		if _, err := strconv.ParseUint(o.port, 10, 16); err != nil {
			return origin{}, false
		}
		o.port = strings.TrimLeft(o.port, "0")
	}
	if o.port == "" {
		switch scheme {
		case "http":
			o.port = "80"
		case "https":
			o.port = "443"
		}
	}
	return o, o.host != ""
}

func isWildcard(list []string) bool { return len(list) == 1 && list[0] == "*" }

var (
	_ caddy.Provisioner           = (*CORS)(nil)
	_ caddyhttp.MiddlewareHandler = (*CORS)(nil)
	_ http.ResponseWriter         = (*corsWriter)(nil)
	_ io.ReaderFrom               = (*corsWriter)(nil)
)
