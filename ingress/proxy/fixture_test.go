package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/ingress/certs"
	"github.com/plexus-net/plexus/ingress/translate"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const controllerName = "plexus.dev/ingress"

// backend is a loopback HTTP server that answers "<name> <path>".
type backend struct {
	name string
	srv  *httptest.Server
	port int32
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return &backend{name: name, srv: srv, port: int32(p)}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serviceFor is a Service "name" whose port 80 targets the backend through an EndpointSlice
// with the single ready endpoint 127.0.0.1:<backend port>.
func serviceFor(name string, b *backend) (corev1.Service, discoveryv1.EndpointSlice) {
	svc := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	portName, proto, ready := "http", corev1.ProtocolTCP, true
	es := discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &b.port, Protocol: &proto}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
	return svc, es
}

func ingressOf(name string, age int, rules ...networkingv1.IngressRule) networkingv1.Ingress {
	class := "plexus"
	return networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, age, 0, 0, time.UTC))},
		Spec: networkingv1.IngressSpec{IngressClassName: &class, Rules: rules},
	}
}

func hostRule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

func toService(kind networkingv1.PathType, p, svc string) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: &kind, Backend: networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: "http"}},
	}}
}

// testCert is a self-signed certificate for names.
type testCert struct {
	certPEM, keyPEM []byte
	leaf            *x509.Certificate
}

func newTestCert(t *testing.T, names ...string) testCert {
	t.Helper()
	c, k, err := certs.SelfSigned(names, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return testCert{certPEM: c, keyPEM: k, leaf: leaf}
}

func (c testCert) secret(name string) corev1.Secret {
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: c.certPEM, corev1.TLSPrivateKeyKey: c.keyPEM},
	}
}

// client sends requests for any host to the proxy's loopback ports, like a client whose DNS
// points every name at the ingress; HTTPS uses the request's host as SNI and trusts roots.
type client struct {
	httpPort, httpsPort int
	c                   *http.Client
}

func newClient(httpPort, httpsPort int, roots *x509.CertPool) *client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConnsPerHost: 4,
	}
	return &client{httpPort: httpPort, httpsPort: httpsPort, c: &http.Client{
		Transport: tr,
		Timeout:   10 * time.Second,
		// Redirects are asserted, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// closeIdle closes the client's idle connections, also those it dialled and never used.
func (c *client) closeIdle() { c.c.CloseIdleConnections() }

// answer is what a request got.
type answer struct {
	status   int
	body     string
	location string
	cert     *x509.Certificate // the server's leaf certificate over HTTPS
	reused   bool              // the request went out on a kept-alive connection
}

func (c *client) get(scheme, host, path string) (answer, error) {
	return c.do(http.MethodGet, scheme, host, path)
}

// do sends a request with method; a POST carries a small body.
func (c *client) do(method, scheme, host, path string) (answer, error) {
	port := c.httpPort
	if scheme == "https" {
		port = c.httpsPort
	}
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("payload")
	}
	req, err := http.NewRequest(method, fmt.Sprintf("%s://%s:%d%s", scheme, host, port, path), body)
	if err != nil {
		return answer{}, err
	}
	var conns []string // every connection the request was tried on, for failure messages
	var reused bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			reused = i.Reused
			conns = append(conns, fmt.Sprintf("%s reused=%v", i.Conn.LocalAddr(), i.Reused))
		},
	}))
	resp, err := c.c.Do(req)
	if err != nil {
		return answer{reused: reused}, fmt.Errorf("%w (connections: %v)", err, conns)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{reused: reused}, fmt.Errorf("read body: %w", err)
	}
	a := answer{status: resp.StatusCode, body: string(respBody), location: resp.Header.Get("Location"), reused: reused}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		a.cert = resp.TLS.PeerCertificates[0]
	}
	return a, nil
}

// listen opens the proxy's socket on a loopback port.
func listen(t testing.TB, p *Proxy, port int) string {
	t.Helper()
	addr, err := p.Listen(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// optionsFor listens on the loopback ports and keeps Caddy's state in a temporary directory.
func optionsFor(t *testing.T, p *Proxy, httpPort, httpsPort int) translate.Options {
	return translate.Options{
		ControllerName:    controllerName,
		HTTPListen:        listen(t, p, httpPort),
		HTTPSListen:       listen(t, p, httpsPort),
		HTTPSRedirectPort: httpsPort,
		DefaultTLSSecret:  &types.NamespacedName{Namespace: "shop", Name: "default-tls"},
		StorageDir:        t.TempDir(),
		LogLevel:          "ERROR",
		// Gateway internal ports are free loopback ports here (gatewayServices), anywhere.
		GatewayPortFirst: 1024,
		GatewayPortLast:  65535,
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// getInsecure handshakes with SNI sni and returns the server's leaf certificate, whatever it is.
func getInsecure(port int, sni string) (*x509.Certificate, error) {
	conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{
		ServerName:         sni,
		InsecureSkipVerify: true, // the test inspects which certificate is served
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// gatewayProxy returns a Proxy that stops when the test ends and translation options for Gateway
// API tests: controller plexus.dev/gateway, no default certificate.
func gatewayProxy(t *testing.T) (*Proxy, translate.Options) {
	t.Helper()
	p := &Proxy{}
	t.Cleanup(func() { _ = p.Stop() })
	opts := optionsFor(t, p, freePort(t), freePort(t))
	opts.DefaultTLSSecret = nil
	opts.GatewayControllerName = "plexus.dev/gateway"
	return p, opts
}

// plexusClass is the GatewayClass "plexus" of controller plexus.dev/gateway.
func plexusClass() []gwv1.GatewayClass {
	return []gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: gwv1.GatewayClassSpec{ControllerName: "plexus.dev/gateway"}}}
}

// addBackend adds b to in as Service name with its EndpointSlice.
func addBackend(in *translate.Input, name string, b *backend) {
	svc, es := serviceFor(name, b)
	in.Services, in.EndpointSlices = append(in.Services, svc), append(in.EndpointSlices, es)
}
