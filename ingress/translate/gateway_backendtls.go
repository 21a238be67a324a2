package translate

// BackendTLSPolicy: TLS from plexus-ingress to the Services of Gateway routes.
//
//   - A policy targets Services of its own namespace (group "", kind Service), a whole Service or
//     one port by name (sectionName). For a backendRef's Service port, the policy naming that port
//     applies, else the one naming the Service without a port. When several policies target the
//     same Service and port (or the same whole Service), the oldest applies (then the first by
//     namespace/name) and the others are Accepted=False Conflicted.
//   - The applying policy makes the backend's connections TLS with its hostname as the server
//     name (SNI), verified against its CA certificates (ConfigMaps of its namespace, key ca.crt)
//     or, with wellKnownCACertificates System, the system's roots; the certificate must match
//     the hostname, or, when subjectAltNames are set, one of them (DNS names or URIs) instead.
//   - A policy whose references cannot all be used has ResolvedRefs=False (InvalidKind for a kind
//     other than ConfigMap, InvalidCACertificateRef for a ConfigMap missing or without a
//     certificate); with none usable it is Accepted=False NoValidCACertificate, and requests to its
//     backends get 500 instead of going out without the verification it asks for. An unknown
//     wellKnownCACertificates value is Accepted=False Invalid, with the same effect.
//   - A policy's status has one ancestor per Gateway whose attached routes reference a Service
//     (and port) it targets.

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// BackendTLSPolicyResult is one BackendTLSPolicy's analysis.
type BackendTLSPolicyResult struct {
	Key        types.NamespacedName
	Generation int64
	// Accepted and ResolvedRefs are the conditions of every ancestor.
	Accepted     Verdict
	ResolvedRefs Verdict
	// Ancestors are the Gateways whose routes use a Service port the policy targets, sorted.
	Ancestors []types.NamespacedName
}

// backendTLSTarget is what a policy applies to: a Service and one of its port names, "" for
// every port.
type backendTLSTarget struct {
	svc     types.NamespacedName
	section string
}

// backendTLS is a policy's effect on its backends: the transport TLS, nil when the policy is
// not usable (its backends answer 500), and the subject alternative names to verify instead of
// the hostname (nil for none).
type backendTLS struct {
	policy types.NamespacedName
	tls    *TransportTLS
	sans   *SANVerification
}

// backendTLSIndex holds the applying policy of each target and the policies' results.
type backendTLSIndex struct {
	applies map[backendTLSTarget]*backendTLS
	// targets are every policy's targets (conflicted ones too), for the ancestors.
	targets map[types.NamespacedName][]backendTLSTarget
	results map[types.NamespacedName]*BackendTLSPolicyResult
}

// analyzeBackendTLS resolves the policies (conflicts, references) without their ancestors.
func analyzeBackendTLS(policies []gwv1.BackendTLSPolicy, cas caLoader) backendTLSIndex {
	x := backendTLSIndex{applies: map[backendTLSTarget]*backendTLS{}, targets: map[types.NamespacedName][]backendTLSTarget{},
		results: map[types.NamespacedName]*BackendTLSPolicyResult{}}
	ordered := make([]*gwv1.BackendTLSPolicy, 0, len(policies))
	for i := range policies {
		ordered = append(ordered, &policies[i])
	}
	sort.Slice(ordered, func(i, j int) bool { return olderObject(&ordered[i].ObjectMeta, &ordered[j].ObjectMeta) })
	for _, p := range ordered {
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
		res := &BackendTLSPolicyResult{Key: key, Generation: p.Generation}
		var effect *backendTLS
		res.Accepted, res.ResolvedRefs, effect = policyTLS(p, cas)
		effect.policy = key
		var conflicts []string
		for _, t := range p.Spec.TargetRefs {
			if t.Group != "" || t.Kind != kindService {
				continue // the CRD admits Services only
			}
			target := backendTLSTarget{svc: types.NamespacedName{Namespace: p.Namespace, Name: string(t.Name)}}
			if t.SectionName != nil {
				target.section = string(*t.SectionName)
			}
			x.targets[key] = append(x.targets[key], target)
			if first, taken := x.applies[target]; taken {
				conflicts = append(conflicts, fmt.Sprintf("%s (policy %s applies, being older)", targetString(target), first.policy.Name))
				continue
			}
			x.applies[target] = effect
		}
		if len(conflicts) > 0 {
			res.Accepted = bad(string(gwv1.PolicyReasonConflicted), "another policy targets the same Service port: "+strings.Join(conflicts, ", "))
		}
		x.results[key] = res
	}
	return x
}

