package translate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// The statuses of the Gateway API objects, computed from the analysis (GatewayAPI) by pure
// functions: the controller reads the objects, asks these for the status they should have and
// writes only what differs. Conditions carry the object's generation as observedGeneration;
// LastTransitionTime changes only when a condition's status does (MergeConditions).

// SupportedBundleMinor is the newest Gateway API minor version (v1.N) whose CRDs this build
// understands: sigs.k8s.io/gateway-api v1.6.
const SupportedBundleMinor = 6

// BundleVersionAnnotation is the annotation on the Gateway API CRDs that names their release.
const BundleVersionAnnotation = "gateway.networking.k8s.io/bundle-version"

func condition(t string, v Verdict, gen int64) metav1.Condition {
	s := metav1.ConditionFalse
	if v.OK {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: s, Reason: v.Reason, Message: v.Message, ObservedGeneration: gen}
}

// supportedVersion judges the installed CRDs' bundle version ("" when unknown: accepted).
func supportedVersion(bundle string) Verdict {
	if bundle == "" {
		return ok(string(gwv1.GatewayClassReasonSupportedVersion), "the Gateway API CRDs' version is unknown; assumed supported")
	}
	major, rest, _ := strings.Cut(strings.TrimPrefix(bundle, "v"), ".")
	minorStr, _, _ := strings.Cut(rest, ".")
	minor, err := strconv.Atoi(minorStr)
	if major != "1" || err != nil || minor > SupportedBundleMinor {
		return bad(string(gwv1.GatewayClassReasonUnsupportedVersion),
			fmt.Sprintf("Gateway API CRDs %s are newer than this controller supports (v1.%d)", bundle, SupportedBundleMinor))
	}
	return ok(string(gwv1.GatewayClassReasonSupportedVersion), fmt.Sprintf("Gateway API CRDs %s are supported", bundle))
}

// GatewayClassConditions are a served GatewayClass's conditions: Accepted and SupportedVersion
// (bundleVersion is the installed CRDs' BundleVersionAnnotation, "" when unknown). Unsupported
// CRDs make the class not accepted.
func GatewayClassConditions(c ClassResult, bundleVersion string) []metav1.Condition {
	sv := supportedVersion(bundleVersion)
	acc := c.Accepted
	if acc.OK && !sv.OK {
		acc = bad(string(gwv1.GatewayClassReasonUnsupportedVersion), sv.Message)
	}
	return []metav1.Condition{
		condition(string(gwv1.GatewayClassConditionStatusAccepted), acc, c.Generation),
		condition(string(gwv1.GatewayClassConditionStatusSupportedVersion), sv, c.Generation),
	}
}

// GatewayAddresses are the addresses of a Service as for Ingress status.loadBalancer:
// load-balancer addresses, else external IPs, else cluster IPs.
func GatewayAddresses(svc *corev1.Service) []gwv1.GatewayStatusAddress {
	if svc == nil {
		return nil
	}
	if out := lbAddresses(svc); len(out) > 0 {
		return out
	}
	ipType := gwv1.IPAddressType
	var out []gwv1.GatewayStatusAddress
	ips := svc.Spec.ExternalIPs
	if len(ips) == 0 {
		ips = svc.Spec.ClusterIPs
	}
	for _, ip := range ips {
		if ip != "" && ip != corev1.ClusterIPNone {
			out = append(out, gwv1.GatewayStatusAddress{Type: &ipType, Value: ip})
		}
	}
	return out
}

// lbAddresses are a Service's load-balancer addresses (IPs, else hostnames).
func lbAddresses(svc *corev1.Service) []gwv1.GatewayStatusAddress {
	ipType, hostType := gwv1.IPAddressType, gwv1.HostnameAddressType
	var out []gwv1.GatewayStatusAddress
	for _, lb := range svc.Status.LoadBalancer.Ingress {
		if lb.IP != "" {
			out = append(out, gwv1.GatewayStatusAddress{Type: &ipType, Value: lb.IP})
		} else if lb.Hostname != "" {
			out = append(out, gwv1.GatewayStatusAddress{Type: &hostType, Value: lb.Hostname})
		}
	}
	return out
}

