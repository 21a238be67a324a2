package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/plexus-net/plexus/ingress/certs"
	"github.com/plexus-net/plexus/internal/golden"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden (same as UPDATE_GOLDEN=1)")

// goldenView is what a golden file shows: the problems, the served Ingresses and the config with
// every PEM replaced by its tag, so the files do not change with freshly generated keys.
type goldenView struct {
	Problems  []string `json:"problems"`
	Ingresses []string `json:"ingresses"`
	Routes    int      `json:"routes"`
	Config    Config   `json:"config"`
}

func assertGolden(t *testing.T, name string, res Result) {
	t.Helper()
	if *update {
		t.Setenv(golden.UpdateEnv, "1")
	}
	v := goldenView{Routes: res.Routes, Config: res.Config}
	for _, p := range res.Problems {
		v.Problems = append(v.Problems, p.Ingress.String()+" "+p.Reason+": "+p.Message)
	}
	for _, i := range res.Ingresses {
		v.Ingresses = append(v.Ingresses, i.String())
	}
	if tlsApp := v.Config.Apps.TLS; tlsApp != nil && tlsApp.Certificates != nil {
		masked := *tlsApp
		masked.Certificates = &Certificates{}
		for _, c := range tlsApp.Certificates.LoadPEM {
			masked.Certificates.LoadPEM = append(masked.Certificates.LoadPEM, PEMCertificate{
				Certificate: "<certificate " + c.Tags[0] + ">", Key: "<key " + c.Tags[0] + ">", Tags: c.Tags,
			})
		}
		v.Config.Apps.TLS = &masked
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", name+".golden"), append(b, '\n'), "./ingress/translate/ -run "+t.Name())
}

// twoBackends is the Services and endpoints most cases route to: web (port 80 "http" → 8080,
// two ready pods and one not ready) and api (port 8080 unnamed → 9090, one pod).
func twoBackends() ([]corev1.Service, []discoveryv1.EndpointSlice) {
	return []corev1.Service{service("shop", "web", "http", 80, 8080), service("shop", "api", "", 8080, 9090)},
		[]discoveryv1.EndpointSlice{
			slice("shop", "web", "web-abc", "http", 8080, endpoint{"10.0.1.2", true}, endpoint{"10.0.2.3", true}, endpoint{"10.0.3.4", false}),
			slice("shop", "api", "api-xyz", "", 9090, endpoint{"10.0.1.9", true}),
		}
}

func baseInput(ingresses ...networkingv1.Ingress) Input {
	svcs, slices := twoBackends()
	return Input{
		IngressClasses: []networkingv1.IngressClass{ingressClass("plexus", false)},
		Ingresses:      ingresses,
		Services:       svcs,
		EndpointSlices: slices,
	}
}

var opts = Options{ControllerName: controller}

func TestHostsAndPathTypes(t *testing.T) {
	in := baseInput(ing("shop", "site", 0,
		rule("shop.example.com",
			prefix("/", svcNamedPort("web", "http")),
			exact("/api", svcPort("api", 8080)),
			prefix("/api/v1/", svcPort("api", 8080)),
			path(networkingv1.PathTypeImplementationSpecific, "/static", svcPort("web", 80)),
		),
		rule("*.shop.example.com", prefix("/", svcPort("web", 80))),
		rule("", prefix("/healthz", svcPort("api", 8080))),
	))
	assertGolden(t, "hosts_and_path_types", Translate(in, opts))
}

func TestPrecedenceAcrossIngresses(t *testing.T) {
	// "old" is older than "new": its /app wins the conflict, and "/app/" is the same Prefix path.
	// new's Exact /app does not conflict with a Prefix /app and is ordered before it.
	in := baseInput(
		ing("shop", "new", 10, rule("shop.example.com",
			prefix("/app/", svcPort("api", 8080)),
			exact("/app", svcPort("api", 8080)),
			prefix("/app/deep/er", svcPort("api", 8080)),
		)),
		ing("shop", "old", 5, rule("shop.example.com",
			prefix("/app", svcPort("web", 80)),
			prefix("/", svcPort("web", 80)),
		)),
		// Same age as "old": namespace/name decides (a-team/same-age is older than shop/old).
		ing("a-team", "same-age", 5, rule("shop.example.com", prefix("/", svcPort("web", 80)))),
	)
	in.Services = append(in.Services, service("a-team", "web", "http", 80, 8080))
	assertGolden(t, "precedence_across_ingresses", Translate(in, opts))
}

func TestDefaultBackend(t *testing.T) {
	first := ing("shop", "first", 1, rule("shop.example.com", exact("/only", svcPort("api", 8080))))
	first.Spec.DefaultBackend = ptr(svcPort("web", 80))
	second := ing("shop", "second", 2)
	second.Spec.DefaultBackend = ptr(svcPort("api", 8080))
	assertGolden(t, "default_backend", Translate(baseInput(first, second), opts))
}

func TestMissingBackendsAnswer503(t *testing.T) {
	in := baseInput(ing("shop", "broken", 0, rule("shop.example.com",
		prefix("/ok", svcPort("web", 80)),
		prefix("/no-service", svcPort("nope", 80)),
		prefix("/no-port", svcPort("web", 81)),
		prefix("/no-port-name", svcNamedPort("web", "grpc")),
		prefix("/no-endpoints", svcPort("idle", 80)),
		prefix("/external", svcPort("elsewhere", 80)),
		prefix("/resource", networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "b"}}),
		prefix("relative", svcPort("web", 80)),
	)))
	ext := service("shop", "elsewhere", "", 80, 80)
	ext.Spec.Type = corev1.ServiceTypeExternalName
	ext.Spec.ExternalName = "example.org"
	in.Services = append(in.Services, service("shop", "idle", "", 80, 80), ext)
	in.EndpointSlices = append(in.EndpointSlices, slice("shop", "idle", "idle-1", "", 80, endpoint{"10.0.9.9", false}))
	assertGolden(t, "missing_backends", Translate(in, opts))
}

