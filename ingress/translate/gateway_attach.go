package translate

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// attachRoute decides, for each parentRef of r naming a served Gateway, whether the route is
// accepted and on which listeners, and whether its backend references resolve.
func attachRoute(r *gwv1.HTTPRoute, gws map[types.NamespacedName]*GatewayResult, nsLabels map[string]labels.Set, grants referenceGrants, idx backendIndex) (RouteResult, []attachment) {
	rr := RouteResult{Key: types.NamespacedName{Namespace: r.Namespace, Name: r.Name}, Generation: r.Generation}
	var atts []attachment
	refs := routeRefsVerdict(r, grants, idx)
	partial := routePartiallyInvalid(r)
	for _, pr := range r.Spec.ParentRefs {
		if (pr.Group != nil && string(*pr.Group) != gwv1.GroupName) || (pr.Kind != nil && string(*pr.Kind) != kindGateway) {
			continue
		}
		ns := r.Namespace
		if pr.Namespace != nil {
			ns = string(*pr.Namespace)
		}
		gw, served := gws[types.NamespacedName{Namespace: ns, Name: string(pr.Name)}]
		if !served {
			continue // another controller's Gateway, or none: not ours to report on
		}
		pres := ParentResult{Ref: pr, ResolvedRefs: refs, PartiallyInvalid: partial}
		var candidates []*ListenerResult
		for i := range gw.Listeners {
			l := &gw.Listeners[i]
			if pr.SectionName != nil && string(*pr.SectionName) != l.Name {
				continue
			}
			if pr.Port != nil && *pr.Port != l.Port {
				continue
			}
			candidates = append(candidates, l)
		}
		if len(candidates) == 0 {
			pres.Accepted = bad(string(gwv1.RouteReasonNoMatchingParent), fmt.Sprintf("Gateway %s has no listener matching the parentRef's sectionName and port", gw.Key))
			rr.Parents = append(rr.Parents, pres)
			continue
		}
		var allowed []*ListenerResult
		for _, l := range candidates {
			if l.Accepted.OK && len(l.SupportedKinds) > 0 && routeNamespaceAllowed(l, r.Namespace, nsLabels) {
				allowed = append(allowed, l)
			}
		}
		if len(allowed) == 0 {
			pres.Accepted = bad(string(gwv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("no listener of Gateway %s allows HTTPRoutes from namespace %s", gw.Key, r.Namespace))
			rr.Parents = append(rr.Parents, pres)
			continue
		}
		matched := 0
		for _, l := range allowed {
			hosts := intersectHostnames(l.Hostname, r.Spec.Hostnames)
			if len(hosts) == 0 {
				continue
			}
			matched++
			l.AttachedRoutes++
			if l.Programmed() {
				atts = append(atts, attachment{route: r, listener: l, hostnames: hosts})
			}
		}
		if matched == 0 {
			pres.Accepted = bad(string(gwv1.RouteReasonNoMatchingListenerHostname), fmt.Sprintf("no hostname of the route intersects a listener hostname of Gateway %s", gw.Key))
		} else {
			pres.Accepted = ok(string(gwv1.RouteReasonAccepted), "route accepted")
		}
		rr.Parents = append(rr.Parents, pres)
	}
	return rr, atts
}

// routeNamespaceAllowed applies a listener's allowedRoutes.namespaces (default Same).
func routeNamespaceAllowed(l *ListenerResult, routeNS string, nsLabels map[string]labels.Set) bool {
	from := gwv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if ar := l.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
		if ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		sel = ar.Namespaces.Selector
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return routeNS == l.gw.Namespace
	case gwv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && s.Matches(nsLabels[routeNS])
	}
	return false
}

