package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// Transport is the reverse proxy transport "plexus_http" (translate.TransportPlexusHTTP):
// Caddy's http transport that keeps the request's Host for TLS upstreams too (Caddy's sets it to
// the upstream's address, for a BackendTLSPolicy the backend must see the route's Host), with
// two TLS settings Caddy's lacks. With VerifySubjectAltNames, the
// upstream's certificate chain is verified as usual but, instead of matching the server name,
// must carry one of those names (BackendTLSPolicy subjectAltNames: the server name then only
// selects the certificate). ClientCertificate is presented to upstreams that ask for one (a
// Gateway's spec.tls.backend.clientCertificateRef), from the config rather than from files.
type Transport struct {
	reverseproxy.HTTPTransport
	VerifySubjectAltNames *SANs              `json:"verify_subject_alt_names,omitempty"`
	ClientCertificate     *ClientCertificate `json:"client_certificate,omitempty"`
}

// ClientCertificate is a PEM certificate chain and key.
type ClientCertificate struct {
	CertificatePEM string `json:"certificate_pem"`
	KeyPEM         string `json:"key_pem"`
}

// SANs are the names a certificate must carry one of: DNS names (a certificate's wildcard
// covers them as in hostname verification) or exact URIs (SPIFFE IDs, for instance).
type SANs struct {
	DNSNames []string `json:"dns_names,omitempty"`
	URIs     []string `json:"uris,omitempty"`
}

func init() { caddy.RegisterModule(&Transport{}) }

// CaddyModule implements caddy.Module.
func (*Transport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.reverse_proxy.transport.plexus_http", New: func() caddy.Module { return new(Transport) }}
}

// Provision implements caddy.Provisioner: Caddy's transport, then its TLS changed.
func (t *Transport) Provision(ctx caddy.Context) error {
	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}
	if t.VerifySubjectAltNames == nil && t.ClientCertificate == nil {
		return nil
	}
	cfg := t.Transport.TLSClientConfig
	if cfg == nil {
		return errors.New("plexus_http: subject alternative names and client certificates need tls")
	}
	if c := t.ClientCertificate; c != nil {
		pair, err := tls.X509KeyPair([]byte(c.CertificatePEM), []byte(c.KeyPEM))
		if err != nil {
			return fmt.Errorf("plexus_http client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if t.VerifySubjectAltNames == nil {
		return nil
	}
	roots := cfg.RootCAs
	sans := *t.VerifySubjectAltNames
	// The chain is verified below with the same roots; Go's own check would also demand the
	// server name, which the policy says must not authenticate the upstream here.
	cfg.InsecureSkipVerify = true // #nosec G402 -- VerifyConnection verifies the chain and the names
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return sans.verify(cs.PeerCertificates, roots)
	}
	return nil
}

// verify checks that certs chain to roots (the system's when nil) and that the leaf carries
// one of the names.
func (s SANs) verify(certs []*x509.Certificate, roots *x509.CertPool) error {
	if len(certs) == 0 {
		return errors.New("the upstream sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("upstream certificate: %w", err)
	}
	for _, name := range s.DNSNames {
		if leaf.VerifyHostname(name) == nil {
			return nil
		}
	}
	for _, u := range leaf.URIs {
		if slices.Contains(s.URIs, u.String()) {
			return nil
		}
	}
	return fmt.Errorf("upstream certificate carries none of the subject alternative names %s", strings.Join(append(append([]string(nil), s.DNSNames...), s.URIs...), ", "))
}

// RequestHeaderOps overrides Caddy's transport, which sets Host to the upstream's address when
// it speaks TLS: the request keeps the Host the route gave it.
func (t *Transport) RequestHeaderOps() *headers.HeaderOps { return nil }

var _ caddy.Provisioner = (*Transport)(nil)
