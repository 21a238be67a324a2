package controller_test

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/plexus-net/plexus/ingress/certs"
	"github.com/plexus-net/plexus/ingress/controller"
	"github.com/plexus-net/plexus/ingress/translate"
	"github.com/plexus-net/plexus/internal/controlplane"
)

const controllerName = "plexus.dev/ingress"

// recordingLoader keeps every config it is given, as Caddy JSON.
type recordingLoader struct {
	mu      sync.Mutex
	configs []string
}

func (l *recordingLoader) Load(cfg translate.Config) (controller.LoadOutcome, error) {
	b, err := cfg.JSON()
	if err != nil {
		return controller.LoadOutcome{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	changed := len(l.configs) == 0 || l.configs[len(l.configs)-1] != string(b)
	if changed {
		l.configs = append(l.configs, string(b))
	}
	return controller.LoadOutcome{Changed: changed}, nil
}

func (l *recordingLoader) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.configs) == 0 {
		return ""
	}
	return l.configs[len(l.configs)-1]
}

// env starts a real API server and the controller against it, and returns an admin client.
func env(t *testing.T) (client.Client, *recordingLoader, *controller.ConfigReconciler) {
	t.Helper()
	ctrllog.SetLogger(logr.Discard())
	dir := controlplane.AssetsDir()
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		t.Fatalf("no kube-apiserver in %s: run `make controlplane` first (%v)", dir, err)
	}
	e := &envtest.Environment{BinaryAssetsDirectory: dir}
	cfg, err := e.Start()
	if err != nil {
		t.Fatalf("start the API server: %v", err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: controller.NewScheme(), Cache: controller.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	loader := &recordingLoader{}
	cert, key, err := certs.SelfSigned([]string{"plexus-ingress.test"}, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := controller.Setup(mgr, controller.Settings{
		Options:        translate.Options{ControllerName: controllerName},
		Fallback:       &translate.PEMPair{CertPEM: cert, KeyPEM: key},
		PublishService: types.NamespacedName{Namespace: "plexus-system", Name: "plexus-ingress"},
		Loader:         loader,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c, loader, cr
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestControllerServesStatusAndProblems runs the controller against a real API server: the config
// it loads follows the Ingress, the Service's ready endpoints and the TLS Secret; Secrets of other
// types never reach it; a served Ingress publishes the controller Service's address; a missing
// backend Service is one Warning Event on its Ingress, not one per reconcile.
func TestControllerServesStatusAndProblems(t *testing.T) {
	c, loader, cr := env(t)
	ctx := context.Background()
	create := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	for _, ns := range []string{"plexus-system", "web"} {
		create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	create(&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: networkingv1.IngressClassSpec{Controller: controllerName}})
	create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "plexus-system", Name: "plexus-ingress"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "app"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	create(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "app-1",
		Labels: map[string]string{discoveryv1.LabelServiceName: "app"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}})
	// A Secret that is not of type TLS, under a name an Ingress asks for: it must not be served.
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "opaque"}, Type: corev1.SecretTypeOpaque,
		StringData: map[string]string{"tls.crt": "not-for-the-controller", "tls.key": "secret-value-xyz"}})
	prefix := networkingv1.PathTypePrefix
	backend := func(svc string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: "http"}}}
	}
	create(&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "site"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("plexus"), Rules: []networkingv1.IngressRule{{Host: "app.example.test",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/", PathType: &prefix, Backend: backend("app")},
				{Path: "/missing", PathType: &prefix, Backend: backend("nowhere")}}}}}},
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"app.example.test"}, SecretName: "opaque"}}}})

	eventually(t, "the loaded config routes app.example.test to the ready endpoint", func() error {
		cfg := loader.last()
		if !strings.Contains(cfg, "app.example.test") || !strings.Contains(cfg, "10.244.1.7:8080") {
			return fmt.Errorf("last config: %s", cfg)
		}
		return nil
	})
	if !cr.Loaded() {
		t.Fatal("a config was loaded but the replica does not say so")
	}
	if strings.Contains(loader.last(), "secret-value-xyz") || strings.Contains(loader.last(), "not-for-the-controller") {
		t.Fatal("an Opaque Secret reached the proxy's config")
	}

	svc := &corev1.Service{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "plexus-system", Name: "plexus-ingress"}, svc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Ingress publishes the controller Service's cluster IP", func() error {
		ing := &networkingv1.Ingress{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: "web", Name: "site"}, ing); err != nil {
			return err
		}
		if got := ing.Status.LoadBalancer.Ingress; len(got) != 1 || got[0].IP != svc.Spec.ClusterIP {
			return fmt.Errorf("status.loadBalancer %+v, want %s", got, svc.Spec.ClusterIP)
		}
		return nil
	})

	// The endpoint moves: the config follows without any change to the Ingress.
	sl := &discoveryv1.EndpointSlice{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "web", Name: "app-1"}, sl); err != nil {
		t.Fatal(err)
	}
	sl.Endpoints[0].Addresses = []string{"10.244.2.9"}
	if err := c.Update(ctx, sl); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the config follows the EndpointSlice", func() error {
		if cfg := loader.last(); !strings.Contains(cfg, "10.244.2.9:8080") || strings.Contains(cfg, "10.244.1.7") {
			return fmt.Errorf("last config: %s", cfg)
		}
		return nil
	})

	warnings := func() (map[string]int, error) {
		var l eventsv1.EventList
		if err := c.List(ctx, &l, client.InNamespace("web")); err != nil {
			return nil, err
		}
		out := map[string]int{}
		for _, e := range l.Items {
			if e.Regarding.Name == "site" && e.Type == corev1.EventTypeWarning {
				out[e.Reason] += 1 + int(ptr.Deref(e.Series, eventsv1.EventSeries{}).Count)
			}
		}
		return out, nil
	}
	eventually(t, "a Warning Event names the missing Service", func() error {
		w, err := warnings()
		if err != nil {
			return err
		}
		if w[translate.ReasonServiceNotFound] == 0 || w[translate.ReasonSecretNotFound]+w[translate.ReasonSecretInvalid] == 0 {
			return fmt.Errorf("warnings %+v, want ServiceNotFound and the Opaque Secret refused", w)
		}
		return nil
	})
	// More reconciles (a label change on the Service) must not repeat the same Event.
	for i := range 5 {
		if err := c.Get(ctx, types.NamespacedName{Namespace: "web", Name: "app"}, svc); err != nil {
			t.Fatal(err)
		}
		svc.Labels = map[string]string{"round": string(rune('a' + i))}
		if err := c.Update(ctx, svc); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	w, err := warnings()
	if err != nil {
		t.Fatal(err)
	}
	if w[translate.ReasonServiceNotFound] != 1 {
		t.Fatalf("ServiceNotFound recorded %d times over six reconciles, want once: %v", w[translate.ReasonServiceNotFound], w)
	}
}
