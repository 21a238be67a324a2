package translate

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestGatewayBackendClientCertificate covers spec.tls.backend.clientCertificateRef: the Gateway
// that names a usable Secret presents it to its TLS backends (and only those: a cleartext
// backend has no TLS to present it on) with ResolvedRefs True; a Secret in another namespace
// without a ReferenceGrant is RefNotPermitted, a missing one InvalidClientCertificateRef, and a
// Gateway without the field has no ResolvedRefs condition. Two Gateways sharing a backend get
// a proxy each.
func TestGatewayBackendClientCertificate(t *testing.T) {
	client, ca := testCert(t, "gateway-client.test"), testCert(t, "backend-ca.test")
	in := gatewayInput(nil)
	in.Services = append(in.Services, service("shop", "secure", "btls", 443, 8443))
	in.EndpointSlices = append(in.EndpointSlices, slice("shop", "secure", "secure-1", "btls", 8443, endpoint{"10.2.0.1", true}))
	in.ConfigMaps = []corev1.ConfigMap{caConfigMap("shop", "backend-ca", string(ca.CertPEM))}
	in.BackendTLSPolicies = []gwv1.BackendTLSPolicy{backendTLSPolicy("secure", 1, "secure", "",
		gwv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs(kindConfigMap, "backend-ca"), Hostname: "abc.example.com"})}
	in.Secrets = []corev1.Secret{tlsSecret("shop", "client", client.CertPEM, client.KeyPEM), tlsSecret("infra", "client", client.CertPEM, client.KeyPEM)}
	withClient := func(name, secretNS, secret string) gwv1.Gateway {
		g := gateway("shop", name, httpListener("http", ""))
		ref := gwv1.SecretObjectReference{Name: gwv1.ObjectName(secret)}
		if secretNS != "" {
			ref.Namespace = ptr(gwv1.Namespace(secretNS))
		}
		g.Spec.TLS = &gwv1.GatewayTLSConfig{Backend: &gwv1.GatewayBackendTLS{ClientCertificateRef: &ref}}
		return g
	}
	in.Gateways = []gwv1.Gateway{withClient("with-client", "", "client"), withClient("no-grant", "infra", "client"),
		withClient("missing", "", "nowhere"), gateway("shop", "plain", httpListener("http", ""))}
	var parents []gwv1.ParentReference
	for _, g := range in.Gateways {
		parents = append(parents, parent("shop", g.Name, ""))
	}
	in.HTTPRoutes = []gwv1.HTTPRoute{httpRoute("shop", "r", 0, nil, parents,
		gwv1.HTTPRouteRule{Matches: []gwv1.HTTPRouteMatch{pathMatch(gwv1.PathMatchPathPrefix, "/secure")}, BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "secure", 443, 1)}},
		gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}})}
	res := Translate(withGatewayServices(in, gwOpts), gwOpts)

	named := res.Config.Apps.HTTP.Servers[ServerHTTP].NamedRoutes
	withCert := 0
	for id, r := range named {
		rp := r.Handle[0].(*ReverseProxy)
		if rp.Transport.ClientCertificate == nil {
			continue
		}
		withCert++
		if !strings.HasPrefix(id, "client:shop/with-client:tls:") || rp.Transport.ClientCertificate.CertificatePEM != string(client.CertPEM) {
			t.Errorf("named route %s presents a client certificate", id)
		}
		// The PEMs differ from run to run: the golden file names them.
		rp.Transport.ClientCertificate = &ClientCertificate{CertificatePEM: "<certificate gateway-client.test>", KeyPEM: "<key gateway-client.test>"}
		rp.Transport.TLS.CA = &CAPool{Provider: rp.Transport.TLS.CA.Provider, TrustedCACerts: []string{"<certificate backend-ca>"}}
	}
	if withCert != 1 {
		t.Errorf("%d proxies present a client certificate, want the one of with-client's TLS backend", withCert)
	}
	for _, r := range named {
		if rp := r.Handle[0].(*ReverseProxy); rp.Transport.TLS != nil && rp.Transport.TLS.CA != nil && rp.Transport.ClientCertificate == nil {
			rp.Transport.TLS.CA = &CAPool{Provider: rp.Transport.TLS.CA.Provider, TrustedCACerts: []string{"<certificate backend-ca>"}}
		}
	}
	assertGatewayGolden(t, "gateway-backend-client-certificate", res)
	for _, g := range res.Gateway.Gateways {
		want := map[string]string{"shop/with-client": "ResolvedRefs", "shop/no-grant": "RefNotPermitted", "shop/missing": "InvalidClientCertificateRef"}[g.Key.String()]
		got := ""
		if g.BackendClientCert != nil {
			got = g.BackendClientCert.Reason
		}
		if got != want {
			t.Errorf("%s: ResolvedRefs reason %q, want %q", g.Key, got, want)
		}
	}
}
