package translate

// Client certificate validation of HTTPS listeners (Gateway spec.tls.frontend):
// GatewayFrontendClientCertificateValidation and its InsecureFallback mode.
//
//   - The validation of a listener port is perPort's entry for the port when there is one (even
//     one without validation: it overrides the default), else the default. It applies to the
//     Gateway's HTTPS listeners of that port only.
//   - caCertificateRefs name ConfigMaps (group "", kind ConfigMap) holding PEM CA certificates
//     under the key ca.crt, in the Gateway's namespace or, with a ReferenceGrant, another one.
//     Every usable certificate of every usable reference is trusted. A reference that cannot be
//     used makes the port's listeners ResolvedRefs=False (InvalidCACertificateKind,
//     RefNotPermitted or InvalidCACertificateRef, for the first such reference); when none is
//     usable the listeners are not accepted (NoValidCACertificate) and not served, so no
//     connection skips the validation the Gateway asks for.
//   - AllowValidOnly (the default) requires a client certificate that chains to those CAs;
//     AllowInsecureFallback asks for one and lets any connection through, and the Gateway
//     carries InsecureFrontendValidationMode=True (ConfigurationChanged) while any of its
//     validations is in that mode.
//   - Every TLS connection policy of the port's server gets the validation, the fallback policy
//     for unknown server names included, so a client cannot avoid it with another SNI.

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const (
	kindConfigMap = "ConfigMap"
	// caCertKey is the ConfigMap key of the CA certificates, as the API specifies.
	caCertKey = "ca.crt"
)

// Caddy client authentication modes (modules/caddytls ClientAuthentication.Mode).
const (
	clientAuthRequireAndVerify = "require_and_verify"
	clientAuthRequest          = "request"
)

// ClientAuthentication is Caddy's TLS client authentication of a connection policy: Mode
// require_and_verify (a certificate signed by CA is required) or request (one is asked for and
// not verified).
type ClientAuthentication struct {
	CA   *CAPool `json:"ca,omitempty"`
	Mode string  `json:"mode"`
}

// CAPool is Caddy's inline CA pool source: base64 DER certificates.
type CAPool struct {
	Provider       string   `json:"provider"`
	TrustedCACerts []string `json:"trusted_ca_certs"`
}

// caLoader reads the CA certificates of ConfigMaps.
type caLoader map[types.NamespacedName]*corev1.ConfigMap

func newCALoader(list []corev1.ConfigMap) caLoader {
	l := make(caLoader, len(list))
	for i := range list {
		l[types.NamespacedName{Namespace: list[i].Namespace, Name: list[i].Name}] = &list[i]
	}
	return l
}

// load returns the ConfigMap's CA certificates as base64 DER, or why it cannot.
func (l caLoader) load(key types.NamespacedName) ([]string, error) {
	cm, found := l[key]
	if !found {
		return nil, fmt.Errorf("ConfigMap %s not found", key)
	}
	data, found := cm.Data[caCertKey]
	if !found {
		return nil, fmt.Errorf("ConfigMap %s has no key %s", key, caCertKey)
	}
	var out []string
	rest := []byte(data)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("ConfigMap %s: %s holds a certificate that does not parse: %v", key, caCertKey, err)
		}
		out = append(out, base64.StdEncoding.EncodeToString(block.Bytes))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ConfigMap %s: %s holds no PEM certificate", key, caCertKey)
	}
	return out, nil
}

// frontendValidation is the client certificate validation of the Gateway's HTTPS listeners on
// port; nil for none.
func frontendValidation(gw *gwv1.Gateway, port gwv1.PortNumber) *gwv1.FrontendTLSValidation {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return nil
	}
	f := gw.Spec.TLS.Frontend
	for i := range f.PerPort {
		if f.PerPort[i].Port == port {
			return f.PerPort[i].TLS.Validation
		}
	}
	return f.Default.Validation
}