func targetString(t backendTLSTarget) string {
	if t.section == "" {
		return "Service " + t.svc.Name
	}
	return "Service " + t.svc.Name + " port " + t.section
}

// policyTLS checks a policy's validation and builds its effect (tls nil when unusable).
func policyTLS(p *gwv1.BackendTLSPolicy, cas caLoader) (accepted, refs Verdict, effect *backendTLS) {
	accepted = ok(string(gwv1.PolicyReasonAccepted), "policy accepted")
	refs = ok(string(gwv1.BackendTLSPolicyReasonResolvedRefs), "all references resolved")
	v := &p.Spec.Validation
	effect = &backendTLS{}
	tls := &TransportTLS{ServerName: string(v.Hostname)}
	if len(v.SubjectAltNames) > 0 {
		effect.sans = &SANVerification{}
		for _, san := range v.SubjectAltNames {
			switch san.Type {
			case gwv1.HostnameSubjectAltNameType:
				effect.sans.DNSNames = append(effect.sans.DNSNames, string(san.Hostname))
			case gwv1.URISubjectAltNameType:
				effect.sans.URIs = append(effect.sans.URIs, string(san.URI))
			}
		}
	}
	if len(v.CACertificateRefs) == 0 {
		if v.WellKnownCACertificates == nil || *v.WellKnownCACertificates != gwv1.WellKnownCACertificatesSystem {
			return bad(string(gwv1.PolicyReasonInvalid), "validation needs caCertificateRefs or wellKnownCACertificates: System (the only well-known set)"), refs, effect
		}
		effect.tls = tls // the system's roots: Caddy's default
		return accepted, refs, effect
	}
	var trusted []string
	for i, ref := range v.CACertificateRefs {
		if ref.Group != "" || ref.Kind != kindConfigMap {
			if refs.OK {
				refs = bad(string(gwv1.BackendTLSPolicyReasonInvalidKind), fmt.Sprintf("caCertificateRefs[%d]: %s %s is not supported; CA certificates come from ConfigMaps (key %s)", i, groupKind(ref.Group, ref.Kind), ref.Name, caCertKey))
			}
			continue
		}
		certs, err := cas.load(types.NamespacedName{Namespace: p.Namespace, Name: string(ref.Name)})
		if err != nil {
			if refs.OK {
				refs = bad(string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("caCertificateRefs[%d]: %v", i, err))
			}
			continue
		}
		trusted = append(trusted, certs...)
	}
	if len(trusted) == 0 {
		return bad(string(gwv1.BackendTLSPolicyReasonNoValidCACertificate), "no caCertificateRef is usable; requests to the targeted backends get 500"), refs, effect
	}
	tls.CA = &CAPool{Provider: "inline", TrustedCACerts: trusted}
	effect.tls = tls
	return accepted, refs, effect
}

// forBackend returns the policy applying to port (by number) of Service key, nil for none.
func (x backendTLSIndex) forBackend(idx backendIndex, key types.NamespacedName, port int32) *backendTLS {
	if len(x.applies) == 0 {
		return nil
	}
	if svc, found := idx.services[key]; found {
		for _, p := range svc.Spec.Ports {
			if p.Port == port && p.Name != "" {
				if t, found := x.applies[backendTLSTarget{svc: key, section: p.Name}]; found {
					return t
				}
			}
		}
	}
	return x.applies[backendTLSTarget{svc: key}]
}

// targetsBackend says whether the policy targets port (by number) of Service key.
func (x backendTLSIndex) targetsBackend(idx backendIndex, policy, key types.NamespacedName, port int32) bool {
	for _, t := range x.targets[policy] {
		if t.svc != key {
			continue
		}
		if t.section == "" {
			return true
		}
		if svc, found := idx.services[key]; found {
			for _, p := range svc.Spec.Ports {
				if p.Port == port && p.Name == t.section {
					return true
				}
			}
		}
	}
	return false
}