func TestEndpointsFromSlices(t *testing.T) {
	// Two slices of one Service, one duplicate address, an IPv6 slice, a slice of another port
	// and a slice without the service-name label (ignored).
	svc := service("shop", "multi", "http", 80, 8080)
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP})
	v6 := slice("shop", "multi", "multi-v6", "http", 8080, endpoint{"fd00:10::5", true})
	v6.AddressType = discoveryv1.AddressTypeIPv6
	orphan := slice("shop", "multi", "orphan", "http", 8080, endpoint{"10.9.9.9", true})
	orphan.Labels = nil
	in := Input{
		IngressClasses: []networkingv1.IngressClass{ingressClass("plexus", false)},
		Ingresses:      []networkingv1.Ingress{ing("shop", "multi", 0, rule("multi.example.com", prefix("/", svcNamedPort("multi", "http"))))},
		Services:       []corev1.Service{svc},
		EndpointSlices: []discoveryv1.EndpointSlice{
			slice("shop", "multi", "multi-a", "http", 8080, endpoint{"10.0.0.2", true}, endpoint{"10.0.0.1", true}),
			slice("shop", "multi", "multi-b", "http", 8080, endpoint{"10.0.0.1", true}, endpoint{"10.0.0.3", true}),
			slice("shop", "multi", "multi-metrics", "metrics", 9100, endpoint{"10.0.0.7", true}),
			v6, orphan,
		},
	}
	assertGolden(t, "endpoints_from_slices", Translate(in, opts))
}

