package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/translate"
)

// GatewayStatusControllerName names the leader-only controller that writes Gateway API statuses.
const GatewayStatusControllerName = "gateway-status"

// DefaultGatewayControllerName is the spec.controllerName of the GatewayClasses plexus-ingress
// serves when the Gateway API is enabled.
const DefaultGatewayControllerName = "plexus.dev/gateway"

// gatewayKinds are the Gateway API kinds the controller needs (all served in v1).
var gatewayKinds = []string{"GatewayClass", "Gateway", "HTTPRoute", "ReferenceGrant"}

// kindBackendTLSPolicy is served from Gateway API v1.4 on; older CRDs leave it out, and
// plexus-ingress serves the rest without it.
const kindBackendTLSPolicy = "BackendTLSPolicy"

// gatewayWatched are the kinds whose changes may change the config when the Gateway API is on:
// its four kinds, Namespaces (allowedRoutes selectors match namespace labels), ConfigMaps
// (CA certificates of spec.tls.frontend and BackendTLSPolicies) and, when served
// (backendTLS), BackendTLSPolicies.
func gatewayWatched(backendTLS bool) []client.Object {
	objs := []client.Object{&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1.HTTPRoute{}, &gwv1.ReferenceGrant{}, &corev1.Namespace{}, &corev1.ConfigMap{}}
	if backendTLS {
		objs = append(objs, &gwv1.BackendTLSPolicy{})
	}
	return objs
}

// BackendTLSPolicyInstalled says whether the API server serves BackendTLSPolicy in v1.
func BackendTLSPolicyInstalled(mapper meta.RESTMapper) bool {
	_, err := mapper.RESTMapping(schema.GroupKind{Group: gwv1.GroupName, Kind: kindBackendTLSPolicy}, "v1")
	return err == nil
}

// GatewayAPIInstalled says whether the API server serves the Gateway API kinds in v1; it names
// the first kind missing.
func GatewayAPIInstalled(mapper meta.RESTMapper) (bool, string) {
	for _, k := range gatewayKinds {
		if _, err := mapper.RESTMapping(schema.GroupKind{Group: gwv1.GroupName, Kind: k}, "v1"); err != nil {
			return false, k
		}
	}
	return true, ""
}

// gatewayBundleVersion reads the installed GatewayClass CRD's bundle-version annotation; "" when
// it cannot be read (no permission to read CRDs, for instance): the version is then unknown.
func gatewayBundleVersion(ctx context.Context, r client.Reader) string {
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	if err := r.Get(ctx, types.NamespacedName{Name: "gatewayclasses." + gwv1.GroupName}, crd); err != nil {
		return ""
	}
	return crd.Annotations[translate.BundleVersionAnnotation]
}

// GatherGateway adds the Gateway API objects, the Namespaces and the ConfigMaps to in, and the
// BackendTLSPolicies when backendTLS (their CRD is installed).
func GatherGateway(ctx context.Context, r client.Reader, in *translate.Input, backendTLS bool) error {
	var (
		classes gwv1.GatewayClassList
		gws     gwv1.GatewayList
		routes  gwv1.HTTPRouteList
		grants  gwv1.ReferenceGrantList
		nss     corev1.NamespaceList
		cms     corev1.ConfigMapList
	)
	for _, l := range []struct {
		what string
		list client.ObjectList
	}{{"GatewayClasses", &classes}, {"Gateways", &gws}, {"HTTPRoutes", &routes}, {"ReferenceGrants", &grants}, {"Namespaces", &nss}, {"ConfigMaps", &cms}} {
		if err := r.List(ctx, l.list); err != nil {
			return fmt.Errorf("list %s: %w", l.what, err)
		}
	}
	in.GatewayClasses, in.Gateways, in.HTTPRoutes, in.ReferenceGrants, in.Namespaces = classes.Items, gws.Items, routes.Items, grants.Items, nss.Items
	in.ConfigMaps = cms.Items
	if backendTLS {
		var policies gwv1.BackendTLSPolicyList
		if err := r.List(ctx, &policies); err != nil {
			return fmt.Errorf("list BackendTLSPolicies: %w", err)
		}
		in.BackendTLSPolicies = policies.Items
	}
	return nil
}

// DefaultGatewayCRDWait is how long a starting controller waits for the Gateway API CRDs when
// Settings.GatewayCRDWait is zero. The operator applies the CRDs and the controller's Deployment in
// one pass, so the first replicas often start before the API server serves the new kinds.
const DefaultGatewayCRDWait = 90 * time.Second

// gatewayCRDPoll is how often waitGatewayAPI asks the API server again.
const gatewayCRDPoll = 2 * time.Second

// waitGatewayAPI polls GatewayAPIInstalled until the kinds are served or wait has passed; it
// returns the last answer. controller-runtime's RESTMapper asks the API server again on a miss.
func waitGatewayAPI(mapper meta.RESTMapper, wait, poll time.Duration) (bool, string) {
	deadline := time.Now().Add(wait)
	for {
		ok, missing := GatewayAPIInstalled(mapper)
		if ok || !time.Now().Add(poll).Before(deadline) {
			return ok, missing
		}
		time.Sleep(poll)
	}
}

// setupGateway decides whether the Gateway API is served: asked for (a gateway controller
// name) and installed, waiting up to Settings.GatewayCRDWait for the CRDs. Without them it logs
// why and serves Ingress only; a restart after installing them turns the Gateway API on.
// backendTLS says BackendTLSPolicies are served too (their CRD is installed).
func setupGateway(mgr ctrl.Manager, s *Settings) (on, backendTLS bool) {
	if s.Options.GatewayControllerName == "" {
		return false, false
	}
	log := mgr.GetLogger().WithName("gateway-api")
	wait := s.GatewayCRDWait
	if wait == 0 {
		wait = DefaultGatewayCRDWait
	}
	if ok, missing := waitGatewayAPI(mgr.GetRESTMapper(), wait, gatewayCRDPoll); !ok {
		log.Error(nil, "the Gateway API is enabled but its CRDs are not installed: serving Ingress only; install the standard-channel CRDs (sigs.k8s.io/gateway-api v1.6) and restart",
			"missingKind", missing)
		s.Options.GatewayControllerName = ""
		return false, false
	}
	backendTLS = BackendTLSPolicyInstalled(mgr.GetRESTMapper())
	log.Info("serving the Gateway API", "controllerName", s.Options.GatewayControllerName, "backendTLSPolicy", backendTLS)
	return true, backendTLS
}

// ignoreGone treats a deleted object as nothing to write.
func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
