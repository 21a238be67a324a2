package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// Controller names (also the names of their metrics and log streams).
const (
	ConfigControllerName = "ingress-config"
	StatusControllerName = "ingress-status"
)

// EventSource is the reporting controller of the Events plexus-ingress records.
const EventSource = "plexus-ingress"

// Settings configure Setup.
type Settings struct {
	// Options are the translation's settings; ControllerName is required.
	Options translate.Options
	// Fallback is the certificate served when no default TLS Secret is usable.
	Fallback *translate.PEMPair
	// PublishService is the controller's own Service (status.loadBalancer); empty publishes nothing.
	PublishService types.NamespacedName
	// Loader runs the config in this process.
	Loader Loader
	// GatewayCRDWait bounds the wait for the Gateway API CRDs at start (DefaultGatewayCRDWait
	// when zero); it matters only with Options.GatewayControllerName set.
	GatewayCRDWait time.Duration
}

// NewScheme has the kinds the controller reads.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(fmt.Sprintf("client-go scheme: %v", err)) // static registration; cannot fail at run time
	}
	if err := gwv1.Install(s); err != nil {
		panic(fmt.Sprintf("gateway-api scheme: %v", err))
	}
	return s
}

// CacheOptions restrict the cache to what the controller may hold: of all Secrets, only those
// of type kubernetes.io/tls.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Field: fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS))},
	}}
}

// watched are the kinds whose every change may change the config.
func watched() []client.Object {
	return []client.Object{&networkingv1.IngressClass{}, &networkingv1.Ingress{}, &corev1.Service{},
		&discoveryv1.EndpointSlice{}, &corev1.Secret{}}
}

// Setup adds both reconcilers to mgr (whose cache must be built with CacheOptions) and returns
// the config reconciler, whose Loaded is the replica's readiness. With
// Options.GatewayControllerName set and the Gateway API CRDs installed, it also feeds the Gateway
// API objects to the config and adds the leader-only GatewayStatusReconciler.
func Setup(mgr ctrl.Manager, s Settings) (*ConfigReconciler, error) {
	if s.Options.ControllerName == "" {
		return nil, fmt.Errorf("ingress controller: no controller name (the spec.controller of the IngressClasses to serve)")
	}
	if s.Loader == nil {
		return nil, fmt.Errorf("ingress controller: no loader")
	}
	gatewayOn, backendTLS := setupGateway(mgr, &s)
	if s.Options.GatewayServiceNamespace == "" {
		// The per-Gateway Services live next to the controller's own.
		s.Options.GatewayServiceNamespace = s.PublishService.Namespace
	}
	var extra []client.Object
	if gatewayOn {
		extra = gatewayWatched(backendTLS)
	}
	cfg := &ConfigReconciler{Reader: mgr.GetClient(), Options: s.Options, Fallback: s.Fallback, Loader: s.Loader, GatewayAPI: gatewayOn, BackendTLS: backendTLS}
	// Every replica serves traffic, so every replica loads the config: not only the leader.
	if err := register(mgr, ConfigControllerName, cfg, ptr.To(false), extra...); err != nil {
		return nil, err
	}
	st := &StatusReconciler{Client: mgr.GetClient(), Options: s.Options, PublishService: s.PublishService,
		Recorder: mgr.GetEventRecorder(EventSource)}
	if err := register(mgr, StatusControllerName, st, ptr.To(true)); err != nil {
		return nil, err
	}
	if gatewayOn {
		gs := &GatewayStatusReconciler{Client: mgr.GetClient(), Options: s.Options, PublishService: s.PublishService,
			BundleVersion: gatewayBundleVersion(context.Background(), mgr.GetAPIReader()), BackendTLS: backendTLS}
		if err := register(mgr, GatewayStatusControllerName, gs, ptr.To(true), extra...); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// register builds a controller that runs r for any change of a watched kind.
func register(mgr ctrl.Manager, name string, r reconcile.Reconciler, needLeader *bool, extra ...client.Object) error {
	toKey := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{configKey}
	})
	b := ctrl.NewControllerManagedBy(mgr).Named(name)
	for _, o := range append(watched(), extra...) {
		b = b.Watches(o, toKey)
	}
	if err := b.WithOptions(controller.Options{MaxConcurrentReconciles: 1, NeedLeaderElection: needLeader}).Complete(r); err != nil {
		return fmt.Errorf("set up the %s controller: %w", name, err)
	}
	return nil
}