func TestClassSelection(t *testing.T) {
	mk := func(name string, class *string, annotation string) networkingv1.Ingress {
		i := ing("shop", name, 0, rule(name+".example.com", prefix("/", svcPort("web", 80))))
		i.Spec.IngressClassName = class
		if annotation != "" {
			i.Annotations = map[string]string{annotationIngressClass: annotation}
		}
		return i
	}
	other := "nginx"
	plexus := "plexus"
	nginxClass := ingressClass("nginx", false)
	nginxClass.Spec.Controller = "k8s.io/ingress-nginx"
	in := baseInput(
		mk("by-name", &plexus, ""),
		mk("by-annotation", nil, "plexus"),
		mk("no-class", nil, ""),
		mk("other-class", &other, ""),
		mk("unknown-class", ptr("missing"), ""),
	)
	in.IngressClasses = []networkingv1.IngressClass{ingressClass("plexus", false), nginxClass}
	t.Run("not default", func(t *testing.T) {
		assertGolden(t, "class_not_default", Translate(in, opts))
	})
	in.IngressClasses[0] = ingressClass("plexus", true)
	t.Run("default", func(t *testing.T) {
		res := Translate(in, opts)
		want := []types.NamespacedName{{Namespace: "shop", Name: "by-annotation"}, {Namespace: "shop", Name: "by-name"}, {Namespace: "shop", Name: "no-class"}}
		if !equalNames(res.Ingresses, want) {
			t.Errorf("served %v, want %v", res.Ingresses, want)
		}
	})
}

// testCerts are made once: golden files mask the PEM, the names are what matters.
var testCerts = map[string]PEMPair{}

func testCert(t *testing.T, names ...string) PEMPair {
	t.Helper()
	if c, ok := testCerts[names[0]]; ok {
		return c
	}
	c, k, err := certs.SelfSigned(names, epoch, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	testCerts[names[0]] = PEMPair{CertPEM: c, KeyPEM: k}
	return testCerts[names[0]]
}

func TestTLS(t *testing.T) {
	shop := testCert(t, "shop.example.com")
	wild := testCert(t, "*.wild.example.com")
	def := testCert(t, "default.example.com")
	site := ing("shop", "site", 0,
		rule("shop.example.com", prefix("/", svcPort("web", 80))),
		rule("a.wild.example.com", prefix("/", svcPort("api", 8080))),
		rule("*.wild.example.com", prefix("/", svcPort("web", 80))),
		rule("plain.example.com", prefix("/", svcPort("web", 80))),
		rule("", prefix("/", svcPort("web", 80))),
	)
	site.Spec.TLS = []networkingv1.IngressTLS{
		{Hosts: []string{"shop.example.com"}, SecretName: "shop-tls"},
		{Hosts: []string{"*.wild.example.com"}, SecretName: "wild-tls"},
		{Hosts: []string{"a.wild.example.com"}}, // no secret: the default certificate
	}
	conflicting := ing("shop", "later", 3, rule("shop.example.com", exact("/later", svcPort("web", 80))))
	conflicting.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"shop.example.com"}, SecretName: "wild-tls"}}
	broken := ing("shop", "broken", 4,
		rule("missing.example.com", prefix("/", svcPort("web", 80))),
		rule("invalid.example.com", prefix("/", svcPort("web", 80))),
	)
	broken.Spec.TLS = []networkingv1.IngressTLS{
		{Hosts: []string{"missing.example.com"}, SecretName: "missing-tls"},
		{Hosts: []string{"invalid.example.com"}, SecretName: "invalid-tls"},
	}
	allHosts := ing("other", "all-hosts", 5, rule("other.example.com", prefix("/", svcPort("web", 80))))
	allHosts.Spec.TLS = []networkingv1.IngressTLS{{SecretName: "other-tls"}} // no hosts: every rule host
	in := baseInput(site, conflicting, broken, allHosts)
	in.Services = append(in.Services, service("other", "web", "http", 80, 8080))
	other := testCert(t, "other.example.com")
	in.Secrets = []corev1.Secret{
		tlsSecret("shop", "shop-tls", shop.CertPEM, shop.KeyPEM),
		tlsSecret("shop", "wild-tls", wild.CertPEM, wild.KeyPEM),
		tlsSecret("shop", "invalid-tls", shop.CertPEM, def.KeyPEM), // key of another certificate
		tlsSecret("ingress", "default-tls", def.CertPEM, def.KeyPEM),
		tlsSecret("other", "other-tls", other.CertPEM, other.KeyPEM),
	}
	o := opts
	o.DefaultTLSSecret = &types.NamespacedName{Namespace: "ingress", Name: "default-tls"}
	o.HTTPSRedirectPort = 8443
	t.Run("default secret", func(t *testing.T) { assertGolden(t, "tls_default_secret", Translate(in, o)) })

	// Without a usable default secret the fallback certificate is the default; without that
	// either, hosts without a certificate of their own answer 503 over plain HTTP.
	o.DefaultTLSSecret = &types.NamespacedName{Namespace: "ingress", Name: "gone"}
	fallback := testCert(t, "fallback.invalid")
	in.FallbackCertificate = &fallback
	t.Run("fallback certificate", func(t *testing.T) { assertGolden(t, "tls_fallback_certificate", Translate(in, o)) })
	in.FallbackCertificate = nil
	t.Run("no default", func(t *testing.T) { assertGolden(t, "tls_no_default", Translate(in, o)) })
}

