package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// SANTransport is the reverse proxy transport "plexus_http" (translate.TransportVerifySANs): Caddy's
// http transport whose TLS verifies the upstream's certificate chain as usual but, instead of
// matching the server name, requires one of VerifySubjectAltNames (BackendTLSPolicy
// subjectAltNames: the server name then only selects the certificate). Caddy's transport has no
// such setting.
type SANTransport struct {
	reverseproxy.HTTPTransport
	VerifySubjectAltNames SANs `json:"verify_subject_alt_names"`
}

// SANs are the names a certificate must carry one of: DNS names (a certificate's wildcard
// covers them as in hostname verification) or exact URIs (SPIFFE IDs, for instance).
type SANs struct {
	DNSNames []string `json:"dns_names,omitempty"`
	URIs     []string `json:"uris,omitempty"`
}

func init() { caddy.RegisterModule(&SANTransport{}) }

// CaddyModule implements caddy.Module.
func (*SANTransport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.reverse_proxy.transport.plexus_http", New: func() caddy.Module { return new(SANTransport) }}
}

// Provision implements caddy.Provisioner: Caddy's transport, then the verification swapped.
func (t *SANTransport) Provision(ctx caddy.Context) error {
	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}
	cfg := t.Transport.TLSClientConfig
	if cfg == nil {
		return errors.New("plexus_http verifies subject alternative names: it needs tls")
	}
	roots := cfg.RootCAs
	sans := t.VerifySubjectAltNames
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

var _ caddy.Provisioner = (*SANTransport)(nil)
