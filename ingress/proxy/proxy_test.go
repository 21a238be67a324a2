package proxy

import (
	"crypto/x509"
	"net/http"
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
	// A connection the client dialled but never sent a request on stays "new" to the server, and
	// http.Server.Shutdown waits 5 s before it counts such a connection idle: close them before Stop.
	t.Cleanup(cl.closeIdle)

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

	// 100 config changes under load lose no request: clients on keep-alive connections (POST,
	// which Go's transport never retries, so a connection closed under a request would show) and
	// clients opening a fresh connection per request (GET), over HTTP and HTTPS.
	t.Run("reload under load", func(t *testing.T) {
		var ok, failed, reused, fresh atomic.Int64
		var firstFailure atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		keepAlive := newClient(s.httpPort, s.httpsPort, s.roots)
		oneShot := newClient(s.httpPort, s.httpsPort, s.roots)
		t.Cleanup(keepAlive.closeIdle)
		t.Cleanup(oneShot.closeIdle)
		oneShot.c.Transport.(*http.Transport).DisableKeepAlives = true
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				scheme, host, want := "http", "plain.test", "b /p"
				if w%2 == 1 {
					scheme, host, want = "https", "shop.test", "a /p"
				}
				c, method := keepAlive, http.MethodPost
				if w%4 >= 2 {
					c, method = oneShot, http.MethodGet
				}
				for {
					select {
					case <-stop:
						return
					default:
					}
					got, err := c.do(method, scheme, host, "/p")
					if got.reused {
						reused.Add(1)
					} else {
						fresh.Add(1)
					}
					if err == nil && got.status == 200 && got.body == want {
						ok.Add(1)
						continue
					}
					failed.Add(1)
					if err != nil {
						firstFailure.CompareAndSwap(nil, method+" "+scheme+": "+err.Error())
					} else {
						firstFailure.CompareAndSwap(nil, method+" "+scheme+": "+itoa(got.status)+" "+got.body)
					}
				}
			}(w)
		}
		const reloads = 100
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
		sent := ok.Load() + failed.Load()
		t.Logf("%d reloads (mean %v) under load: %d requests (%d on reused connections, %d on fresh ones), %d ok, %d failed",
			reloads, total/reloads, sent, reused.Load(), fresh.Load(), ok.Load(), failed.Load())
		if failed.Load() != 0 {
			t.Errorf("%d of %d requests failed during the reloads; first: %v", failed.Load(), sent, firstFailure.Load())
		}
		if ok.Load() < reloads*20 || reused.Load() == 0 || fresh.Load() == 0 {
			t.Errorf("only %d requests went through during the reloads (%d reused, %d fresh connections)", ok.Load(), reused.Load(), fresh.Load())
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
