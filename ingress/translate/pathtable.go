package translate

// PathTableHandler is the plexus_paths handler (registered by ingress/proxy): one host's Ingress
// paths as a table instead of one Caddy route with a regular expression per path, which made a
// config of 1,000 paths take over 100 ms to load (each route's matcher and handlers are
// provisioned separately). Semantics are those of the routes it replaces: the request path is
// cleaned like Caddy's path matchers do (path.Clean, keeping a trailing slash), an Exact entry
// matches it exactly, a Prefix entry matches it element-wise, Exact before Prefix, longer
// prefixes first; a request no entry matches goes on to the next route.
type PathTableHandler struct {
	Handler string `json:"handler"`
	// Exact maps a path to the named route that serves it.
	Exact map[string]string `json:"exact,omitempty"`
	// Regex lists regular expressions (ingress-nginx use-regex paths), tried in order after
	// Exact and before Prefix.
	Regex []PrefixEntry `json:"regex,omitempty"`
	// Prefix lists prefixes (without trailing slash; "" matches every path) longest first.
	Prefix []PrefixEntry `json:"prefix,omitempty"`
	// Metrics makes the handler count requests per route, labelled Host plus the path.
	Metrics bool   `json:"metrics,omitempty"`
	Host    string `json:"host,omitempty"`
}

// PrefixEntry is one Prefix path and the named route that serves it.
type PrefixEntry struct {
	Path  string `json:"path"`
	Route string `json:"route"`
}

// PathTableUnavailable is the route name of a path whose backend cannot be served: the handler
// answers it with the same 503 as unavailable().
const PathTableUnavailable = ""

// PathTableModule is the handler name of PathTableHandler.
const PathTableModule = "plexus_paths"

// pathTable is the host group's paths as one plexus_paths handler, or nil when it has none.
func (g *hostGroup) pathTable(opts *Options, named map[string]*Route) *PathTableHandler {
	if len(g.routes) == 0 {
		return nil
	}
	h := &PathTableHandler{Handler: PathTableModule}
	if opts.Metrics {
		h.Metrics, h.Host = true, displayHost(g.host)
	}
	for _, r := range g.routes { // already in precedence order
		name, annotated := annotatedRouteName(r, opts, named)
		if !annotated {
			name = PathTableUnavailable
			if inv, ok := backendHandler(r.backend, opts, named).(*Invoke); ok {
				name = inv.Name
			}
		}
		if r.regex {
			h.Regex = append(h.Regex, PrefixEntry{Path: nginxPathRegexp(r.key), Route: name})
			continue
		}
		if r.exact {
			if h.Exact == nil {
				h.Exact = map[string]string{}
			}
			h.Exact[r.key] = name
			continue
		}
		h.Prefix = append(h.Prefix, PrefixEntry{Path: r.key, Route: name})
	}
	sortedRegex(h.Regex)
	return h
}
