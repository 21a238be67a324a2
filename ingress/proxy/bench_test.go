package proxy

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/plexus-net/plexus/ingress/translate"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// benchInput is paths Ingress paths: one Ingress per 10 paths, each with its own host, all to
// one Service whose endpoint list alternates with variant so every load is a real change.
func benchInput(paths, variant int) translate.Input {
	class := "plexus"
	in := translate.Input{IngressClasses: []networkingv1.IngressClass{{
		ObjectMeta: metav1.ObjectMeta{Name: "plexus"},
		Spec:       networkingv1.IngressClassSpec{Controller: controllerName},
	}}}
	for i := 0; i < paths/10; i++ {
		r := networkingv1.IngressRule{Host: fmt.Sprintf("h%d.example.com", i), IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}}
		for j := 0; j < 10; j++ {
			r.HTTP.Paths = append(r.HTTP.Paths, toService(networkingv1.PathTypePrefix, fmt.Sprintf("/p%d", j), "web"))
		}
		in.Ingresses = append(in.Ingresses, networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("ing-%d", i)},
			Spec:       networkingv1.IngressSpec{IngressClassName: &class, Rules: []networkingv1.IngressRule{r}},
		})
	}
	portName, proto, port, ready := "http", corev1.ProtocolTCP, int32(8080), true
	in.Services = []corev1.Service{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}}
	in.EndpointSlices = []discoveryv1.EndpointSlice{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		Ports:      []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{fmt.Sprintf("127.0.0.%d", 2+variant%2)}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
		},
	}}
	return in
}

// BenchmarkTranslateAndLoad is the config apply time of a route change at 100, 1,000 and 5,000
// Ingress paths: translate (reported as translate-ms), encoding, and loading into Caddy (load-ms),
// which provisions the new config, points the fronts at it and stops the old one; ns/op is the
// whole apply. heap-MiB-per-1000-routes is the live heap the loaded config holds, per 1,000 paths
// (heap after GC with the config loaded minus heap with an empty config loaded).
func BenchmarkTranslateAndLoad(b *testing.B) {
	var p Proxy
	b.Cleanup(func() { _ = p.Stop() })
	for _, paths := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("paths=%d", paths), func(b *testing.B) {
			opts := translate.Options{
				ControllerName: controllerName,
				HTTPListen:     listen(b, &p, freePort(b)),
				StorageDir:     b.TempDir(),
				LogLevel:       "ERROR",
			}
			inputs := []translate.Input{benchInput(paths, 0), benchInput(paths, 1)}
			var translateTime, loadTime time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				res := translate.Translate(inputs[i%2], opts)
				translateTime += time.Since(start)
				if res.Routes != paths {
					b.Fatalf("%d routes, want %d", res.Routes, paths)
				}
				r, err := p.Load(res.Config)
				if err != nil {
					b.Fatal(err)
				}
				if !r.Changed && i > 0 {
					b.Fatalf("load %d: unchanged", i)
				}
				loadTime += r.Duration
			}
			b.StopTimer()
			b.ReportMetric(float64(translateTime.Microseconds())/1000/float64(b.N), "translate-ms/op")
			b.ReportMetric(float64(loadTime.Microseconds())/1000/float64(b.N), "load-ms/op")
			empty := liveHeap(b, &p, translate.Translate(benchInput(0, 0), opts).Config)
			full := liveHeap(b, &p, translate.Translate(benchInput(paths, 0), opts).Config)
			b.ReportMetric((full-empty)/float64(paths)*1000/(1<<20), "heap-MiB-per-1000-routes")
		})
	}
}

// liveHeap loads cfg and returns the live heap after a full collection, in bytes.
func liveHeap(b *testing.B, p *Proxy, cfg translate.Config) float64 {
	b.Helper()
	if _, err := p.Load(cfg); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc)
}
