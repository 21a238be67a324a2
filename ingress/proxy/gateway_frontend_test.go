package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// testCA is a certificate authority that signs client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// client issues a client certificate for name.
func (ca testCA) client(t *testing.T, name string) tls.Certificate {
	t.Helper()
	return ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: name}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

// issue signs tmpl (a fresh serial, valid from an hour ago for a day, for signatures) with a
// new key.
func (ca testCA) issue(t *testing.T, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestRealProxyGatewayClientCertificates is GatewayFrontendClientCertificateValidation and its
// InsecureFallback mode on real sockets and handshakes: port 443 takes the default validation
// (CA a), port 8443 its own (CA b), port 9443 lets any client through; a certificate of the
// other CA or none fails, also with a server name no listener has and without any, and a
// request whose Host differs from its server name on one listener is still served.
func TestRealProxyGatewayClientCertificates(t *testing.T) {
	p, opts := gatewayProxy(t)
	server := newTestCert(t, "example.org", "second-example.org", "*.wild.org")
	caA, caB := newTestCA(t, "client CA a"), newTestCA(t, "client CA b")
	clientA, clientB := caA.client(t, "client-a"), caB.client(t, "client-b")

	svc, es := serviceFor("a", echoBackend(t, "a"))
	in := translate.Input{Services: []corev1.Service{svc}, EndpointSlices: []discoveryv1.EndpointSlice{es},
		Secrets: []corev1.Secret{server.secret("server")},
		ConfigMaps: []corev1.ConfigMap{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ca-a"}, Data: map[string]string{"ca.crt": caA.pem}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ca-b"}, Data: map[string]string{"ca.crt": caB.pem}},
		}}
	listener := func(name string, port int32, host string) gwv1.Listener {
		l := gwv1.Listener{Name: gwv1.SectionName(name), Port: gwv1.PortNumber(port), Protocol: gwv1.HTTPSProtocolType,
			TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "server"}}}}
		if host != "" {
			h := gwv1.Hostname(host)
			l.Hostname = &h
		}
		return l
	}
	caRef := func(name string) []gwv1.ObjectReference {
		return []gwv1.ObjectReference{{Kind: "ConfigMap", Name: gwv1.ObjectName(name)}}
	}
	in.GatewayClasses = plexusClass()
	in.Gateways = []gwv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "edge"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "plexus",
		Listeners: []gwv1.Listener{listener("https", 443, ""), listener("wild", 443, "*.wild.org"),
			listener("second", 8443, "second-example.org"), listener("open", 9443, "")},
		TLS: &gwv1.GatewayTLSConfig{Frontend: &gwv1.FrontendTLSConfig{
			Default: gwv1.TLSConfig{Validation: &gwv1.FrontendTLSValidation{CACertificateRefs: caRef("ca-a")}},
			PerPort: []gwv1.TLSPortConfig{
				{Port: 8443, TLS: gwv1.TLSConfig{Validation: &gwv1.FrontendTLSValidation{CACertificateRefs: caRef("ca-b"), Mode: gwv1.AllowValidOnly}}},
				{Port: 9443, TLS: gwv1.TLSConfig{Validation: &gwv1.FrontendTLSValidation{CACertificateRefs: caRef("ca-a"), Mode: gwv1.AllowInsecureFallback}}},
			}}}}}}
	in.HTTPRoutes = []gwv1.HTTPRoute{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "site"}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "edge"}}},
		Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Name: "a", Port: ptrTo(int32(80))}}}}}}}}}
	ports := gatewayServices(t, &in, opts)
	res := translate.Translate(in, opts)
	if _, err := p.Load(res.Config); err != nil {
		t.Fatalf("load: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(server.leaf)
	none := tls.Certificate{}
	for _, tc := range []struct {
		name      string
		port      int
		sni, host string
		cert      tls.Certificate
		served    bool
	}{
		{"default: client of CA a", ports["shop/edge/443"], "example.org", "example.org", clientA, true},
		{"default: client of CA b", ports["shop/edge/443"], "example.org", "example.org", clientB, false},
		{"default: no certificate", ports["shop/edge/443"], "example.org", "example.org", none, false},
		{"default: unknown server name, no certificate", ports["shop/edge/443"], "unknown.test", "example.org", none, false},
		{"default: no server name, client of CA a", ports["shop/edge/443"], "", "example.org", clientA, true},
		{"default: no server name, no certificate", ports["shop/edge/443"], "", "example.org", none, false},
		{"default: another name of one wildcard listener", ports["shop/edge/443"], "a.wild.org", "b.wild.org", clientA, true},
		{"per port: client of CA b", ports["shop/edge/8443"], "second-example.org", "second-example.org", clientB, true},
		{"per port: client of CA a", ports["shop/edge/8443"], "second-example.org", "second-example.org", clientA, false},
		{"insecure fallback: client of CA b", ports["shop/edge/9443"], "example.org", "example.org", clientB, true},
		{"insecure fallback: no certificate", ports["shop/edge/9443"], "example.org", "example.org", none, true},
	} {
		// The certificate is sent whatever CAs the server names (as the conformance suite does);
		// the server's own certificate is checked only for the names it has.
		cert := tc.cert
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: tc.sni,
			InsecureSkipVerify:   tc.sni == "" || tc.sni == "unknown.test", // #nosec G402 -- the server's validation of clients is under test
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/", tc.port), nil)
		req.Host = tc.host
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		served := err == nil && resp.StatusCode == http.StatusOK
		if err != nil {
			t.Logf("%s: %v", tc.name, err)
		}
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
		if served != tc.served {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Errorf("%s: served=%v (status %d, %v), want served=%v", tc.name, served, status, err, tc.served)
		}
	}
}
