package translate

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// tagFallback tags Input.FallbackCertificate; Secrets are tagged "secret/<namespace>/<name>".
const tagFallback = "fallback"

// certificate is one loaded certificate: its PEM pair, its tag and a name it covers (for
// fallback_sni, so an SNI that another certificate also covers still gets this one as default).
type certificate struct {
	pem  PEMCertificate
	name string
}

// tlsPlan is which certificate every TLS host gets.
type tlsPlan struct {
	certs      map[string]certificate // by tag
	defaultTag string                 // "" when there is no default certificate
	// hostTag maps every TLS host to its certificate's tag; "" means the host wants TLS but no
	// certificate is available for it (plain HTTP answers 503).
	hostTag map[string]string
}

// planTLS decides the certificates of the served Ingresses' TLS hosts, reporting problems.
func planTLS(in *Input, opts *Options, served []*networkingv1.Ingress, p *problems) tlsPlan {
	plan := tlsPlan{certs: map[string]certificate{}, hostTag: map[string]string{}}
	secrets := make(map[types.NamespacedName]*corev1.Secret, len(in.Secrets))
	for i := range in.Secrets {
		s := &in.Secrets[i]
		secrets[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	// loadSecret adds the Secret's certificate, returning its tag, or a reason and message.
	loadSecret := func(key types.NamespacedName) (tag, reason, msg string) {
		tag = "secret/" + key.Namespace + "/" + key.Name
		if _, ok := plan.certs[tag]; ok {
			return tag, "", ""
		}
		s, ok := secrets[key]
		if !ok {
			return "", ReasonSecretNotFound, fmt.Sprintf("TLS secret %s not found", key)
		}
		c, err := parseCertificate(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], tag)
		if err != nil {
			return "", ReasonSecretInvalid, fmt.Sprintf("TLS secret %s: %v", key, err)
		}
		plan.certs[tag] = c
		return tag, "", ""
	}

	if opts.DefaultTLSSecret != nil {
		tag, reason, msg := loadSecret(*opts.DefaultTLSSecret)
		if reason != "" {
			p.add(types.NamespacedName{}, reason, "default certificate: "+msg)
		}
		plan.defaultTag = tag
	}
	if plan.defaultTag == "" && in.FallbackCertificate != nil {
		c, err := parseCertificate(in.FallbackCertificate.CertPEM, in.FallbackCertificate.KeyPEM, tagFallback)
		if err != nil {
			p.add(types.NamespacedName{}, ReasonSecretInvalid, fmt.Sprintf("fallback certificate: %v", err))
		} else {
			plan.certs[tagFallback] = c
			plan.defaultTag = tagFallback
		}
	}

	// owner remembers which Ingress and secret decided a host, for conflict messages.
	type owner struct {
		ing    types.NamespacedName
		secret string
	}
	owners := map[string]owner{}
	for _, ing := range served {
		id := types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
		for _, entry := range ing.Spec.TLS {
			hosts := entry.Hosts
			if len(hosts) == 0 {
				hosts = ruleHosts(ing)
			}
			for _, host := range hosts {
				host = strings.ToLower(host)
				if prev, ok := owners[host]; ok {
					if prev.secret != entry.SecretName || prev.ing != id {
						p.add(id, ReasonTLSConflict, fmt.Sprintf("TLS for host %s is already set by %s (secret %q); this entry (secret %q) is ignored",
							host, prev.ing, prev.secret, entry.SecretName))
					}
					continue
				}
				owners[host] = owner{ing: id, secret: entry.SecretName}
				tag := plan.defaultTag
				if entry.SecretName != "" {
					t, reason, msg := loadSecret(types.NamespacedName{Namespace: ing.Namespace, Name: entry.SecretName})
					if reason != "" {
						p.add(id, reason, msg+fallbackNote(host, plan.defaultTag))
					} else {
						tag = t
					}
				}
				if tag == "" && entry.SecretName == "" {
					p.add(id, ReasonNoCertificate, fmt.Sprintf("TLS host %s names no secret and there is no default certificate; plain HTTP to it answers 503", host))
				}
				plan.hostTag[host] = tag
			}
		}
	}
	return plan
}

// fallbackNote tells what a host whose secret failed is served with.
func fallbackNote(host, defaultTag string) string {
	if defaultTag == "" {
		return fmt.Sprintf("; host %s has no certificate, plain HTTP to it answers 503", host)
	}
	return fmt.Sprintf("; host %s is served with the default certificate", host)
}

// ruleHosts are the hosts named by an Ingress's rules, for a TLS entry that lists none.
func ruleHosts(ing *networkingv1.Ingress) []string {
	var hosts []string
	for _, r := range ing.Spec.Rules {
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	return hosts
}

// parseCertificate checks that certPEM and keyPEM are a matching pair and finds a name the leaf
// certificate covers.
func parseCertificate(certPEM, keyPEM []byte, tag string) (certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return certificate{}, fmt.Errorf("parse tls.crt/tls.key: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return certificate{}, fmt.Errorf("parse leaf certificate: %w", err)
	}
	name := leaf.Subject.CommonName
	if len(leaf.DNSNames) > 0 {
		name = leaf.DNSNames[0]
	}
	return certificate{
		pem:  PEMCertificate{Certificate: string(certPEM), Key: string(keyPEM), Tags: []string{tag}},
		name: name,
	}, nil
}

// connectionPolicies picks certificates by SNI: precise hosts first (a wildcard policy must not
// shadow them, even when they use the default certificate), then wildcard hosts, each grouped by
// certificate, then the default certificate for every other SNI and for handshakes without one.
func (plan tlsPlan) connectionPolicies() []TLSConnectionPolicy {
	var policies []TLSConnectionPolicy
	for _, wildcard := range []bool{false, true} {
		byTag := map[string][]string{}
		for host, tag := range plan.hostTag {
			if tag == "" || strings.HasPrefix(host, "*.") != wildcard {
				continue
			}
			byTag[tag] = append(byTag[tag], host)
		}
		for _, tag := range sortedKeys(byTag) {
			hosts := byTag[tag]
			sort.Strings(hosts)
			policies = append(policies, TLSConnectionPolicy{
				Match:                &TLSMatch{SNI: hosts},
				CertificateSelection: &CertificateSelection{AnyTag: []string{tag}},
			})
		}
	}
	if plan.defaultTag != "" {
		policies = append(policies, TLSConnectionPolicy{
			CertificateSelection: &CertificateSelection{AnyTag: []string{plan.defaultTag}},
			FallbackSNI:          plan.certs[plan.defaultTag].name,
		})
	}
	return policies
}

// loadPEM lists every certificate once, by tag.
func (plan tlsPlan) loadPEM() []PEMCertificate {
	out := make([]PEMCertificate, 0, len(plan.certs))
	for _, tag := range sortedKeys(plan.certs) {
		out = append(out, plan.certs[tag].pem)
	}
	return out
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