// insecureFrontend says whether any of the Gateway's client certificate validations is in mode
// AllowInsecureFallback.
func insecureFrontend(gw *gwv1.Gateway) bool {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return false
	}
	f := gw.Spec.TLS.Frontend
	vs := []*gwv1.FrontendTLSValidation{f.Default.Validation}
	for i := range f.PerPort {
		vs = append(vs, f.PerPort[i].TLS.Validation)
	}
	for _, v := range vs {
		if v != nil && v.Mode == gwv1.AllowInsecureFallback {
			return true
		}
	}
	return false
}

// listenerClientAuth resolves the client certificate validation of an HTTPS listener: the
// Caddy client authentication (nil for none) and the listener's Accepted verdict; the first
// unusable reference sets *refs (when it is still OK).
func listenerClientAuth(gw *gwv1.Gateway, l *gwv1.Listener, grants referenceGrants, cas caLoader, refs *Verdict) (Verdict, *ClientAuthentication) {
	accepted := ok(string(gwv1.ListenerReasonAccepted), "listener accepted")
	v := frontendValidation(gw, l.Port)
	if v == nil {
		return accepted, nil
	}
	fail := func(reason gwv1.ListenerConditionReason, msg string) {
		if refs.OK {
			*refs = bad(string(reason), msg)
		}
	}
	var trusted []string
	for i, ref := range v.CACertificateRefs {
		if ref.Group != "" || ref.Kind != kindConfigMap {
			fail(gwv1.ListenerReasonInvalidCACertificateKind, fmt.Sprintf("caCertificateRefs[%d]: %s %s is not supported; CA certificates come from ConfigMaps (key %s)", i, groupKind(ref.Group, ref.Kind), ref.Name, caCertKey))
			continue
		}
		ns := gw.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if ns != gw.Namespace && !grants.allow(gwv1.GroupName, kindGateway, gw.Namespace, "", kindConfigMap, ns, string(ref.Name)) {
			fail(gwv1.ListenerReasonRefNotPermitted, fmt.Sprintf("caCertificateRefs[%d]: no ReferenceGrant in namespace %s allows Gateways of %s to use ConfigMap %s", i, ns, gw.Namespace, ref.Name))
			continue
		}
		certs, err := cas.load(types.NamespacedName{Namespace: ns, Name: string(ref.Name)})
		if err != nil {
			fail(gwv1.ListenerReasonInvalidCACertificateRef, fmt.Sprintf("caCertificateRefs[%d]: %v", i, err))
			continue
		}
		trusted = append(trusted, certs...)
	}
	if len(trusted) == 0 {
		return bad(string(gwv1.ListenerReasonNoValidCACertificate), "no caCertificateRef of the client certificate validation of port "+fmt.Sprint(l.Port)+" is usable: "+refs.Message), nil
	}
	mode := clientAuthRequireAndVerify
	if v.Mode == gwv1.AllowInsecureFallback {
		mode = clientAuthRequest
	}
	return accepted, &ClientAuthentication{CA: &CAPool{Provider: "inline", TrustedCACerts: trusted}, Mode: mode}
}

// groupKind spells a reference's kind with its group, "ConfigMap" for the core group.
func groupKind(group gwv1.Group, kind gwv1.Kind) string {
	if group == "" {
		return string(kind)
	}
	return string(kind) + "." + string(group)
}

// withClientAuth gives every connection policy of an HTTPS Gateway port the port's client
// authentication (its listeners share it: the API configures it per port).
func withClientAuth(policies []TLSConnectionPolicy, ls []*ListenerResult) []TLSConnectionPolicy {
	if len(ls) == 0 || ls[0].clientAuth == nil {
		return policies
	}
	for i := range policies {
		policies[i].ClientAuthentication = ls[0].clientAuth
	}
	return policies
}

// insecureFrontendCondition is the Gateway's InsecureFrontendValidationMode condition: True
// while a validation allows insecure fallback; nil (the condition is removed) otherwise.
func insecureFrontendCondition(g GatewayResult) *Verdict {
	if !g.InsecureFrontend {
		return nil
	}
	v := ok(string(gwv1.GatewayReasonConfigurationChanged),
		"spec.tls.frontend allows insecure fallback: clients without a valid certificate are let through (AllowInsecureFallback)")
	return &v
}
