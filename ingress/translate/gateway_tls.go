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

// gatewayTLSPolicies are the connection policies with the programmed HTTPS listeners' hostnames
// added to the Ingress hosts (an Ingress host keeps its own certificate). Precise listener
// hostnames join the Ingress hosts; wildcard ones, which cover one or more labels unlike Caddy's
// SNI wildcards, match by expression after every Ingress policy, longest first. A listener
// without hostname provides the default certificate when none was configured (only the
// self-signed fallback): the first such listener, in hostname order, wins.
func gatewayTLSPolicies(plan tlsPlan, a *gatewayAnalysis) []TLSConnectionPolicy {
	merged := tlsPlan{certs: plan.certs, defaultTag: plan.defaultTag, hostTag: map[string]string{}}
	for h, t := range plan.hostTag {
		merged.hostTag[h] = t
	}
	type hostCert struct{ host, tag string }
	var extra []hostCert
	for gi := range a.api.Gateways {
		for li := range a.api.Gateways[gi].Listeners {
			l := &a.api.Gateways[gi].Listeners[li]
			if l.server == ServerHTTPS && l.Programmed() {
				extra = append(extra, hostCert{l.Hostname, l.certTag})
			}
		}
	}
	sort.SliceStable(extra, func(i, j int) bool { return extra[i].host < extra[j].host })
	var wild []TLSConnectionPolicy
	seenWild := map[string]bool{}
	for _, e := range extra {
		switch {
		case e.host == "":
			if merged.defaultTag == tagFallback || merged.defaultTag == "" {
				merged.defaultTag = e.tag
			}
		case strings.HasPrefix(e.host, "*."):
			if seenWild[e.host] {
				continue
			}
			seenWild[e.host] = true
			wild = append(wild, TLSConnectionPolicy{
				Match:                &TLSMatch{SNIRegexp: &Regexp{Pattern: `(?i)^[^.]+(\.[^.]+)*` + regexp.QuoteMeta(e.host[1:]) + `$`}},
				CertificateSelection: &CertificateSelection{AnyTag: []string{e.tag}},
			})
		default:
			if _, taken := merged.hostTag[e.host]; !taken {
				merged.hostTag[e.host] = e.tag
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