// intersectHostnames is the hostnames a route serves on a listener: its own hostnames that the
// listener's hostname admits (narrowed to the more specific of the two), the listener's hostname
// when the route names none, or [""] (any host) when neither names any. Empty means no match.
func intersectHostnames(listener string, route []gwv1.Hostname) []string {
	if len(route) == 0 {
		return []string{listener}
	}
	seen := map[string]bool{}
	var out []string
	for _, h := range route {
		host := strings.ToLower(string(h))
		got := ""
		switch {
		case listener == "":
			got = host
		case hostnameMatches(listener, host):
			got = host
		case hostnameMatches(host, listener):
			got = listener
		default:
			continue
		}
		if !seen[got] {
			seen[got] = true
			out = append(out, got)
		}
	}
	return out
}

// hostnameMatches says whether pattern admits host: equal, or pattern is "*.suffix" and host is
// a name (or a narrower wildcard) under suffix with at least one more label.
func hostnameMatches(pattern, host string) bool {
	if pattern == host {
		return true
	}
	suffix, isWild := strings.CutPrefix(pattern, "*")
	if !isWild {
		return false
	}
	return strings.HasSuffix(host, suffix) && len(strings.TrimPrefix(host, "*")) > len(suffix)
}

// routeRefsVerdict resolves every backendRef of r: the route's ResolvedRefs condition.
func routeRefsVerdict(r *gwv1.HTTPRoute, grants referenceGrants, idx backendIndex) Verdict {
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if v := backendRefVerdict(r.Namespace, &b.BackendObjectReference, grants, idx); !v.OK {
				return v
			}
		}
		for _, f := range rule.Filters {
			if f.RequestMirror == nil {
				continue
			}
			if v := backendRefVerdict(r.Namespace, &f.RequestMirror.BackendRef, grants, idx); !v.OK {
				return v
			}
		}
	}
	return ok(string(gwv1.RouteReasonResolvedRefs), "all references resolved")
}

// backendRefVerdict checks one backend reference: a Service (kind), permitted (ReferenceGrant
// across namespaces), existing with the port.
func backendRefVerdict(routeNS string, b *gwv1.BackendObjectReference, grants referenceGrants, idx backendIndex) Verdict {
	group, kind := "", kindService
	if b.Group != nil {
		group = string(*b.Group)
	}
	if b.Kind != nil {
		kind = string(*b.Kind)
	}
	if group != "" || kind != kindService {
		return bad(string(gwv1.RouteReasonInvalidKind), fmt.Sprintf("backend %s of kind %s/%s is not supported; only Services", b.Name, group, kind))
	}
	ns := routeNS
	if b.Namespace != nil {
		ns = string(*b.Namespace)
	}
	if ns != routeNS && !grants.allow(gwv1.GroupName, kindHTTPRoute, routeNS, "", kindService, ns, string(b.Name)) {
		return bad(string(gwv1.RouteReasonRefNotPermitted), fmt.Sprintf("no ReferenceGrant in namespace %s allows HTTPRoutes of %s to use Service %s", ns, routeNS, b.Name))
	}
	key := types.NamespacedName{Namespace: ns, Name: string(b.Name)}
	svc, found := idx.services[key]
	if !found {
		return bad(string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("service %s not found", key))
	}
	if b.Port == nil {
		return bad(string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("backend %s names no port", key))
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == *b.Port {
			return ok(string(gwv1.RouteReasonResolvedRefs), "all references resolved")
		}
	}
	return bad(string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("service %s has no port %d", key, *b.Port))
}

// routePartiallyInvalid reports rules that use what plexus-ingress does not serve (they answer 500).
func routePartiallyInvalid(r *gwv1.HTTPRoute) Verdict {
	for i, rule := range r.Spec.Rules {
		if msg := unsupportedInRule(&rule); msg != "" {
			return ok(string(gwv1.RouteReasonUnsupportedValue), fmt.Sprintf("rule %d: %s; it answers 500", i, msg))
		}
	}
	return bad(string(gwv1.RouteReasonAccepted), "every rule is served as written")
}

// resolveServicePort resolves a Service backend by port number, as an Ingress backend would be.
func (idx backendIndex) resolveServicePort(key types.NamespacedName, port int32) resolvedBackend {
	return idx.resolve(key.Namespace, &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: key.Name, Port: networkingv1.ServiceBackendPort{Number: port}}})
}