// GatewayStatus is a served Gateway's status: addresses (those of its Service,
// GatewayAddressesOf), Accepted and Programmed, and per listener Accepted, Programmed,
// ResolvedRefs, Conflicted, supportedKinds and attachedRoutes.
func GatewayStatus(g GatewayResult, addrs []gwv1.GatewayStatusAddress) gwv1.GatewayStatus {
	st := gwv1.GatewayStatus{Addresses: addrs}
	programmed, pending := 0, 0
	for _, l := range g.Listeners {
		p := bad(string(gwv1.ListenerReasonInvalid), "the listener is not valid; see its other conditions")
		switch {
		case l.Programmed():
			p = ok(string(gwv1.ListenerReasonProgrammed), "served by plexus-ingress")
			programmed++
		case l.Pending():
			p = bad(string(gwv1.ListenerReasonPending), fmt.Sprintf("waiting for the Service %s to allocate port %d", g.Service, l.Port))
			pending++
		}
		kinds := l.SupportedKinds
		if kinds == nil {
			kinds = []gwv1.RouteGroupKind{}
		}
		st.Listeners = append(st.Listeners, gwv1.ListenerStatus{
			Name: gwv1.SectionName(l.Name), SupportedKinds: kinds, AttachedRoutes: l.AttachedRoutes,
			Conditions: []metav1.Condition{
				condition(string(gwv1.ListenerConditionAccepted), l.Accepted, g.Generation),
				condition(string(gwv1.ListenerConditionProgrammed), p, g.Generation),
				condition(string(gwv1.ListenerConditionResolvedRefs), l.ResolvedRefs, g.Generation),
				condition(string(gwv1.ListenerConditionConflicted), l.Conflicted, g.Generation),
			},
		})
	}
	prog := ok(string(gwv1.GatewayReasonProgrammed), "served by plexus-ingress")
	switch {
	case !g.Accepted.OK:
		prog = bad(string(gwv1.GatewayReasonInvalid), "the Gateway is not accepted")
	case programmed == 0 && pending > 0:
		prog = bad(string(gwv1.GatewayReasonPending), fmt.Sprintf("waiting for the Service %s to allocate the listeners' ports", g.Service))
	case programmed == 0:
		prog = bad(string(gwv1.GatewayReasonInvalid), "no listener is programmed")
	case len(addrs) == 0:
		prog = bad(string(gwv1.GatewayReasonAddressNotAssigned), fmt.Sprintf("the Service %s has no address yet", g.Service))
	}
	st.Conditions = []metav1.Condition{
		condition(string(gwv1.GatewayConditionAccepted), g.Accepted, g.Generation),
		condition(string(gwv1.GatewayConditionProgrammed), prog, g.Generation),
	}
	if v := g.BackendClientCert; v != nil {
		st.Conditions = append(st.Conditions, condition(string(gwv1.GatewayConditionResolvedRefs), *v, g.Generation))
	}
	if v := insecureFrontendCondition(g); v != nil {
		st.Conditions = append(st.Conditions, condition(string(gwv1.GatewayConditionInsecureFrontendValidationMode), *v, g.Generation))
	}
	return st
}

// RouteParentStatuses are this controller's entries of an HTTPRoute's status.parents.
func RouteParentStatuses(r RouteResult, controllerName string) []gwv1.RouteParentStatus {
	out := make([]gwv1.RouteParentStatus, 0, len(r.Parents))
	for _, p := range r.Parents {
		conds := []metav1.Condition{
			condition(string(gwv1.RouteConditionAccepted), p.Accepted, r.Generation),
			condition(string(gwv1.RouteConditionResolvedRefs), p.ResolvedRefs, r.Generation),
		}
		if p.PartiallyInvalid.OK {
			conds = append(conds, condition(string(gwv1.RouteConditionPartiallyInvalid), p.PartiallyInvalid, r.Generation))
		}
		out = append(out, gwv1.RouteParentStatus{ParentRef: p.Ref, ControllerName: gwv1.GatewayController(controllerName), Conditions: conds})
	}
	return out
}

// MergeConditions returns existing with desired applied (meta.SetStatusCondition: the
// transition time changes only with the status) and conditions not in desired removed.
func MergeConditions(existing, desired []metav1.Condition, now metav1.Time) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(desired))
	for _, d := range desired {
		if old := meta.FindStatusCondition(existing, d.Type); old != nil {
			out = append(out, *old)
		}
		d.LastTransitionTime = now
		meta.SetStatusCondition(&out, d)
	}
	return out
}

// MergeGatewayStatus applies desired onto existing keeping transition times; it returns the
// merged status and whether it differs from existing.
func MergeGatewayStatus(existing, desired gwv1.GatewayStatus, now metav1.Time) (gwv1.GatewayStatus, bool) {
	merged := desired
	merged.Conditions = MergeConditions(existing.Conditions, desired.Conditions, now)
	merged.Listeners = nil
	for _, l := range desired.Listeners {
		var old []metav1.Condition
		for _, e := range existing.Listeners {
			if e.Name == l.Name {
				old = e.Conditions
			}
		}
		l.Conditions = MergeConditions(old, l.Conditions, now)
		merged.Listeners = append(merged.Listeners, l)
	}
	merged.AttachedListenerSets = existing.AttachedListenerSets
	return merged, !equality.Semantic.DeepEqual(existing, merged)
}

