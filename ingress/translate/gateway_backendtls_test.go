package translate

import (
	"encoding/base64"
	"encoding/pem"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func backendTLSPolicy(name string, age int, svc, section string, v gwv1.BackendTLSPolicyValidation) gwv1.BackendTLSPolicy {
	p := gwv1.BackendTLSPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Generation: 4,
		CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Minute))},
		Spec: gwv1.BackendTLSPolicySpec{TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{
			LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: kindService, Name: gwv1.ObjectName(svc)}}},
			Validation: v}}
	if section != "" {
		p.Spec.TargetRefs[0].SectionName = ptr(gwv1.SectionName(section))
	}
	return p
}

func caRefs(kind string, names ...string) []gwv1.LocalObjectReference {
	var out []gwv1.LocalObjectReference
	for _, n := range names {
		out = append(out, gwv1.LocalObjectReference{Kind: gwv1.Kind(kind), Name: gwv1.ObjectName(n)})
	}
	return out
}

// TestGatewayBackendTLSPolicy covers BackendTLSPolicy: a policy on a Service port by name and
// one on the whole Service (the port's wins for its port), the older of two conflicting
// policies, subject alternative names (the plexus_http transport), system roots, and policies
// without a usable CA (their backends answer 500, the rest of a weighted rule still serves),
// with each policy's conditions per ancestor Gateway; a Service no route uses gives no ancestor.
func TestGatewayBackendTLSPolicy(t *testing.T) {
	ca := testCert(t, "backend-ca.test")
	in := gatewayInput([]gwv1.Gateway{gateway("shop", "edge", httpListener("http", ""))})
	for _, name := range []string{"secure", "sans", "system", "broken", "kind", "unused"} {
		svc := service("shop", name, "btls", 443, 8443)
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "other", Port: 444, Protocol: corev1.ProtocolTCP})
		in.Services = append(in.Services, svc)
		es := slice("shop", name, name+"-1", "btls", 8443, endpoint{"10.2.0.1", true})
		es.Ports = append(es.Ports, slice("shop", name, "", "other", 8444).Ports...)
		in.EndpointSlices = append(in.EndpointSlices, es)
	}
	in.ConfigMaps = []corev1.ConfigMap{caConfigMap("shop", "backend-ca", string(ca.CertPEM)), caConfigMap("shop", "empty", "")}
	system := gwv1.WellKnownCACertificatesSystem
	valid := gwv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs(kindConfigMap, "backend-ca"), Hostname: "abc.example.com"}
	sans := valid
	sans.SubjectAltNames = []gwv1.SubjectAltName{{Type: gwv1.HostnameSubjectAltNameType, Hostname: "other.example.com"},
		{Type: gwv1.URISubjectAltNameType, URI: "spiffe://abc.example.com/test-identity"}}
	in.BackendTLSPolicies = []gwv1.BackendTLSPolicy{
		backendTLSPolicy("secure-port", 1, "secure", "btls", valid),
		backendTLSPolicy("secure-whole", 2, "secure", "", gwv1.BackendTLSPolicyValidation{WellKnownCACertificates: &system, Hostname: "whole.example.com"}),
		backendTLSPolicy("secure-port-newer", 3, "secure", "btls", valid),
		backendTLSPolicy("sans", 1, "sans", "", sans),
		backendTLSPolicy("system", 1, "system", "btls", gwv1.BackendTLSPolicyValidation{WellKnownCACertificates: &system, Hostname: "api.example.com"}),
		backendTLSPolicy("broken", 1, "broken", "btls", gwv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs(kindConfigMap, "nowhere", "empty"), Hostname: "abc.example.com"}),
		backendTLSPolicy("kind", 1, "kind", "btls", gwv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs("Secret", "backend-ca"), Hostname: "abc.example.com"}),
		backendTLSPolicy("unused", 1, "unused", "", valid),
	}
	to := func(svc string, port, weight int32) gwv1.HTTPBackendRef { return backendRef("", svc, port, weight) }
	prefix := func(p string) []gwv1.HTTPRouteMatch {
		return []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, p)}
	}
	in.HTTPRoutes = []gwv1.HTTPRoute{httpRoute("shop", "tls", 0, nil, []gwv1.ParentReference{parent("shop", "edge", "")},
		gwv1.HTTPRouteRule{Matches: prefix("/secure"), BackendRefs: []gwv1.HTTPBackendRef{to("secure", 443, 1)}},
		gwv1.HTTPRouteRule{Matches: prefix("/secure-other-port"), BackendRefs: []gwv1.HTTPBackendRef{to("secure", 444, 1)}},
		gwv1.HTTPRouteRule{Matches: prefix("/sans"), BackendRefs: []gwv1.HTTPBackendRef{to("sans", 443, 1)}},
		gwv1.HTTPRouteRule{Matches: prefix("/mixed"), BackendRefs: []gwv1.HTTPBackendRef{to("system", 443, 1), to("web", 80, 1), to("broken", 443, 2)}},
		gwv1.HTTPRouteRule{Matches: prefix("/kind"), BackendRefs: []gwv1.HTTPBackendRef{to("kind", 443, 1)}},
	)}
	res := Translate(withGatewayServices(in, gwOpts), gwOpts)

	b, _ := pem.Decode(ca.CertPEM)
	der := base64.StdEncoding.EncodeToString(b.Bytes)
	for _, r := range res.Config.Apps.HTTP.Servers[ServerHTTP].NamedRoutes {
		if rp, isProxy := r.Handle[0].(*ReverseProxy); isProxy && rp.Transport.TLS != nil && rp.Transport.TLS.CA != nil {
			for i, c := range rp.Transport.TLS.CA.TrustedCACerts {
				if c == der {
					rp.Transport.TLS.CA.TrustedCACerts[i] = "<certificate backend-ca>"
				}
			}
		}
	}
	v := assertBackendTLSGolden(t, res)
	for name, want := range map[string][2]string{
		"secure-port":       {"Accepted", "ResolvedRefs"},
		"secure-whole":      {"Accepted", "ResolvedRefs"},
		"secure-port-newer": {"Conflicted", "ResolvedRefs"},
		"sans":              {"Accepted", "ResolvedRefs"},
		"system":            {"Accepted", "ResolvedRefs"},
		"broken":            {"NoValidCACertificate", "InvalidCACertificateRef"},
		"kind":              {"NoValidCACertificate", "InvalidKind"},
	} {
		anc := v["shop/"+name]
		if len(anc) != 1 || anc[0].AncestorRef.Name != "edge" || anc[0].Conditions[0].Reason != want[0] || anc[0].Conditions[1].Reason != want[1] {
			t.Errorf("%s: ancestors %+v, want edge with %v", name, anc, want)
		}
	}
	if anc := v["shop/unused"]; len(anc) != 0 {
		t.Errorf("unused: ancestors %+v, want none", anc)
	}
}

// assertBackendTLSGolden compares the translation with its golden file and returns the
// policies' ancestors by namespace/name.
func assertBackendTLSGolden(t *testing.T, res Result) map[string][]gwv1.PolicyAncestorStatus {
	t.Helper()
	assertGatewayGolden(t, "gateway-backend-tls", res)
	out := map[string][]gwv1.PolicyAncestorStatus{}
	for _, p := range res.Gateway.BackendTLSPolicies {
		out[p.Key.String()] = BackendTLSPolicyAncestors(p, gatewayController)
	}
	return out
}
