package translate

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Input is everything a translation reads. The controller lists these objects (any order; the
// translation sorts) and passes them in; objects unrelated to the served Ingresses are ignored.
type Input struct {
	IngressClasses []networkingv1.IngressClass
	Ingresses      []networkingv1.Ingress
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
	// Secrets holds the TLS Secrets referenced by the Ingresses and Options.DefaultTLSSecret
	// (data keys tls.crt and tls.key).
	Secrets []corev1.Secret
	// FallbackCertificate is served as the default certificate when Options.DefaultTLSSecret is
	// unset or unusable, typically a self-signed one the controller made at start (ingress/certs).
	FallbackCertificate *PEMPair

	// Gateway API objects (served when Options.GatewayControllerName is set; see gateway.go).
	GatewayClasses  []gwv1.GatewayClass
	Gateways        []gwv1.Gateway
	HTTPRoutes      []gwv1.HTTPRoute
	ReferenceGrants []gwv1.ReferenceGrant
	// Namespaces are read for the listeners' allowedRoutes namespace selectors.
	Namespaces []corev1.Namespace
	// ConfigMaps are read for the CA certificates of Gateways' client certificate validation
	// (spec.tls.frontend caCertificateRefs).
	ConfigMaps []corev1.ConfigMap
	// BackendTLSPolicies configure TLS to the Services of Gateway routes (gateway_backendtls.go).
	BackendTLSPolicies []gwv1.BackendTLSPolicy
}

// PEMPair is a certificate chain and its private key, PEM encoded.
type PEMPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// Options are the controller's settings; the zero value of each field but ControllerName has a
// default (see Defaults).
type Options struct {
	// ControllerName is the spec.controller of the IngressClasses served, e.g. plexus.dev/ingress.
	ControllerName string
	// GatewayControllerName is the spec.controllerName of the GatewayClasses served, e.g.
	// plexus.dev/gateway; empty serves no Gateway API objects.
	GatewayControllerName string
	// GatewayServiceNamespace is the controller's namespace, where the per-Gateway Services live
	// (gateway_service.go); only Services there are read for the Gateways' internal ports. Empty
	// reads them from every namespace (offline translation, tests).
	GatewayServiceNamespace string
	// GatewayPortFirst and GatewayPortLast bound the internal container ports allocated to
	// Gateway listener ports (DefaultGatewayPortFirst, DefaultGatewayPortLast).
	GatewayPortFirst int32
	GatewayPortLast  int32
	// HTTPListen and HTTPSListen are the listen addresses, e.g. ":80" and ":443".
	HTTPListen  string
	HTTPSListen string
	// HTTPSRedirectPort is the port HTTP→HTTPS redirects point to; 443 leaves it out of the URL.
	HTTPSRedirectPort int
	// DefaultTLSSecret is served for TLS hosts without a secret of their own and for unknown SNI.
	DefaultTLSSecret *types.NamespacedName
	// StorageDir is a writable directory for Caddy's TLS state (nothing is issued there).
	StorageDir string
	// LogLevel of Caddy's logger (DEBUG, INFO, WARN, ERROR).
	LogLevel string
	// Retries is how many other endpoints a request tries after a failed connection.
	Retries int
	// TryDuration bounds the time spent retrying, TryInterval is the pause between tries and
	// DialTimeout the time a connection to an endpoint may take (Caddy durations, e.g. "2s").
	// TryDuration and TryInterval default to none: with a try duration Caddy waits between
	// tries (250ms unless set), and it gives up a waiting request when the request's config is
	// replaced, which turned a reload during a rollout into a 502. Retries bounds the tries
	// instead, they follow each other at once, and failed endpoints are skipped (FailDuration).
	TryDuration string
	TryInterval string
	DialTimeout string
	// FailDuration is how long an endpoint that failed a request is skipped.
	FailDuration string
	// GracePeriod bounds how long a replaced config waits for in-flight requests.
	GracePeriod string
	// Metrics makes the routes count requests, latency and upstream errors (ingress/proxy
	// Metrics); off by default.
	Metrics bool
}

// Defaults returns o with every unset field set to its default.
func (o Options) Defaults() Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.HTTPListen, ":80")
	def(&o.HTTPSListen, ":443")
	if o.HTTPSRedirectPort == 0 {
		o.HTTPSRedirectPort = 443
	}
	def(&o.StorageDir, "/var/lib/plexus-ingress")
	def(&o.LogLevel, "INFO")
	if o.Retries == 0 {
		o.Retries = 2
	}
	def(&o.DialTimeout, "2s")
	def(&o.FailDuration, "5s")
	def(&o.GracePeriod, "30s")
	if o.GatewayPortFirst == 0 && o.GatewayPortLast == 0 {
		o.GatewayPortFirst, o.GatewayPortLast = DefaultGatewayPortFirst, DefaultGatewayPortLast
	}
	return o
}

// Problem is something wrong with one Ingress that the controller reports as a Warning Event on
// it. Ingress is zero for problems of the controller's own settings (the default TLS secret).
type Problem struct {
	Ingress types.NamespacedName
	Reason  string
	Message string
}

// Reasons of Problems (Event reasons).
const (
	ReasonServiceNotFound     = "ServiceNotFound"
	ReasonServicePortNotFound = "ServicePortNotFound"
	ReasonNoReadyEndpoints    = "NoReadyEndpoints"
	ReasonBackendUnsupported  = "BackendUnsupported"
	ReasonSecretNotFound      = "SecretNotFound"
	ReasonSecretInvalid       = "SecretInvalid"
	ReasonNoCertificate       = "NoCertificate"
	ReasonPathConflict        = "PathConflict"
	ReasonTLSConflict         = "TLSConflict"
	ReasonDefaultBackend      = "DefaultBackendConflict"
	ReasonInvalidPath         = "InvalidPath"
)

// Result is the outcome of a translation.
type Result struct {
	// Config is the Caddy configuration; JSON() gives the bytes to load.
	Config Config
	// Problems, sorted by Ingress, reason and message.
	Problems []Problem
	// Ingresses are the Ingresses of the served classes, sorted: the controller writes their
	// status.loadBalancer.
	Ingresses []types.NamespacedName
	// Routes counts the path routes (Ingress paths after conflicts) in the config.
	Routes int
	// Gateway is the Gateway API analysis (accepted classes, listeners, attached routes), from
	// which the controller computes the Gateway API statuses (gateway_status.go).
	Gateway GatewayAPI
}