// MergeRouteParents replaces this controller's entries of status.parents by ours, keeping other
// controllers' entries and transition times; it returns the result and whether it changed.
func MergeRouteParents(existing, ours []gwv1.RouteParentStatus, controllerName string, now metav1.Time) ([]gwv1.RouteParentStatus, bool) {
	return mergeControllerEntries(existing, ours, controllerName, now,
		func(e *gwv1.RouteParentStatus) (string, any, *[]metav1.Condition) {
			return string(e.ControllerName), e.ParentRef, &e.Conditions
		})
}

// mergeControllerEntries replaces controllerName's entries of a status list (route parents,
// policy ancestors) by ours, keeping other controllers' entries; each of ours keeps the
// transition times of the existing entry of this controller with the same reference. fields
// returns an entry's controller, reference and conditions. It returns the result and whether it
// changed.
func mergeControllerEntries[T any](existing, ours []T, controllerName string, now metav1.Time, fields func(*T) (string, any, *[]metav1.Condition)) ([]T, bool) {
	var out []T
	for i := range existing {
		if c, _, _ := fields(&existing[i]); c != controllerName {
			out = append(out, existing[i])
		}
	}
	for _, o := range ours {
		_, ref, conds := fields(&o)
		var old []metav1.Condition
		for i := range existing {
			c, eref, econds := fields(&existing[i])
			if c == controllerName && equality.Semantic.DeepEqual(eref, ref) {
				old = *econds
			}
		}
		*conds = MergeConditions(old, *conds, now)
		out = append(out, o)
	}
	if out == nil {
		out = []T{}
	}
	return out, !equality.Semantic.DeepEqual(existing, out) && !(len(existing) == 0 && len(out) == 0)
}

// SupportedFeatures are the Gateway API features plexus-ingress serves, for the accepted
// GatewayClasses' status.supportedFeatures (sorted, as the API requires): the core of Gateway,
// HTTPRoute and ReferenceGrant, and the extended HTTPRoute features the translation implements.
func SupportedFeatures() []gwv1.SupportedFeature {
	names := []features.FeatureName{
		features.SupportGateway, features.SupportHTTPRoute, features.SupportReferenceGrant,
		features.SupportGatewayPort8080, features.SupportGatewayHTTPListenerIsolation,
		features.SupportGatewayHTTPSListenerDetectMisdirectedRequests,
		features.SupportHTTPRouteQueryParamMatching, features.SupportHTTPRouteMethodMatching,
		features.SupportHTTPRouteResponseHeaderModification, features.SupportHTTPRouteBackendRequestHeaderModification,
		features.SupportHTTPRoutePortRedirect, features.SupportHTTPRouteSchemeRedirect, features.SupportHTTPRoutePathRedirect,
		features.SupportHTTPRoute303RedirectStatusCode, features.SupportHTTPRoute307RedirectStatusCode, features.SupportHTTPRoute308RedirectStatusCode,
		features.SupportHTTPRouteHostRewrite, features.SupportHTTPRoutePathRewrite,
		features.SupportHTTPRouteRequestMirror, features.SupportHTTPRouteRequestMultipleMirrors, features.SupportHTTPRouteRequestPercentageMirror,
		features.SupportHTTPRouteParentRefPort,
		features.SupportHTTPRouteRequestTimeout, features.SupportHTTPRouteBackendTimeout,
		// Rule names are accepted and ignored; upgrades (WebSocket) pass through the proxy;
		// appProtocol kubernetes.io/h2c backends get HTTP/2 cleartext.
		features.SupportHTTPRouteNamedRouteRule, features.SupportHTTPRouteBackendProtocolWebSocket,
		features.SupportHTTPRouteBackendProtocolH2C,
		// plexus_cors (gateway_cors.go); client certificates of spec.tls.frontend (gateway_frontend.go).
		features.SupportHTTPRouteCORS,
		features.SupportGatewayFrontendClientCertificateValidation,
		features.SupportGatewayFrontendClientCertificateValidationInsecureFallback,
		// TLS to backends (gateway_backendtls.go), subjectAltNames through plexus_http.
		features.SupportBackendTLSPolicy, features.SupportBackendTLSPolicySANValidation,
		// spec.tls.backend.clientCertificateRef (gateway_backendclient.go).
		features.SupportGatewayBackendClientCertificate,
		// spec.addresses entries without a value (gateway_addresses.go).
		features.SupportGatewayAddressEmpty,
	}
	out := make([]gwv1.SupportedFeature, 0, len(names))
	for _, n := range names {
		out = append(out, gwv1.SupportedFeature{Name: gwv1.FeatureName(n)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
