package translate

import (
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func caConfigMap(ns, name string, pemData string) corev1.ConfigMap {
	return corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string]string{caCertKey: pemData}}
}

func caRef(kind, ns, name string) gwv1.ObjectReference {
	r := gwv1.ObjectReference{Kind: gwv1.Kind(kind), Name: gwv1.ObjectName(name)}
	if ns != "" {
		r.Namespace = ptr(gwv1.Namespace(ns))
	}
	return r
}

func validation(mode gwv1.FrontendValidationModeType, refs ...gwv1.ObjectReference) *gwv1.FrontendTLSValidation {
	return &gwv1.FrontendTLSValidation{CACertificateRefs: refs, Mode: mode}
}

func perPort(port int32, v *gwv1.FrontendTLSValidation) gwv1.TLSPortConfig {
	return gwv1.TLSPortConfig{Port: port, TLS: gwv1.TLSConfig{Validation: v}}
}

// TestGatewayFrontendValidation covers spec.tls.frontend: the default validation on port 443,
// per-port overrides (AllowInsecureFallback; an entry without validation turns it off), every
// kind of bad reference with the listener conditions the API names, a partly bad list (still
// served with the good CA), a cross-namespace ConfigMap with and without a ReferenceGrant, an
// HTTP listener untouched by a per-port entry for its port, and the Gateway's
// InsecureFrontendValidationMode condition.
func TestGatewayFrontendValidation(t *testing.T) {
	shop := testCert(t, "shop.example.com")
	ca1, ca2 := testCert(t, "client-ca-1.test"), testCert(t, "client-ca-2.test")
	in := gatewayInput(nil)
	in.Secrets = []corev1.Secret{tlsSecret("shop", "shop-cert", shop.CertPEM, shop.KeyPEM)}
	in.ConfigMaps = []corev1.ConfigMap{
		caConfigMap("shop", "ca-1", string(ca1.CertPEM)),
		caConfigMap("shop", "ca-both", string(ca1.CertPEM)+string(ca2.CertPEM)),
		caConfigMap("shop", "no-pem", "not a certificate"),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "no-key"}, Data: map[string]string{"other": string(ca1.CertPEM)}},
		caConfigMap("infra", "ca-2", string(ca2.CertPEM)),
		caConfigMap("guest", "ca-2", string(ca2.CertPEM)),
	}
	in.ReferenceGrants = []gwv1.ReferenceGrant{grant("infra", kindGateway, "shop", kindConfigMap)}
	listener := func(name string, port int32, host string) gwv1.Listener {
		l := httpsListener(name, host, "", "shop-cert")
		l.Port = gwv1.PortNumber(port)
		return l
	}
	edge := gateway("shop", "edge",
		listener("https", 443, ""), listener("insecure", 8443, "insecure.example.com"), listener("off", 9443, ""),
		listener("missing", 7443, "missing.example.com"), listener("kind", 6443, "kind.example.com"),
		listener("no-grant", 5443, "no-grant.example.com"), listener("granted", 4443, "granted.example.com"),
		listener("partly", 3443, "partly.example.com"), listener("no-pem", 2443, "no-pem.example.com"),
		httpListener("http", ""))
	edge.Spec.TLS = &gwv1.GatewayTLSConfig{Frontend: &gwv1.FrontendTLSConfig{
		Default: gwv1.TLSConfig{Validation: validation("", caRef(kindConfigMap, "", "ca-1"))},
		PerPort: []gwv1.TLSPortConfig{
			perPort(8443, validation(gwv1.AllowInsecureFallback, caRef(kindConfigMap, "", "ca-both"))),
			perPort(9443, nil),
			perPort(7443, validation(gwv1.AllowValidOnly, caRef(kindConfigMap, "", "nowhere"))),
			perPort(6443, validation("", caRef(kindService, "", "web"))),
			perPort(5443, validation("", caRef(kindConfigMap, "guest", "ca-2"))),
			perPort(4443, validation("", caRef(kindConfigMap, "infra", "ca-2"))),
			perPort(3443, validation("", caRef(kindConfigMap, "", "no-key"), caRef(kindConfigMap, "", "ca-1"))),
			perPort(2443, validation("", caRef(kindConfigMap, "", "no-pem"))),
			perPort(80, validation("", caRef(kindConfigMap, "", "nowhere"))),
		}}}
	plain := gateway("shop", "plain", listener("https", 443, ""))
	in.Gateways = []gwv1.Gateway{edge, plain}
	in.HTTPRoutes = []gwv1.HTTPRoute{httpRoute("shop", "site", 0, nil, []gwv1.ParentReference{parent("shop", "edge", ""), parent("shop", "plain", "")},
		gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}})}
	res := Translate(withGatewayServices(in, gwOpts), gwOpts)

	// The CAs in the golden file by name: the test certificates differ from run to run.
	names := map[string]string{}
	for name, c := range map[string]PEMPair{"ca-1": ca1, "ca-2": ca2} {
		b, _ := pem.Decode(c.CertPEM)
		names[base64.StdEncoding.EncodeToString(b.Bytes)] = "<certificate " + name + ">"
	}
	masked := map[*ClientAuthentication]*ClientAuthentication{}
	for _, srv := range res.Config.Apps.HTTP.Servers {
		for i, p := range srv.TLSConnectionPolicies {
			if p.ClientAuthentication == nil {
				continue
			}
			if masked[p.ClientAuthentication] == nil {
				m := *p.ClientAuthentication
				m.CA = &CAPool{Provider: m.CA.Provider}
				for _, c := range p.ClientAuthentication.CA.TrustedCACerts {
					if names[c] == "" {
						t.Fatalf("unknown CA %s", c)
					}
					m.CA.TrustedCACerts = append(m.CA.TrustedCACerts, names[c])
				}
				masked[p.ClientAuthentication] = &m
			}
			srv.TLSConnectionPolicies[i].ClientAuthentication = masked[p.ClientAuthentication]
		}
	}
	assertGatewayGolden(t, "gateway-frontend-validation", res)

	servers := res.Config.Apps.HTTP.Servers
	for name, mode := range map[string]string{"gateway/shop/edge/443": "require_and_verify", "gateway/shop/edge/8443": "request",
		"gateway/shop/edge/4443": "require_and_verify", "gateway/shop/edge/3443": "require_and_verify", "gateway/shop/edge/9443": "", "gateway/shop/plain/443": ""} {
		srv := servers[name]
		if srv == nil {
			t.Fatalf("no server %s", name)
		}
		for _, p := range srv.TLSConnectionPolicies {
			got := ""
			if p.ClientAuthentication != nil {
				got = p.ClientAuthentication.Mode
			}
			if got != mode {
				t.Errorf("%s: policy %+v has client authentication %q, want %q on every policy", name, p.Match, got, mode)
			}
		}
	}
	for _, port := range []string{"7443", "6443", "5443", "2443"} {
		if servers["gateway/shop/edge/"+port] != nil {
			t.Errorf("port %s is served though no CA of its validation is usable", port)
		}
	}
	if !strings.Contains(strings.Join(servers["gateway/shop/edge/8443"].TLSConnectionPolicies[0].ClientAuthentication.CA.TrustedCACerts, " "), "ca-2") {
		t.Errorf("a ConfigMap with two certificates gives both")
	}
}
