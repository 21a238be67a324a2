package translate

import (
	"fmt"
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
// added to the Ingress hosts (an Ingress host keeps its own certificate). A listener without
// hostname provides the default certificate when none was configured (only the self-signed
// fallback): the first such listener, in Gateway order, wins.
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
	for _, e := range extra {
		if e.host == "" {
			if merged.defaultTag == tagFallback || merged.defaultTag == "" {
				merged.defaultTag = e.tag
			}
			continue
		}
		if _, taken := merged.hostTag[e.host]; !taken {
			merged.hostTag[strings.ToLower(e.host)] = e.tag
		}
	}
	return merged.connectionPolicies()
}
