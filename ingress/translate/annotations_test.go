package translate

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// annotated is an Ingress of its own host with annotations.
func annotated(name string, ageMinutes int, ann map[string]string, paths ...networkingv1.HTTPIngressPath) networkingv1.Ingress {
	i := ing("shop", name, ageMinutes, rule(name+".example.com", paths...))
	i.Annotations = ann
	return i
}

func TestNginxAnnotations(t *testing.T) {
	tlsHost := func(i networkingv1.Ingress) networkingv1.Ingress {
		i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{i.Spec.Rules[0].Host}, SecretName: "default-tls"}}
		return i
	}
	def := testCert(t, "default.example.com")
	in := baseInput(
		// Capture groups: the ingress-nginx idiom that strips a prefix.
		annotated("capture", 0, map[string]string{
			"nginx.ingress.kubernetes.io/rewrite-target": "/$2",
			"nginx.ingress.kubernetes.io/use-regex":      "true",
		}, path(networkingv1.PathTypeImplementationSpecific, "/api(/|$)(.*)", svcPort("api", 8080)),
			exact("/exact", svcPort("web", 80))),
		// Without groups the whole path becomes the target, as in ingress-nginx.
		annotated("whole", 1, map[string]string{"plexus.dev/rewrite-target": "/index.html"},
			prefix("/app", svcPort("web", 80))),
		annotated("moved", 2, map[string]string{
			"nginx.ingress.kubernetes.io/permanent-redirect":      "https://new.example.com/",
			"nginx.ingress.kubernetes.io/permanent-redirect-code": "308",
		}, prefix("/", svcPort("web", 80))),
		annotated("temp", 3, map[string]string{"nginx.ingress.kubernetes.io/temporal-redirect": "/maintenance"},
			prefix("/", svcPort("nope", 80))), // a redirect needs no backend
		tlsHost(annotated("no-redirect", 4, map[string]string{"nginx.ingress.kubernetes.io/ssl-redirect": "false"},
			prefix("/", svcPort("web", 80)))),
		annotated("forced", 5, map[string]string{"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"},
			prefix("/", svcPort("web", 80))),
		annotated("backends", 6, map[string]string{
			"nginx.ingress.kubernetes.io/backend-protocol":      "GRPC",
			"nginx.ingress.kubernetes.io/proxy-connect-timeout": "5",
			"nginx.ingress.kubernetes.io/proxy-read-timeout":    "120s",
			"plexus.dev/proxy-send-timeout":                     "30",
			"nginx.ingress.kubernetes.io/proxy-send-timeout":    "10", // ours wins
		}, prefix("/", svcPort("api", 8080))),
		annotated("secure", 7, map[string]string{"nginx.ingress.kubernetes.io/backend-protocol": "https"},
			prefix("/", svcPort("web", 80))),
		annotated("headers", 8, map[string]string{
			"nginx.ingress.kubernetes.io/upstream-vhost":     "internal.example.com",
			"nginx.ingress.kubernetes.io/x-forwarded-prefix": "/shop",
			"plexus.dev/request-headers":                     "X-Team: shop\nX-Env: prod",
			"plexus.dev/response-headers":                    "Strict-Transport-Security: max-age=63072000",
		}, prefix("/", svcPort("web", 80))),
		annotated("unsupported", 9, map[string]string{
			"nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers \"X: y\";",
			"nginx.ingress.kubernetes.io/auth-url":              "http://auth/",
			"nginx.ingress.kubernetes.io/backend-protocol":      "AJP",
			"nginx.ingress.kubernetes.io/proxy-read-timeout":    "soon",
			"plexus.dev/request-headers":                        "no colon here",
			"example.com/unrelated":                             "kept quiet",
		}, prefix("/", svcPort("web", 80))),
	)
	in.Secrets = append(in.Secrets, tlsSecret("shop", "default-tls", def.CertPEM, def.KeyPEM))
	assertGolden(t, "nginx_annotations", Translate(in, opts))
}
