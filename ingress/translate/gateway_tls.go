package translate

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// secretLoader loads Gateway listener certificates into the Ingress TLS plan's certificate set,
// so one HTTPS server holds the certificates of both APIs.
type secretLoader struct {
	plan    *tlsPlan
	secrets map[types.NamespacedName]*corev1.Secret
}

func newSecretLoader(plan *tlsPlan, list []corev1.Secret) *secretLoader {
	l := &secretLoader{plan: plan, secrets: make(map[types.NamespacedName]*corev1.Secret, len(list))}
	for i := range list {
		s := &list[i]
		l.secrets[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	return l
}

// load adds the Secret's certificate and returns its tag, or a reason and message.
func (l *secretLoader) load(key types.NamespacedName) (tag, reason, msg string) {
	tag = "secret/" + key.Namespace + "/" + key.Name
	if _, done := l.plan.certs[tag]; done {
		return tag, "", ""
	}
	s, found := l.secrets[key]
	if !found {
		return "", ReasonSecretNotFound, fmt.Sprintf("TLS secret %s not found", key)
	}
	c, err := parseCertificate(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], tag)
	if err != nil {
		return "", ReasonSecretInvalid, fmt.Sprintf("TLS secret %s: %v", key, err)
	}
	l.plan.certs[tag] = c
	return tag, "", ""
}

// gatewayTLSPolicies are the connection policies of one Gateway's HTTPS server (its programmed
// listeners of one port). Precise listener hostnames select their certificate by SNI; wildcard
// ones, which cover one or more labels unlike Caddy's SNI wildcards, match by expression, longest
// first; a listener without hostname provides the certificate for any other SNI (the first such
// listener in listener order), else the controller's default certificate does.
func gatewayTLSPolicies(plan tlsPlan, listeners []*ListenerResult) []TLSConnectionPolicy {
	merged := tlsPlan{certs: plan.certs, defaultTag: plan.defaultTag, hostTag: map[string]string{}}
	var wild []TLSConnectionPolicy
	seenWild := map[string]bool{}
	anyHost := false
	for _, l := range listeners {
		switch {
		case l.Hostname == "":
			if !anyHost {
				merged.defaultTag, anyHost = l.certTag, true
			}
		case strings.HasPrefix(l.Hostname, "*."):
			if seenWild[l.Hostname] {
				continue
			}
			seenWild[l.Hostname] = true
			wild = append(wild, TLSConnectionPolicy{
				Match:                &TLSMatch{SNIRegexp: &Regexp{Pattern: `(?i)^[^.]+(\.[^.]+)*` + regexp.QuoteMeta(l.Hostname[1:]) + `$`}},
				CertificateSelection: &CertificateSelection{AnyTag: []string{l.certTag}},
			})
		default:
			if _, taken := merged.hostTag[l.Hostname]; !taken {
				merged.hostTag[l.Hostname] = l.certTag
			}
		}
	}
	sort.SliceStable(wild, func(i, j int) bool {
		return len(wild[i].Match.SNIRegexp.Pattern) > len(wild[j].Match.SNIRegexp.Pattern)
	})
	policies := merged.connectionPolicies()
	if n := len(policies); n > 0 && policies[n-1].Match == nil {
		return append(append(policies[:n-1:n-1], wild...), policies[n-1])
	}
	return append(policies, wild...)
}
