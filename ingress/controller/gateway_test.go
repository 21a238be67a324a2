package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/controller"
	"github.com/plexus-net/plexus/ingress/translate"
	"github.com/plexus-net/plexus/internal/controlplane"
	"github.com/plexus-net/plexus/internal/gatewayapi"
)

const gatewayControllerName = "plexus.dev/gateway"

// gatewayEnv starts an API server (with the Gateway API CRDs when withCRDs) and the controller
// with the Gateway API enabled.
func gatewayEnv(t *testing.T, withCRDs bool) (client.Client, *recordingLoader, *controller.ConfigReconciler, *logLines) {
	t.Helper()
	logs := &logLines{}
	ctrllog.SetLogger(logr.Discard())
	e := &envtest.Environment{BinaryAssetsDirectory: controlplane.AssetsDir()}
	if withCRDs {
		crds, err := gatewayapi.CRDs()
		if err != nil {
			t.Fatal(err)
		}
		e.CRDs = crds
	}
	cfg, err := e.Start()
	if err != nil {
		t.Fatalf("start the API server: %v", err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: controller.NewScheme(), Cache: controller.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		// Several managers in one test process register the same controller names.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Logger:     funcr.New(logs.add, funcr.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	loader := &recordingLoader{}
	cr, err := controller.Setup(mgr, controller.Settings{
		Options:        translate.Options{ControllerName: controllerName, GatewayControllerName: gatewayControllerName},
		PublishService: types.NamespacedName{Namespace: "plexus-system", Name: "plexus-ingress"},
		Loader:         loader,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c, loader, cr, logs
}

// logLines keeps what the manager logged.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *logLines) find(substr string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}

// condition finds a condition and says whether it is status with reason at generation gen.
func hasCondition(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, gen int64) error {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return fmt.Errorf("no %s condition in %+v", typ, conds)
	}
	if c.Status != status || c.Reason != reason || c.ObservedGeneration != gen {
		return fmt.Errorf("%s is %s/%s at generation %d, want %s/%s at %d (%s)", typ, c.Status, c.Reason, c.ObservedGeneration, status, reason, gen, c.Message)
	}
	return nil
}

// TestGatewayAPIServedWithStatus runs the controller against an API server with the Gateway API
// CRDs: an HTTPRoute reaches the config, every status is written with its observedGeneration,
// a cross-namespace backend is refused until a ReferenceGrant allows it, and an unchanged
// status is not rewritten.
func TestGatewayAPIServedWithStatus(t *testing.T) {
	c, loader, _, _ := gatewayEnv(t, true)
	ctx := context.Background()
	create := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	for _, ns := range []string{"plexus-system", "web", "backends"} {
		create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "plexus-system", Name: "plexus-ingress"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "plexus-ingress"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	for _, ns := range []string{"web", "backends"} {
		create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	}
	create(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "app-1",
		Labels: map[string]string{discoveryv1.LabelServiceName: "app"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}})
	create(&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: gwv1.GatewayClassSpec{ControllerName: gatewayControllerName}})
	create(&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "edge"}, Spec: gwv1.GatewaySpec{GatewayClassName: "plexus",
		Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}})
	backend := func(ns string) gwv1.HTTPBackendRef {
		b := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "app", Port: ptr.To[int32](80)}}}
		if ns != "" {
			b.Namespace = ptr.To(gwv1.Namespace(ns))
		}
		return b
	}
	route := func(name, host, backendNS string) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: name}, Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "edge"}}},
			Hostnames:       []gwv1.Hostname{gwv1.Hostname(host)},
			Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{backend(backendNS)}}}}}
	}
	create(route("site", "app.example.test", ""))
	create(route("cross", "cross.example.test", "backends"))

	eventually(t, "the loaded config routes app.example.test to the ready endpoint", func() error {
		if cfg := loader.last(); !strings.Contains(cfg, "app.example.test") || !strings.Contains(cfg, "10.244.1.7:8080") {
			return fmt.Errorf("last config: %.400s", cfg)
		}
		return nil
	})
	eventually(t, "the GatewayClass is accepted", func() error {
		gc := &gwv1.GatewayClass{}
		if err := c.Get(ctx, types.NamespacedName{Name: "plexus"}, gc); err != nil {
			return err
		}
		if err := hasCondition(gc.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", gc.Generation); err != nil {
			return err
		}
		if want := translate.SupportedFeatures(); !slices.Equal(gc.Status.SupportedFeatures, want) ||
			!slices.IsSortedFunc(want, func(a, b gwv1.SupportedFeature) int { return strings.Compare(string(a.Name), string(b.Name)) }) {
			return fmt.Errorf("supportedFeatures %+v, want the served features, sorted", gc.Status.SupportedFeatures)
		}
		return hasCondition(gc.Status.Conditions, "SupportedVersion", metav1.ConditionTrue, "SupportedVersion", gc.Generation)
	})
	// The Gateway's own Service: in the controller's namespace, of its Service's type and selector,
	// port 80 onto the first internal port, owned by the controller's Service.
	gwSvcKey := types.NamespacedName{Namespace: "plexus-system", Name: translate.GatewayServiceName(types.NamespacedName{Namespace: "web", Name: "edge"})}
	svc := &corev1.Service{}
	eventually(t, "the Gateway gets a Service of its own", func() error {
		if err := c.Get(ctx, gwSvcKey, svc); err != nil {
			return err
		}
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.Selector["app"] != "plexus-ingress" || len(svc.OwnerReferences) != 1 ||
			len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.IntValue() != translate.DefaultGatewayPortFirst {
			return fmt.Errorf("service %+v", svc.Spec)
		}
		return nil
	})
	eventually(t, "every replica serves the Gateway on its internal port", func() error {
		if cfg := loader.last(); !strings.Contains(cfg, fmt.Sprintf(`":%d"`, translate.DefaultGatewayPortFirst)) || !strings.Contains(cfg, "gateway/web/edge/80") {
			return fmt.Errorf("last config: %.400s", cfg)
		}
		return nil
	})
	gw := &gwv1.Gateway{}
	eventually(t, "the Gateway waits for its Service's load-balancer address", func() error {
		if err := c.Get(ctx, types.NamespacedName{Namespace: "web", Name: "edge"}, gw); err != nil {
			return err
		}
		if len(gw.Status.Addresses) != 0 {
			return fmt.Errorf("addresses %+v before the load balancer gave one", gw.Status.Addresses)
		}
		return hasCondition(gw.Status.Conditions, "Programmed", metav1.ConditionFalse, "AddressNotAssigned", gw.Generation)
	})
	// What a load-balancer implementation (the lab's, MetalLB) does.
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.41"}}
	if err := c.Status().Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Gateway is programmed at its Service's address with two attached routes", func() error {
		if err := c.Get(ctx, types.NamespacedName{Namespace: "web", Name: "edge"}, gw); err != nil {
			return err
		}
		for _, typ := range []string{"Accepted", "Programmed"} {
			if err := hasCondition(gw.Status.Conditions, typ, metav1.ConditionTrue, typ, gw.Generation); err != nil {
				return err
			}
		}
		if len(gw.Status.Addresses) != 1 || gw.Status.Addresses[0].Value != "192.0.2.41" {
			return fmt.Errorf("addresses %+v, want 192.0.2.41", gw.Status.Addresses)
		}
		if len(gw.Status.Listeners) != 1 || gw.Status.Listeners[0].AttachedRoutes != 2 {
			return fmt.Errorf("listeners %+v, want one with 2 attached routes", gw.Status.Listeners)
		}
		return hasCondition(gw.Status.Listeners[0].Conditions, "Programmed", metav1.ConditionTrue, "Programmed", gw.Generation)
	})
	routeRefs := func(name string, status metav1.ConditionStatus, reason string) error {
		r := &gwv1.HTTPRoute{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: "web", Name: name}, r); err != nil {
			return err
		}
		if len(r.Status.Parents) != 1 || r.Status.Parents[0].ControllerName != gatewayControllerName {
			return fmt.Errorf("parents %+v, want one of %s", r.Status.Parents, gatewayControllerName)
		}
		if err := hasCondition(r.Status.Parents[0].Conditions, "Accepted", metav1.ConditionTrue, "Accepted", r.Generation); err != nil {
			return err
		}
		return hasCondition(r.Status.Parents[0].Conditions, "ResolvedRefs", status, reason, r.Generation)
	}
	eventually(t, "the same-namespace route resolves", func() error { return routeRefs("site", metav1.ConditionTrue, "ResolvedRefs") })
	eventually(t, "the cross-namespace backend is refused", func() error { return routeRefs("cross", metav1.ConditionFalse, "RefNotPermitted") })

	create(&gwv1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "backends", Name: "from-web"}, Spec: gwv1.ReferenceGrantSpec{
		From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "web"}},
		To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: "Service"}}}})
	eventually(t, "the ReferenceGrant lets the cross-namespace backend resolve", func() error {
		return routeRefs("cross", metav1.ConditionTrue, "ResolvedRefs")
	})

	// Unrelated changes reconcile again; the Gateway's status must not be rewritten.
	if err := c.Get(ctx, types.NamespacedName{Namespace: "web", Name: "edge"}, gw); err != nil {
		t.Fatal(err)
	}
	version := gw.ResourceVersion
	for i := range 3 {
		if err := c.Get(ctx, types.NamespacedName{Namespace: "web", Name: "app"}, svc); err != nil {
			t.Fatal(err)
		}
		svc.Labels = map[string]string{"round": fmt.Sprint(i)}
		if err := c.Update(ctx, svc); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "web", Name: "edge"}, gw); err != nil {
		t.Fatal(err)
	}
	if gw.ResourceVersion != version {
		t.Fatalf("the Gateway was rewritten (resourceVersion %s → %s) though its status did not change", version, gw.ResourceVersion)
	}

	// A listener on another port adds a port to the same Service; the first keeps its target.
	gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{Name: "alt", Port: 8080, Protocol: gwv1.HTTPProtocolType})
	if err := c.Update(ctx, gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Service gets the listener's port 8080", func() error {
		if err := c.Get(ctx, gwSvcKey, svc); err != nil {
			return err
		}
		if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].TargetPort.IntValue() != translate.DefaultGatewayPortFirst ||
			svc.Spec.Ports[1].Port != 8080 || svc.Spec.Ports[1].TargetPort.IntValue() != translate.DefaultGatewayPortFirst+1 {
			return fmt.Errorf("ports %+v", svc.Spec.Ports)
		}
		return nil
	})
	// The Gateway goes: so does its Service (it lives in another namespace: no owner reference
	// can do it).
	if err := c.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Service of the deleted Gateway is deleted", func() error {
		if err := c.Get(ctx, gwSvcKey, svc); err == nil {
			return fmt.Errorf("Service %s still exists", gwSvcKey)
		} else if client.IgnoreNotFound(err) != nil {
			return err
		}
		return nil
	})
}

// TestGatewayAPIEnabledWithoutCRDs: asked to serve the Gateway API on a cluster without its
// CRDs, the controller says so in its log and still serves Ingress.
func TestGatewayAPIEnabledWithoutCRDs(t *testing.T) {
	_, _, cr, logs := gatewayEnv(t, false)
	if line := logs.find("CRDs are not installed"); line == "" || !strings.Contains(line, "GatewayClass") {
		t.Fatalf("no log line says the Gateway API CRDs are missing (got %q)", line)
	}
	eventually(t, "a config is loaded without the Gateway API", func() error {
		if !cr.Loaded() {
			return fmt.Errorf("no config loaded")
		}
		return nil
	})
}