func TestNoCertificatesNoHTTPSServer(t *testing.T) {
	res := Translate(baseInput(ing("shop", "site", 0, rule("shop.example.com", prefix("/", svcPort("web", 80))))), opts)
	if _, ok := res.Config.Apps.HTTP.Servers[ServerHTTPS]; ok || res.Config.Apps.TLS.Certificates != nil {
		t.Errorf("an HTTPS server or certificates without any certificate: %+v", res.Config.Apps)
	}
	assertGolden(t, "no_certificates", res)
}

// TestDeterministic shuffles every input list: the config bytes must not change.
func TestDeterministic(t *testing.T) {
	shop := testCert(t, "shop.example.com")
	a := ing("shop", "a", 1, rule("shop.example.com", prefix("/a", svcPort("web", 80)), exact("/b", svcPort("api", 8080))))
	a.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"shop.example.com"}, SecretName: "shop-tls"}}
	b := ing("shop", "b", 1, rule("*.example.com", prefix("/", svcPort("web", 80))), rule("", prefix("/x", svcPort("nope", 1))))
	c := ing("shop", "c", 0, rule("shop.example.com", prefix("/a", svcPort("api", 8080))))
	in := baseInput(a, b, c)
	in.Secrets = []corev1.Secret{tlsSecret("shop", "shop-tls", shop.CertPEM, shop.KeyPEM), tlsSecret("shop", "unused", shop.CertPEM, shop.KeyPEM)}
	in.EndpointSlices = append(in.EndpointSlices, slice("shop", "web", "web-2", "http", 8080, endpoint{"10.0.0.1", true}))
	want, err := Translate(in, opts).Config.JSON()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		rng.Shuffle(len(in.Ingresses), func(i, j int) { in.Ingresses[i], in.Ingresses[j] = in.Ingresses[j], in.Ingresses[i] })
		rng.Shuffle(len(in.EndpointSlices), func(i, j int) {
			in.EndpointSlices[i], in.EndpointSlices[j] = in.EndpointSlices[j], in.EndpointSlices[i]
		})
		rng.Shuffle(len(in.Services), func(i, j int) { in.Services[i], in.Services[j] = in.Services[j], in.Services[i] })
		rng.Shuffle(len(in.Secrets), func(i, j int) { in.Secrets[i], in.Secrets[j] = in.Secrets[j], in.Secrets[i] })
		got, err := Translate(in, opts).Config.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("shuffle %d changed the config: %s", i, golden.FirstDiff(string(got), string(want)))
		}
	}
}

func equalNames(a, b []types.NamespacedName) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }
