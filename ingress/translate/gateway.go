package translate

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Gateway API semantics (sigs.k8s.io/gateway-api v1.6, standard channel):
//
//   - A GatewayClass is ours when spec.controllerName is Options.GatewayControllerName; it is
//     accepted unless it names parameters (plexus-ingress has none). Gateways of accepted classes
//     are served.
//   - Every served Gateway has an address of its own: a Service in the controller's namespace
//     selecting the plexus-ingress pods, one port per distinct listener port, each targeting an
//     internal container port allocated for that Gateway and port (gateway_service.go). A proxy
//     server listens on each internal port and serves that Gateway's listeners of that port only,
//     so a route attached to one Gateway is never served at another's address, and listeners may
//     use any port. Listeners of one Gateway on one port share it and must agree on the protocol
//     (HTTP or HTTPS); a listener with the other protocol is Conflicted (ProtocolConflict). Other
//     protocols (TCP, UDP, TLS) are UnsupportedProtocol. A listener is programmed once its port
//     has an internal port (Pending before), the Gateway once its Service has an address
//     (AddressNotAssigned before). Ingress keeps the controller's own two sockets and Service.
//   - HTTPS listeners terminate TLS with their first certificateRef (a kubernetes.io/tls Secret,
//     across namespaces only when a ReferenceGrant allows it); TLS passthrough is unsupported.
//   - Listeners are isolated: a request goes to the most specific listener hostname of its
//     Gateway and port that matches its Host, and only that listener's routes serve it (404 when
//     none matches, also for a listener without routes). Inside a listener, matches are ordered
//     as the API specifies: route hostnames precise first, then wildcards longest first, then
//     none; within a hostname Exact paths, then regular expressions (longest first, an
//     implementation-specific choice), then prefixes longest first; then a method match, more
//     header matches, more query matches, the older route, rule and match order. A request that
//     no rule of its most specific hostname matches falls through to the listener's less
//     specific hostnames, then gets a 404.
//   - Backends are Services (group "", kind Service) resolved to ready endpoints like Ingress
//     backends, weighted round-robin across backendRefs; an invalid backendRef keeps its weight as
//     that share of 500s, and a rule without a usable backend answers 500, as the API requires.

// Kinds and groups the Gateway translation accepts or names.
const (
	kindGateway   = "Gateway"
	kindHTTPRoute = "HTTPRoute"
	kindService   = "Service"
	kindSecret    = "Secret"
	// httpPort and httpsPort are the well-known ports of the two schemes (redirects leave them
	// out of the Location).
	httpPort  = 80
	httpsPort = 443
)

// GatewayAPI is the outcome of analysing the Gateway API objects: what is accepted, attached
// and resolved, with the reasons the API's status conditions carry.
type GatewayAPI struct {
	// Classes are the GatewayClasses of Options.GatewayControllerName, by name.
	Classes []ClassResult
	// Gateways are the Gateways of those classes, by namespace/name.
	Gateways []GatewayResult
	// Routes are the HTTPRoutes with at least one parentRef to a served Gateway.
	Routes []RouteResult
	// BackendTLSPolicies are every BackendTLSPolicy, by namespace/name.
	BackendTLSPolicies []BackendTLSPolicyResult
}

// Verdict is one status condition's outcome before it becomes a metav1.Condition.
type Verdict struct {
	OK      bool
	Reason  string
	Message string
}

func ok(reason, msg string) Verdict  { return Verdict{OK: true, Reason: reason, Message: msg} }
func bad(reason, msg string) Verdict { return Verdict{Reason: reason, Message: msg} }

// ClassResult is one GatewayClass's analysis.
type ClassResult struct {
	Name       string
	Generation int64
	Accepted   Verdict
}

// GatewayResult is one Gateway's analysis.
type GatewayResult struct {
	Key        types.NamespacedName
	Generation int64
	// Accepted is false when no listener is accepted or spec.addresses asks for an address
	// (gateway_addresses.go).
	Accepted  Verdict
	Listeners []ListenerResult
	// Service is the name of the Gateway's Service (GatewayServiceName).
	Service string
	// InsecureFrontend says a client certificate validation of spec.tls.frontend allows
	// insecure fallback (gateway_frontend.go).
	InsecureFrontend bool
	// BackendClientCert is the Gateway's ResolvedRefs verdict on spec.tls.backend, nil when
	// unset (gateway_backendclient.go).
	BackendClientCert *Verdict
	// backendClient is the certificate presented to TLS backends, nil for none.
	backendClient *ClientCertificate
}

// ListenerResult is one listener's analysis.
type ListenerResult struct {
	Name           string
	Port           int32
	Hostname       string // "" when the listener has none
	SupportedKinds []gwv1.RouteGroupKind
	AttachedRoutes int32
	Accepted       Verdict
	ResolvedRefs   Verdict
	// Conflicted.OK means a conflict (the API's condition is True when conflicted).
	Conflicted Verdict
	// server is the name of the proxy server of the listener's Gateway and port, "" when the
	// listener is not accepted; tls says it terminates TLS (HTTPS).
	server string
	tls    bool
	// internalPort is the container port serving the listener's Gateway and port, 0 until the
	// Gateway's Service has allocated one.
	internalPort int32
	// certTag is the tag of an HTTPS listener's certificate.
	certTag string
	// clientAuth is an HTTPS listener's client certificate validation, nil for none.
	clientAuth *ClientAuthentication
	gw         *gwv1.Gateway
	spec       *gwv1.Listener
}

// Programmed says whether the listener carries traffic: accepted, not conflicted, with a route
// kind it serves, an internal port and, for HTTPS, a certificate (an unsupported kind next to
// HTTPRoute does not stop it from serving HTTPRoutes).
func (l *ListenerResult) Programmed() bool {
	return l.valid() && l.internalPort != 0
}

// valid is Programmed but for the internal port.
func (l *ListenerResult) valid() bool {
	return l.Accepted.OK && !l.Conflicted.OK && l.server != "" && len(l.SupportedKinds) > 0 &&
		(!l.tls || l.certTag != "")
}

// Pending says the listener is valid and waits for its Gateway's Service to allocate its port.
func (l *ListenerResult) Pending() bool { return l.valid() && l.internalPort == 0 }

// RouteResult is one HTTPRoute's analysis.
type RouteResult struct {
	Key        types.NamespacedName
	Generation int64
	Parents    []ParentResult
}

// ParentResult is the route's status towards one parentRef naming a served Gateway.
type ParentResult struct {
	Ref          gwv1.ParentReference
	Accepted     Verdict
	ResolvedRefs Verdict
	// PartiallyInvalid.OK means some rules are not served as written (an unsupported filter or
	// match); those rules answer 500.
	PartiallyInvalid Verdict
}

// attachment is a route accepted on a programmed listener: the unit the routes are built from.
type attachment struct {
	route     *gwv1.HTTPRoute
	listener  *ListenerResult
	hostnames []string // effective hostnames ("" = any)
}

// gatewayAnalysis is GatewayAPI plus what the route building needs.
type gatewayAnalysis struct {
	api         GatewayAPI
	attachments []attachment
	grants      referenceGrants
	btls        backendTLSIndex
}

// analyzeGateways validates classes, gateways, listeners and route attachments.
func analyzeGateways(in *Input, opts *Options, secrets *secretLoader, idx backendIndex) gatewayAnalysis {
	var a gatewayAnalysis
	if opts.GatewayControllerName == "" {
		return a
	}
	a.grants = newReferenceGrants(in.ReferenceGrants)
	cas := newCALoader(in.ConfigMaps)
	a.btls = analyzeBackendTLS(in.BackendTLSPolicies, cas)
	accepted := map[string]bool{}
	for i := range in.GatewayClasses {
		c := &in.GatewayClasses[i]
		if string(c.Spec.ControllerName) != opts.GatewayControllerName {
			continue
		}
		v := ok(string(gwv1.GatewayClassReasonAccepted), "served by plexus-ingress")
		if c.Spec.ParametersRef != nil {
			v = bad(string(gwv1.GatewayClassReasonInvalidParameters), "plexus-ingress takes no parameters; remove spec.parametersRef")
		}
		accepted[c.Name] = v.OK
		a.api.Classes = append(a.api.Classes, ClassResult{Name: c.Name, Generation: c.Generation, Accepted: v})
	}
	sort.Slice(a.api.Classes, func(i, j int) bool { return a.api.Classes[i].Name < a.api.Classes[j].Name })

	gws := map[types.NamespacedName]*GatewayResult{}
	ports := ReadGatewayPorts(in.Services, opts.GatewayServiceNamespace, opts.GatewayPortFirst, opts.GatewayPortLast)
	for i := range in.Gateways {
		gw := &in.Gateways[i]
		if !accepted[string(gw.Spec.GatewayClassName)] {
			continue
		}
		a.api.Gateways = append(a.api.Gateways, analyzeGateway(gw, a.grants, secrets, cas, ports))
	}
	sort.Slice(a.api.Gateways, func(i, j int) bool {
		return a.api.Gateways[i].Key.String() < a.api.Gateways[j].Key.String()
	})
	for i := range a.api.Gateways {
		gws[a.api.Gateways[i].Key] = &a.api.Gateways[i]
	}
	nsLabels := map[string]labels.Set{}
	for _, ns := range in.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	routes := make([]*gwv1.HTTPRoute, 0, len(in.HTTPRoutes))
	for i := range in.HTTPRoutes {
		routes = append(routes, &in.HTTPRoutes[i])
	}
	sort.Slice(routes, func(i, j int) bool { return olderObject(&routes[i].ObjectMeta, &routes[j].ObjectMeta) })
	for _, r := range routes {
		rr, atts := attachRoute(r, gws, nsLabels, a.grants, idx)
		if len(rr.Parents) == 0 {
			continue
		}
		a.attachments = append(a.attachments, atts...)
		a.api.Routes = append(a.api.Routes, rr)
	}
	sort.Slice(a.api.Routes, func(i, j int) bool { return a.api.Routes[i].Key.String() < a.api.Routes[j].Key.String() })
	a.api.BackendTLSPolicies = a.btls.policyAncestors(a.attachments, idx)
	return a
}

