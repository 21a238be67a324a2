package proxy

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// server issues a serving certificate for DNS names and URIs.
func (ca testCA) server(t *testing.T, dns []string, uris ...string) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: dns[0]}, DNSNames: dns, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	return ca.issue(t, tmpl)
}

// TestRealProxyGatewayBackendTLS is BackendTLSPolicy (and its SAN validation) against a real TLS
// backend whose certificate, issued by the test CA, is for abc.example.com, other.example.com and
// spiffe://abc.example.com/test-identity: the proxy connects with the policy's hostname as SNI
// and is served, with the request's Host kept, when the certificate chains to the policy's CA and
// matches the hostname, or one of its subject alternative names; a wrong hostname, CA or names give 502 (the connection
// fails), and a policy without a usable CA 500 (nothing is sent).
func TestRealProxyGatewayBackendTLS(t *testing.T) {
	p, opts := gatewayProxy(t)
	ca, otherCA := newTestCA(t, "backend CA"), newTestCA(t, "unrelated CA")

	tlsBackend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls sni=%s host=%s path=%s", r.TLS.ServerName, r.Host, r.URL.Path)
	}))
	tlsBackend.TLS = &tls.Config{Certificates: []tls.Certificate{ca.server(t, []string{"abc.example.com", "other.example.com"}, "spiffe://abc.example.com/test-identity")}}
	tlsBackend.StartTLS()
	t.Cleanup(tlsBackend.Close)
	port := int32(tlsBackend.Listener.Addr().(*net.TCPAddr).Port)

	in := translate.Input{ConfigMaps: []corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ca"}, Data: map[string]string{"ca.crt": ca.pem}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "other-ca"}, Data: map[string]string{"ca.crt": otherCA.pem}},
	}}
	policy := func(name, caName, hostname string, sans ...gwv1.SubjectAltName) gwv1.BackendTLSPolicy {
		return gwv1.BackendTLSPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Spec: gwv1.BackendTLSPolicySpec{
			TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: gwv1.ObjectName(name)}}},
			Validation: gwv1.BackendTLSPolicyValidation{CACertificateRefs: []gwv1.LocalObjectReference{{Kind: "ConfigMap", Name: gwv1.ObjectName(caName)}},
				Hostname: gwv1.PreciseHostname(hostname), SubjectAltNames: sans}}}
	}
	dnsSAN := func(h string) gwv1.SubjectAltName {
		return gwv1.SubjectAltName{Type: gwv1.HostnameSubjectAltNameType, Hostname: gwv1.Hostname(h)}
	}
	uriSAN := func(u string) gwv1.SubjectAltName {
		return gwv1.SubjectAltName{Type: gwv1.URISubjectAltNameType, URI: gwv1.AbsoluteURI(u)}
	}
	in.BackendTLSPolicies = []gwv1.BackendTLSPolicy{
		policy("valid", "ca", "abc.example.com"),
		policy("host-mismatch", "ca", "mismatch.example.com"),
		policy("cert-mismatch", "other-ca", "abc.example.com"),
		policy("no-ca", "nowhere", "abc.example.com"),
		policy("san-dns", "ca", "abc.example.com", dnsSAN("other.example.com")),
		policy("san-dns-mismatch", "ca", "abc.example.com", dnsSAN("dce.example.com")),
		policy("san-uri", "ca", "abc.example.com", uriSAN("spiffe://abc.example.com/test-identity")),
		policy("san-uri-mismatch", "ca", "abc.example.com", uriSAN("spiffe://def.example.com/test-identity"), dnsSAN("def.example.com")),
		// The server name picks the certificate, the names authenticate it: a hostname the
		// certificate lacks is fine when a listed name matches.
		policy("san-not-hostname", "ca", "unlisted.example.com", dnsSAN("abc.example.com")),
	}
	var routes []gwv1.HTTPRoute
	for _, pol := range in.BackendTLSPolicies {
		svc, es := serviceFor(pol.Name, &backend{name: pol.Name, port: port})
		in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
		routes = append(routes, gwRoute(pol.Name, []gwv1.ParentReference{gwParent("edge", "")}, "/"+pol.Name, pol.Name, ""))
	}
	in.HTTPRoutes = routes
	in.GatewayClasses = plexusClass()
	in.Gateways = []gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edge"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus", Listeners: []gwv1.Listener{gwListener("http", 80, "")}}}}
	gwPort := gatewayServices(t, &in, opts)["shop/edge/80"]
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	for path, want := range map[string]struct {
		status int
		body   string
	}{
		"/valid":            {200, "tls sni=abc.example.com host=example.com path=/valid"},
		"/host-mismatch":    {502, ""},
		"/cert-mismatch":    {502, ""},
		"/no-ca":            {500, ""},
		"/san-dns":          {200, "tls sni=abc.example.com host=example.com path=/san-dns"},
		"/san-dns-mismatch": {502, ""},
		"/san-uri":          {200, "tls sni=abc.example.com host=example.com path=/san-uri"},
		"/san-uri-mismatch": {502, ""},
		"/san-not-hostname": {200, "tls sni=unlisted.example.com host=example.com path=/san-not-hostname"},
	} {
		status, body := gwGet(t, gwPort, "example.com", path)
		if status != want.status || (want.body != "" && body != want.body) {
			t.Errorf("GET %s: %d %q, want %d %q", path, status, body, want.status, want.body)
		}
	}
}

