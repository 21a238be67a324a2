package translate

// The Gateway's client certificate towards TLS backends (spec.tls.backend.clientCertificateRef,
// GatewayBackendClientCertificate): every backend a BackendTLSPolicy makes TLS, reached from a
// route of the Gateway, is presented the certificate of a kubernetes.io/tls Secret (in the
// Gateway's namespace, or another with a ReferenceGrant). The Gateway's ResolvedRefs condition
// (present only when the field is set) says whether it could be used: RefNotPermitted or
// InvalidClientCertificateRef when not, and backends then get no certificate.

import (
	"crypto/tls"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ClientCertificate is a certificate chain and key a transport presents to upstreams
// (plexus_http).
type ClientCertificate struct {
	CertificatePEM string `json:"certificate_pem"`
	KeyPEM         string `json:"key_pem"`
}

// backendClientCertificate resolves the Gateway's spec.tls.backend.clientCertificateRef: the
// certificate (nil for none) and the Gateway's ResolvedRefs verdict (nil when the field is unset).
func backendClientCertificate(gw *gwv1.Gateway, grants referenceGrants, secrets *secretLoader) (*ClientCertificate, *Verdict) {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Backend == nil || gw.Spec.TLS.Backend.ClientCertificateRef == nil {
		return nil, nil
	}
	ref := gw.Spec.TLS.Backend.ClientCertificateRef
	fail := func(reason gwv1.GatewayConditionReason, msg string) (*ClientCertificate, *Verdict) {
		v := bad(string(reason), "spec.tls.backend.clientCertificateRef: "+msg)
		return nil, &v
	}
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != kindSecret) {
		return fail(gwv1.GatewayReasonInvalidClientCertificateRef, "only Secrets of type kubernetes.io/tls are supported")
	}
	ns := gw.Namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if ns != gw.Namespace && !grants.allow(gwv1.GroupName, kindGateway, gw.Namespace, "", kindSecret, ns, string(ref.Name)) {
		return fail(gwv1.GatewayReasonRefNotPermitted, fmt.Sprintf("no ReferenceGrant in namespace %s allows Gateways of %s to use Secret %s", ns, gw.Namespace, ref.Name))
	}
	key := types.NamespacedName{Namespace: ns, Name: string(ref.Name)}
	s, found := secrets.secrets[key]
	if !found {
		return fail(gwv1.GatewayReasonInvalidClientCertificateRef, fmt.Sprintf("TLS Secret %s not found", key))
	}
	certPEM, keyPEM := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fail(gwv1.GatewayReasonInvalidClientCertificateRef, fmt.Sprintf("TLS Secret %s: %v", key, err))
	}
	v := ok(string(gwv1.GatewayReasonResolvedRefs), "the backend client certificate is resolved")
	return &ClientCertificate{CertificatePEM: string(certPEM), KeyPEM: string(keyPEM)}, &v
}