// policyAncestors fills every policy's ancestors: the Gateways of the attachments whose route
// rules reference a Service port the policy targets, and returns the results sorted.
func (x backendTLSIndex) policyAncestors(atts []attachment, idx backendIndex) []BackendTLSPolicyResult {
	if len(x.results) == 0 {
		return nil
	}
	ancestors := map[types.NamespacedName]map[types.NamespacedName]bool{}
	for _, a := range atts {
		gw := types.NamespacedName{Namespace: a.listener.gw.Namespace, Name: a.listener.gw.Name}
		for _, rule := range a.route.Spec.Rules {
			for _, ref := range rule.BackendRefs {
				if ref.Port == nil || (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != kindService) {
					continue
				}
				ns := a.route.Namespace
				if ref.Namespace != nil {
					ns = string(*ref.Namespace)
				}
				key := types.NamespacedName{Namespace: ns, Name: string(ref.Name)}
				for policy := range x.targets {
					if x.targetsBackend(idx, policy, key, *ref.Port) {
						if ancestors[policy] == nil {
							ancestors[policy] = map[types.NamespacedName]bool{}
						}
						ancestors[policy][gw] = true
					}
				}
			}
		}
	}
	out := make([]BackendTLSPolicyResult, 0, len(x.results))
	for key, r := range x.results {
		for gw := range ancestors[key] {
			r.Ancestors = append(r.Ancestors, gw)
		}
		sort.Slice(r.Ancestors, func(i, j int) bool { return r.Ancestors[i].String() < r.Ancestors[j].String() })
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// maxPolicyAncestors is the API's limit of status.ancestors entries.
const maxPolicyAncestors = 16

// BackendTLSPolicyAncestors are this controller's entries of a BackendTLSPolicy's
// status.ancestors: one per ancestor Gateway (at most the API's 16) with Accepted and
// ResolvedRefs.
func BackendTLSPolicyAncestors(r BackendTLSPolicyResult, controllerName string) []gwv1.PolicyAncestorStatus {
	out := make([]gwv1.PolicyAncestorStatus, 0, len(r.Ancestors))
	group, kind := gwv1.Group(gwv1.GroupName), gwv1.Kind(kindGateway)
	for i, gw := range r.Ancestors {
		if i == maxPolicyAncestors {
			break
		}
		ns := gwv1.Namespace(gw.Namespace)
		out = append(out, gwv1.PolicyAncestorStatus{
			AncestorRef:    gwv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: gwv1.ObjectName(gw.Name)},
			ControllerName: gwv1.GatewayController(controllerName),
			Conditions: []metav1.Condition{
				condition(string(gwv1.PolicyConditionAccepted), r.Accepted, r.Generation),
				condition(string(gwv1.BackendTLSPolicyConditionResolvedRefs), r.ResolvedRefs, r.Generation),
			},
		})
	}
	return out
}

// MergePolicyAncestors replaces this controller's entries of status.ancestors by ours, keeping
// other controllers' entries and transition times; it returns the result and whether it changed.
func MergePolicyAncestors(existing, ours []gwv1.PolicyAncestorStatus, controllerName string, now metav1.Time) ([]gwv1.PolicyAncestorStatus, bool) {
	return mergeControllerEntries(existing, ours, controllerName, now,
		func(e *gwv1.PolicyAncestorStatus) (string, any, *[]metav1.Condition) {
			return string(e.ControllerName), e.AncestorRef, &e.Conditions
		})
}

// SANVerification is the subject alternative names a backend's certificate must have one of,
// verified by plexus-ingress's transport "plexus_http" (ingress/proxy/transport.go) instead of the
// server name.
type SANVerification struct {
	DNSNames []string `json:"dns_names,omitempty"`
	URIs     []string `json:"uris,omitempty"`
}

// withBackendTLS applies the BackendTLSPolicy of port (by number) of Service key to rb; false
// when that policy is not usable: the backend must then fail rather than go without TLS.
func (b *ruleBuilder) withBackendTLS(rb *resolvedBackend, key types.NamespacedName, port int32) bool {
	bt := b.btls.forBackend(b.idx, key, port)
	if bt == nil {
		return true
	}
	if bt.tls == nil {
		return false
	}
	rb.tls = bt
	return true
}

// withBackendTLS makes tr speak TLS as the policy says, through plexus-ingress's transport
// plexus_http: unlike Caddy's, it leaves the request's Host as the route made it (Caddy's sets
// it to the upstream's address for TLS upstreams; the policy's hostname is the server name
// only), verifies subject alternative names instead of the server name when the policy lists
// them, and presents the Gateway's client certificate (client, nil for none).
func withBackendTLS(tr *Transport, bt *backendTLS, client *gatewayClient) {
	tls := *bt.tls
	tr.TLS = &tls
	tr.Protocol = TransportPlexusHTTP
	tr.VerifySubjectAltNames = bt.sans
	if client != nil {
		tr.ClientCertificate = client.cert
	}
}

// gatewayClient is a Gateway's certificate towards TLS backends.
type gatewayClient struct {
	gw   types.NamespacedName
	cert *ClientCertificate
}

// TransportPlexusHTTP is the Protocol of plexus-ingress's HTTP transport (ingress/proxy/transport.go):
// Caddy's, plus verification of an upstream certificate's subject alternative names and a client
// certificate given in the config.
const TransportPlexusHTTP = "plexus_http"