// TestRealProxyGatewayBackendClientCertificate is GatewayBackendClientCertificate on real
// sockets: a TLS backend that requires a client certificate of the test CA is served through a
// Gateway whose spec.tls.backend.clientCertificateRef names such a certificate, and refuses the
// handshake (502) through a Gateway without one.
func TestRealProxyGatewayBackendClientCertificate(t *testing.T) {
	p, opts := gatewayProxy(t)
	ca := newTestCA(t, "backend CA")
	clients := x509.NewCertPool()
	clients.AddCert(ca.cert)
	tlsBackend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "client=%s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	tlsBackend.TLS = &tls.Config{Certificates: []tls.Certificate{ca.server(t, []string{"abc.example.com"})},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	tlsBackend.StartTLS()
	t.Cleanup(tlsBackend.Close)

	client := ca.client(t, "gateway-client")
	clientPEM, keyPEM := pemPair(t, client)
	svc, es := serviceFor("secure", &backend{name: "secure", port: int32(tlsBackend.Listener.Addr().(*net.TCPAddr).Port)})
	in := translate.Input{Services: []corev1.Service{svc}, EndpointSlices: []discoveryv1.EndpointSlice{es},
		Secrets: []corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "client"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: clientPEM, corev1.TLSPrivateKeyKey: keyPEM}}},
		ConfigMaps: []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ca"}, Data: map[string]string{"ca.crt": ca.pem}}},
		BackendTLSPolicies: []gwv1.BackendTLSPolicy{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "secure"}, Spec: gwv1.BackendTLSPolicySpec{
			TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "secure"}}},
			Validation: gwv1.BackendTLSPolicyValidation{CACertificateRefs: []gwv1.LocalObjectReference{{Kind: "ConfigMap", Name: "ca"}}, Hostname: "abc.example.com"}}}},
	}
	in.GatewayClasses = plexusClass()
	in.Gateways = []gwv1.Gateway{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "with-cert"}, Spec: gwv1.GatewaySpec{GatewayClassName: "plexus",
			Listeners: []gwv1.Listener{gwListener("http", 80, "")},
			TLS:       &gwv1.GatewayTLSConfig{Backend: &gwv1.GatewayBackendTLS{ClientCertificateRef: &gwv1.SecretObjectReference{Name: "client"}}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "without"}, Spec: gwv1.GatewaySpec{GatewayClassName: "plexus",
			Listeners: []gwv1.Listener{gwListener("http", 80, "")}}},
	}
	in.HTTPRoutes = []gwv1.HTTPRoute{gwRoute("secure", []gwv1.ParentReference{gwParent("with-cert", ""), gwParent("without", "")}, "/", "secure", "")}
	ports := gatewayServices(t, &in, opts)
	if _, err := p.Load(translate.Translate(in, opts).Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	if status, body := gwGet(t, ports["shop/with-cert/80"], "example.com", "/"); status != 200 || body != "client=gateway-client" {
		t.Errorf("through the Gateway with a client certificate: %d %q, want 200 client=gateway-client", status, body)
	}
	if status, body := gwGet(t, ports["shop/without/80"], "example.com", "/"); status != 502 {
		t.Errorf("through the Gateway without: %d %q, want 502", status, body)
	}
}

// pemPair encodes a certificate and its ECDSA key as PEM.
func pemPair(t *testing.T, c tls.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
