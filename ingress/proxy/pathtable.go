package proxy

import (
	"fmt"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/plexus-net/plexus/ingress/translate"
)

// PathTable is the Caddy handler plexus_paths (translate.PathTableHandler): a host's Ingress
// paths looked up in a map and a short prefix list, each invoking the server's named route of
// its backend like Caddy's invoke handler.
type PathTable struct {
	translate.PathTableHandler
	regex []*regexp.Regexp // Regex, compiled
	// compiled are the server's named routes compiled once, by name: Caddy's Route.Compile
	// copies the route into a new closure per call, which cost an allocation of a few hundred
	// bytes per request. Only routes that never reach the next handler are kept (see serve).
	compiled sync.Map
}

// Provision compiles the regular expression paths.
func (t *PathTable) Provision(caddy.Context) error {
	for _, e := range t.Regex {
		re, err := regexp.Compile(e.Path)
		if err != nil {
			return fmt.Errorf("plexus_paths: path regex %q: %w", e.Path, err)
		}
		t.regex = append(t.regex, re)
	}
	return nil
}

// CaddyModule registers the handler.
func (*PathTable) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + translate.PathTableModule,
		New: func() caddy.Module { return new(PathTable) },
	}
}

// lookup returns the route of the request path, the entry's label for metrics ("=/path" for
// Exact, "/path/*" for Prefix) and whether an entry matched.
func (t *PathTable) lookup(p string) (route, label string, ok bool) {
	if r, ok := t.Exact[p]; ok {
		return r, "=" + p, true
	}
	for i, re := range t.regex {
		if re.MatchString(p) {
			return t.Regex[i].Route, "~" + t.Regex[i].Path, true
		}
	}
	for _, e := range t.Prefix {
		if e.Path == "" || p == e.Path || strings.HasPrefix(p, e.Path+"/") {
			return e.Route, e.Path + "/*", true
		}
	}
	return "", "", false
}

// ServeHTTP serves the request with its path's route, or passes it on when no path matches.
func (t *PathTable) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	p := cleanPath(r.URL.Path)
	route, label, ok := t.lookup(p)
	if !ok {
		return next.ServeHTTP(w, r)
	}
	m := metrics.Load()
	if m == nil || !t.Metrics {
		return t.serve(w, r, next, route)
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	err := t.serve(rec, r, next, route)
	m.observe(t.Host+label, rec.status, err, time.Since(start))
	return err
}

// serve answers with the named route, or 503 when the path's backend cannot be served.
func (t *PathTable) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, route string) error {
	if route == translate.PathTableUnavailable {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, err := w.Write([]byte("503 service unavailable\n"))
		return err
	}
	server, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if server == nil {
		return fmt.Errorf("plexus_paths: no server in the request context")
	}
	if h, ok := t.compiled.Load(route); ok {
		return h.(caddyhttp.Handler).ServeHTTP(w, r)
	}
	named, ok := server.NamedRoutes[route]
	if !ok {
		return fmt.Errorf("plexus_paths: route %q not found", route)
	}
	h := named.Compile(next)
	// A terminal route without matchers or group ends the chain whatever next is (Caddy
	// replaces next with its empty handler), so its compiled handler serves every request; the
	// translation's named routes are all of this kind.
	if named.Terminal && len(named.MatcherSets) == 0 && len(named.MatcherSetsRaw) == 0 && named.Group == "" {
		t.compiled.Store(route, h)
	}
	return h.ServeHTTP(w, r)
}

// cleanPath cleans a request path as Caddy's path matchers do: path.Clean, keeping a trailing
// slash, so "/a//b/../c/" is "/a/c/".
func cleanPath(p string) string {
	cleaned := path.Clean(p)
	if cleaned != "/" && strings.HasSuffix(p, "/") {
		cleaned += "/"
	}
	return cleaned
}

func init() {
	caddy.RegisterModule(new(PathTable))
}

var (
	_ caddyhttp.MiddlewareHandler = (*PathTable)(nil)
	_ caddy.Provisioner           = (*PathTable)(nil)
)
