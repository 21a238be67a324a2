package proxy

import (
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// rawTable is what the raw path knows of one Caddy server's routes: which host routes are an
// Ingress host's path table (plexus_paths) and which named routes are a plain FastProxy. A
// request goes the raw way only when the table can tell, exactly as Caddy's route list would
// decide, that its route is such a path table and its path's route such a proxy; for every
// other request the table says "hand over" and Caddy decides.
type rawTable struct {
	// routes are the server's routes in order, up to the first one whose matchers the table
	// does not understand.
	routes []rawRoute
	// exact is the index of the first route of each exact host (lower case).
	exact map[string]int
	// wild are the routes with wildcard hosts, in order.
	wild []rawWild
	// proxies are the named routes that are one FastProxy serving the fast way.
	proxies map[string]*FastProxy
	// readIdle and writeIdle are the server's idle timeouts of a request body's reads and a
	// response's writes (Caddy's slow-client guard; 0: none).
	readIdle, writeIdle time.Duration
}

// rawRoute is one host route: its path table, nil when its handlers are anything else.
type rawRoute struct {
	paths *PathTable
}

// rawWild is one wildcard host pattern ("*.example.com") of route idx, split into labels.
type rawWild struct {
	labels []string
	idx    int
}

// newRawTable reads srv's provisioned routes; nil when the server has settings that change
// every request (trusted proxies, hard timeouts, minimum rates, logs, error routes) or no route
// the raw path could serve. The raw path writes at most a buffer's worth at a time, within
// any write chunk limit of Caddy's default (64 KiB).
func newRawTable(srv *caddyhttp.Server) *rawTable {
	if len(srv.TrustedProxiesRaw) > 0 || srv.ReadTimeout != 0 || srv.WriteTimeout != 0 ||
		srv.ReadMinRate != 0 || srv.WriteMinRate != 0 || (srv.MaxWriteChunk != 0 && srv.MaxWriteChunk < 2*rawWriteBuffer) || srv.Logs != nil || srv.Errors != nil || srv.Metrics != nil {
		return nil
	}
	t := &rawTable{exact: map[string]int{}, proxies: map[string]*FastProxy{},
		readIdle: time.Duration(srv.ReadIdleTimeout), writeIdle: time.Duration(srv.WriteIdleTimeout)}
	for _, r := range srv.Routes {
		hosts, ok := hostMatcher(r)
		if !ok {
			break
		}
		idx := len(t.routes)
		var rr rawRoute
		if len(r.Handlers) == 1 {
			rr.paths, _ = r.Handlers[0].(*PathTable)
		}
		t.routes = append(t.routes, rr)
		for _, h := range hosts {
			h = strings.ToLower(h)
			if strings.Contains(h, "*") {
				t.wild = append(t.wild, rawWild{labels: strings.Split(h, "."), idx: idx})
			} else if _, seen := t.exact[h]; !seen {
				t.exact[h] = idx
			}
		}
	}
	for name, r := range srv.NamedRoutes {
		if !r.Terminal || r.Group != "" || len(r.MatcherSets) > 0 || len(r.MatcherSetsRaw) > 0 || len(r.Handlers) != 1 {
			continue
		}
		if fp, ok := r.Handlers[0].(*FastProxy); ok && fp.fast {
			t.proxies[name] = fp
		}
	}
	if len(t.proxies) == 0 {
		return nil
	}
	return t
}

// hostMatcher returns the hosts of a route matched by host alone; false for a route in a
// group, without matchers, or with any other matcher (or placeholder) the table cannot judge.
func hostMatcher(r caddyhttp.Route) ([]string, bool) {
	if r.Group != "" || len(r.MatcherSets) != 1 || len(r.MatcherSets[0]) != 1 {
		return nil, false
	}
	hosts, ok := r.MatcherSets[0][0].(caddyhttp.MatchHost)
	if !ok {
		if p, isPtr := r.MatcherSets[0][0].(*caddyhttp.MatchHost); isPtr && p != nil {
			hosts, ok = *p, true
		}
	}
	if !ok {
		return nil, false
	}
	for _, h := range hosts {
		if strings.Contains(h, "{") {
			return nil, false
		}
	}
	return hosts, true
}

// route returns the path table of the first route whose hosts match host (lower case, no
// port), as Caddy's host matcher decides; nil when that route is not a path table, when no
// route matches, or when a route the table does not understand comes first.
func (t *rawTable) route(host []byte) *PathTable {
	idx, found := t.exact[string(host)]
	if !found {
		idx = len(t.routes)
	}
	for _, w := range t.wild {
		if w.idx >= idx {
			break
		}
		if wildMatch(w.labels, host) {
			idx = w.idx
			break
		}
	}
	if idx >= len(t.routes) {
		return nil
	}
	return t.routes[idx].paths
}

// wildMatch matches host label by label against a pattern whose "*" labels match any one
// label, as Caddy's host matcher.
func wildMatch(labels []string, host []byte) bool {
	for i, l := range labels {
		dot := len(host)
		for j := 0; j < len(host); j++ {
			if host[j] == '.' {
				dot = j
				break
			}
		}
		if i == len(labels)-1 {
			if dot != len(host) {
				return false
			}
		} else if dot == len(host) {
			return false
		}
		if l != "*" && l != string(host[:dot]) {
			return false
		}
		if dot < len(host) {
			host = host[dot+1:]
		} else {
			host = nil
		}
	}
	return true
}