// analyzeGateway validates one Gateway's listeners; ports is the allocation read from the
// per-Gateway Services, cas the ConfigMaps client certificate validation may name.
func analyzeGateway(gw *gwv1.Gateway, grants referenceGrants, secrets *secretLoader, cas caLoader, ports PortAllocation) GatewayResult {
	key := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
	res := GatewayResult{Key: key, Generation: gw.Generation, Service: GatewayServiceName(key), InsecureFrontend: insecureFrontend(gw)}
	res.backendClient, res.BackendClientCert = backendClientCertificate(gw, grants, secrets)
	seen := map[string]string{}                // port/hostname → first listener
	protocols := map[int32]gwv1.ProtocolType{} // port → protocol of its first accepted listener
	accepted := 0
	for i := range gw.Spec.Listeners {
		l := &gw.Spec.Listeners[i]
		lr := ListenerResult{Name: string(l.Name), Port: l.Port, gw: gw, spec: l,
			Accepted:     ok(string(gwv1.ListenerReasonAccepted), "listener accepted"),
			ResolvedRefs: ok(string(gwv1.ListenerReasonResolvedRefs), "all references resolved"),
			Conflicted:   bad(string(gwv1.ListenerReasonNoConflicts), "no conflicts"),
		}
		if l.Hostname != nil {
			lr.Hostname = strings.ToLower(string(*l.Hostname))
		}
		lr.SupportedKinds, lr.ResolvedRefs = routeKinds(l)
		switch l.Protocol {
		case gwv1.HTTPProtocolType:
		case gwv1.HTTPSProtocolType:
			lr.tls = true
			lr.Accepted, lr.certTag = listenerCertificate(gw, l, grants, secrets, &lr.ResolvedRefs)
			if lr.Accepted.OK {
				lr.Accepted, lr.clientAuth = listenerClientAuth(gw, l, grants, cas, &lr.ResolvedRefs)
			}
		default:
			lr.Accepted = bad(string(gwv1.ListenerReasonUnsupportedProtocol), fmt.Sprintf("protocol %s is not supported; plexus-ingress serves HTTP and HTTPS", l.Protocol))
			lr.SupportedKinds = nil
		}
		if lr.Accepted.OK {
			lr.server = gatewayServerName(key, l.Port)
			lr.internalPort = ports[key][l.Port]
			key := fmt.Sprintf("%d/%s", l.Port, lr.Hostname)
			if p, taken := protocols[l.Port]; taken && p != l.Protocol {
				lr.Conflicted = ok(string(gwv1.ListenerReasonProtocolConflict), fmt.Sprintf("port %d already serves %s; listeners of one port share its protocol", l.Port, p))
			} else if first, dup := seen[key]; dup {
				lr.Conflicted = ok(string(gwv1.ListenerReasonHostnameConflict), fmt.Sprintf("listener %s already serves port %d with hostname %q", first, l.Port, lr.Hostname))
			} else {
				seen[key] = lr.Name
				protocols[l.Port] = l.Protocol
			}
			accepted++
		}
		res.Listeners = append(res.Listeners, lr)
	}
	switch {
	case unsupportedAddress(gw) != "":
		res.Accepted = bad(string(gwv1.GatewayReasonUnsupportedAddress), unsupportedAddress(gw))
	case accepted == 0:
		res.Accepted = bad(string(gwv1.GatewayReasonListenersNotValid), "no listener is valid")
	case accepted < len(gw.Spec.Listeners):
		res.Accepted = ok(string(gwv1.GatewayReasonListenersNotValid), "some listeners are not valid; see their conditions")
	default:
		res.Accepted = ok(string(gwv1.GatewayReasonAccepted), "all listeners accepted")
	}
	return res
}

