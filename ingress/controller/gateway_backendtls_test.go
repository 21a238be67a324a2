package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/certs"
)

// TestBackendTLSPolicyStatus: a BackendTLSPolicy on the Service of an attached route gets an
// ancestor for the route's Gateway, NoValidCACertificate while its CA ConfigMap is missing (and
// the backend answers 500), Accepted once the ConfigMap (a watched kind) appears (and the backend
// is proxied over TLS with the policy's hostname), with observedGeneration following the spec.
func TestBackendTLSPolicyStatus(t *testing.T) {
	c, loader, _, _ := gatewayEnv(t, true)
	ctx := context.Background()
	caPEM, _, err := certs.SelfSigned([]string{"backend-ca.test"}, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plexus-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "plexus-system", Name: "plexus-ingress"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "plexus-ingress"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "secure"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "btls", Port: 443}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "secure-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: "secure"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("btls"), Port: ptr.To[int32](8443)}}},
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: gwv1.GatewayClassSpec{ControllerName: gatewayControllerName}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "edge"}, Spec: gwv1.GatewaySpec{GatewayClassName: "plexus",
			Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}},
		&gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "secure"}, Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "edge"}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "secure", Port: ptr.To[int32](443)}}}}}}}},
		&gwv1.BackendTLSPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "secure"}, Spec: gwv1.BackendTLSPolicySpec{
			TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "secure"}}},
			Validation: gwv1.BackendTLSPolicyValidation{CACertificateRefs: []gwv1.LocalObjectReference{{Kind: "ConfigMap", Name: "backend-ca"}},
				Hostname: "abc.example.com"}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	key := types.NamespacedName{Namespace: "web", Name: "secure"}
	policyHas := func(typ string, status metav1.ConditionStatus, reason string) error {
		p := &gwv1.BackendTLSPolicy{}
		if err := c.Get(ctx, key, p); err != nil {
			return err
		}
		if len(p.Status.Ancestors) != 1 || p.Status.Ancestors[0].AncestorRef.Name != "edge" || p.Status.Ancestors[0].ControllerName != gatewayControllerName {
			return fmt.Errorf("ancestors %+v, want the Gateway edge", p.Status.Ancestors)
		}
		return hasCondition(p.Status.Ancestors[0].Conditions, typ, status, reason, p.Generation)
	}
	eventually(t, "the CA ConfigMap is missing: NoValidCACertificate", func() error {
		if err := policyHas("ResolvedRefs", metav1.ConditionFalse, string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef)); err != nil {
			return err
		}
		return policyHas("Accepted", metav1.ConditionFalse, string(gwv1.BackendTLSPolicyReasonNoValidCACertificate))
	})
	eventually(t, "the backend answers 500 rather than going without TLS", func() error {
		if cfg := loader.last(); !strings.Contains(cfg, "gateway/web/edge/80") || strings.Contains(cfg, "10.244.1.9") {
			return fmt.Errorf("last config: %.600s", cfg)
		}
		return nil
	})
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "backend-ca"},
		Data: map[string]string{"ca.crt": string(caPEM)}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ConfigMap appears: the policy is accepted", func() error {
		if err := policyHas("ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs"); err != nil {
			return err
		}
		return policyHas("Accepted", metav1.ConditionTrue, "Accepted")
	})
	eventually(t, "the backend is proxied over TLS with the policy's hostname", func() error {
		if cfg := loader.last(); !strings.Contains(cfg, "10.244.1.9:8443") || !strings.Contains(cfg, `"server_name":"abc.example.com"`) {
			return fmt.Errorf("last config: %.600s", cfg)
		}
		return nil
	})
	p := &gwv1.BackendTLSPolicy{}
	if err := c.Get(ctx, key, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Validation.Hostname = "foo.example.com"
	if err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a spec change bumps the ancestors' observedGeneration", func() error {
		return policyHas("Accepted", metav1.ConditionTrue, "Accepted")
	})
}
