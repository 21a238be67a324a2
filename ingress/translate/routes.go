package translate

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// pathRoute is one Ingress path that won its place in the routing table.
type pathRoute struct {
	exact bool
	// key is the path compared for conflicts and ordering: Exact paths as written, Prefix paths
	// without trailing slashes ("" for "/", which matches everything).
	key     string
	backend resolvedBackend
	// regex: key is a regular expression (ingress-nginx use-regex or rewrite-target); ann are
	// the Ingress's annotations (nil: none).
	regex bool
	ann   *ingressAnnotations
}

// hostGroup is every path of one host ("" for rules without host).
type hostGroup struct {
	host   string
	routes []pathRoute
}

// routingTable is the served Ingresses' rules merged across Ingresses with conflicts decided.
type routingTable struct {
	groups         map[string]*hostGroup
	defaultBackend *resolvedBackend
	routes         int
}

// buildRoutingTable merges the rules of served (oldest first) and resolves their backends.
func buildRoutingTable(served []*networkingv1.Ingress, idx backendIndex, p *problems) routingTable {
	t := routingTable{groups: map[string]*hostGroup{}}
	type claim struct {
		ing  types.NamespacedName
		path string
	}
	claims := map[string]claim{} // host \x00 kind \x00 key → first claimant
	var defaultOwner types.NamespacedName
	for _, ing := range served {
		id := types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
		ann := parseAnnotations(ing, p)
		resolve := func(b *networkingv1.IngressBackend) resolvedBackend {
			r := idx.resolve(ing.Namespace, b)
			if r.reason != "" {
				p.add(id, r.reason, r.message)
			}
			return r
		}
		if b := ing.Spec.DefaultBackend; b != nil {
			if t.defaultBackend == nil {
				r := resolve(b)
				t.defaultBackend = &r
				defaultOwner = id
			} else {
				p.add(id, ReasonDefaultBackend, fmt.Sprintf("the default backend is already set by %s; this one is ignored", defaultOwner))
			}
		}
		for _, rule := range ing.Spec.Rules {
			host := strings.ToLower(rule.Host)
			g := t.group(host)
			if rule.HTTP == nil {
				continue
			}
			for i := range rule.HTTP.Paths {
				hp := &rule.HTTP.Paths[i]
				exact := hp.PathType != nil && *hp.PathType == networkingv1.PathTypeExact
				if !strings.HasPrefix(hp.Path, "/") {
					p.add(id, ReasonInvalidPath, fmt.Sprintf("path %q of host %q does not start with /; it is ignored", hp.Path, rule.Host))
					continue
				}
				key := hp.Path
				kind := "Exact"
				regex := !exact && ann != nil && (ann.useRegex || ann.rewriteTarget != "")
				switch {
				case regex:
					kind = "Regex"
				case !exact:
					key = strings.TrimRight(hp.Path, "/")
					kind = "Prefix"
				}
				ck := host + "\x00" + kind + "\x00" + key
				if prev, ok := claims[ck]; ok {
					p.add(id, ReasonPathConflict, fmt.Sprintf("%s path %q of host %q is already served by %s (path %q); this one is ignored",
						kind, hp.Path, displayHost(host), prev.ing, prev.path))
					continue
				}
				claims[ck] = claim{ing: id, path: hp.Path}
				g.routes = append(g.routes, pathRoute{exact: exact, key: key, backend: resolve(&hp.Backend), regex: regex, ann: ann})
				t.routes++
			}
		}
	}
	for _, g := range t.groups {
		sort.Slice(g.routes, func(i, j int) bool { return morePrecise(g.routes[i], g.routes[j]) })
	}
	return t
}

// group returns the host's group, creating it.
func (t *routingTable) group(host string) *hostGroup {
	g, ok := t.groups[host]
	if !ok {
		g = &hostGroup{host: host}
		t.groups[host] = g
	}
	return g
}

// morePrecise orders a host's paths so the first one that matches a request is the one the
// Ingress API picks: an Exact match is never shorter than a Prefix match of the same request, so
// Exact paths come first, then Prefix paths longest first; ties by path for a stable order.
func morePrecise(a, b pathRoute) bool {
	if a.exact != b.exact {
		return a.exact
	}
	if len(a.key) != len(b.key) {
		return len(a.key) > len(b.key)
	}
	return a.key < b.key
}

// orderedHosts lists the groups as requests try them: precise hosts, then wildcard hosts, then
// the rules without host.
func (t *routingTable) orderedHosts() []string {
	hosts := sortedKeys(t.groups)
	rank := func(h string) int {
		switch {
		case h == "":
			return 2
		case strings.HasPrefix(h, "*."):
			return 1
		}
		return 0
	}
	sort.SliceStable(hosts, func(i, j int) bool { return rank(hosts[i]) < rank(hosts[j]) })
	return hosts
}

// pathMatcher is the matcher of a path route; nil matches every path. Caddy's path matcher
// compares case-insensitively and treats * as a glob, while Ingress paths are case-sensitive
// literals, so the match is an anchored regular expression over the cleaned request path.
func (r pathRoute) pathMatcher() *Regexp {
	q := regexp.QuoteMeta(r.key)
	switch {
	case r.exact:
		return &Regexp{Pattern: "^" + q + "$"}
	case r.key == "":
		return nil
	}
	return &Regexp{Pattern: "^" + q + "(?:/.*)?$"}
}

// displayHost names a host in messages.
func displayHost(host string) string {
	if host == "" {
		return "*"
	}
	return host
}