// gatewayServerName names the proxy server of one Gateway's listeners on one port.
func gatewayServerName(gw types.NamespacedName, port int32) string {
	return fmt.Sprintf("gateway/%s/%s/%d", gw.Namespace, gw.Name, port)
}

// routeKinds returns the listener's supported route kinds: HTTPRoute, the only kind served,
// when allowedRoutes.kinds is empty or names it; a kind not served makes ResolvedRefs false.
func routeKinds(l *gwv1.Listener) ([]gwv1.RouteGroupKind, Verdict) {
	group := gwv1.Group(gwv1.GroupName)
	httpRoute := gwv1.RouteGroupKind{Group: &group, Kind: kindHTTPRoute}
	v := ok(string(gwv1.ListenerReasonResolvedRefs), "all references resolved")
	if l.AllowedRoutes == nil || len(l.AllowedRoutes.Kinds) == 0 {
		return []gwv1.RouteGroupKind{httpRoute}, v
	}
	var out []gwv1.RouteGroupKind
	for _, k := range l.AllowedRoutes.Kinds {
		g := gwv1.GroupName
		if k.Group != nil {
			g = string(*k.Group)
		}
		if g == gwv1.GroupName && k.Kind == kindHTTPRoute {
			if len(out) == 0 {
				out = append(out, httpRoute)
			}
			continue
		}
		v = bad(string(gwv1.ListenerReasonInvalidRouteKinds), fmt.Sprintf("route kind %s/%s is not supported; only HTTPRoute", g, k.Kind))
	}
	return out, v
}

// listenerCertificate checks an HTTPS listener's TLS settings and loads its certificate.
func listenerCertificate(gw *gwv1.Gateway, l *gwv1.Listener, grants referenceGrants, secrets *secretLoader, refs *Verdict) (Verdict, string) {
	accepted := ok(string(gwv1.ListenerReasonAccepted), "listener accepted")
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		*refs = bad(string(gwv1.ListenerReasonInvalidCertificateRef), "an HTTPS listener needs tls.certificateRefs")
		return accepted, ""
	}
	if l.TLS.Mode != nil && *l.TLS.Mode != gwv1.TLSModeTerminate {
		return bad(string(gwv1.ListenerReasonUnsupportedValue), "tls.mode Passthrough is not supported on HTTPS listeners"), ""
	}
	ref := l.TLS.CertificateRefs[0]
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != kindSecret) {
		*refs = bad(string(gwv1.ListenerReasonInvalidCertificateRef), "certificateRefs must name Secrets")
		return accepted, ""
	}
	ns := gw.Namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if ns != gw.Namespace && !grants.allow(gwv1.GroupName, kindGateway, gw.Namespace, "", kindSecret, ns, string(ref.Name)) {
		*refs = bad(string(gwv1.ListenerReasonRefNotPermitted), fmt.Sprintf("no ReferenceGrant in namespace %s allows Gateways of %s to use Secret %s", ns, gw.Namespace, ref.Name))
		return accepted, ""
	}
	tag, reason, msg := secrets.load(types.NamespacedName{Namespace: ns, Name: string(ref.Name)})
	if reason != "" {
		*refs = bad(string(gwv1.ListenerReasonInvalidCertificateRef), msg)
		return accepted, ""
	}
	return accepted, tag
}

// olderObject orders objects by creationTimestamp, then namespace, then name: the API's
// tie-breaker for conflicting routes.
func olderObject(a, b *metav1.ObjectMeta) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// referenceGrants indexes ReferenceGrants by the namespace they live in (the target namespace).
type referenceGrants map[string][]*gwv1.ReferenceGrant

func newReferenceGrants(list []gwv1.ReferenceGrant) referenceGrants {
	g := referenceGrants{}
	for i := range list {
		g[list[i].Namespace] = append(g[list[i].Namespace], &list[i])
	}
	return g
}

// allow says whether a ReferenceGrant in toNS lets objects of fromGroup/fromKind in fromNS refer
// to the toGroup/toKind object toName.
func (g referenceGrants) allow(fromGroup, fromKind, fromNS, toGroup, toKind, toNS, toName string) bool {
	for _, rg := range g[toNS] {
		from := false
		for _, f := range rg.Spec.From {
			if string(f.Group) == fromGroup && string(f.Kind) == fromKind && string(f.Namespace) == fromNS {
				from = true
			}
		}
		if !from {
			continue
		}
		for _, t := range rg.Spec.To {
			if string(t.Group) == toGroup && string(t.Kind) == toKind && (t.Name == nil || string(*t.Name) == toName) {
				return true
			}
		}
	}
	return false
}
