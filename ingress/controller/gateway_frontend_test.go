package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/ingress/certs"
)

// TestGatewayClientCertificateValidationStatus: a Gateway whose client certificate validation
// names a ConfigMap that does not exist has its HTTPS listener refused with the API's reasons
// and not served; creating the ConfigMap (a watched kind) serves it with client authentication;
// switching to AllowInsecureFallback sets the Gateway's InsecureFrontendValidationMode
// condition, and switching back removes it.
func TestGatewayClientCertificateValidationStatus(t *testing.T) {
	c, loader, _, _ := gatewayEnv(t, true)
	ctx := context.Background()
	certPEM, keyPEM, err := certs.SelfSigned([]string{"example.org"}, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _, err := certs.SelfSigned([]string{"client-ca.test"}, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plexus-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}},
		// The controller's own Service: the Gateway's Service is made after it (and owned by it).
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "plexus-system", Name: "plexus-ingress"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "plexus-ingress"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "server"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}},
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}, Spec: gwv1.GatewayClassSpec{ControllerName: gatewayControllerName}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "mtls"}, Spec: gwv1.GatewaySpec{GatewayClassName: "plexus",
			Listeners: []gwv1.Listener{{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType,
				TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "server"}}}}},
			TLS: &gwv1.GatewayTLSConfig{Frontend: &gwv1.FrontendTLSConfig{Default: gwv1.TLSConfig{Validation: &gwv1.FrontendTLSValidation{
				CACertificateRefs: []gwv1.ObjectReference{{Kind: "ConfigMap", Name: "client-ca"}}}}}}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
	key := types.NamespacedName{Namespace: "web", Name: "mtls"}
	gw := &gwv1.Gateway{}
	listener := func(typ string, status metav1.ConditionStatus, reason string) error {
		if err := c.Get(ctx, key, gw); err != nil {
			return err
		}
		if len(gw.Status.Listeners) != 1 {
			return fmt.Errorf("listeners %+v", gw.Status.Listeners)
		}
		return hasCondition(gw.Status.Listeners[0].Conditions, typ, status, reason, gw.Generation)
	}
	eventually(t, "the listener's CA ConfigMap is missing: ResolvedRefs False", func() error {
		return listener("ResolvedRefs", metav1.ConditionFalse, string(gwv1.ListenerReasonInvalidCACertificateRef))
	})
	eventually(t, "no usable CA: Accepted False", func() error {
		return listener("Accepted", metav1.ConditionFalse, string(gwv1.ListenerReasonNoValidCACertificate))
	})
	if cfg := loader.last(); strings.Contains(cfg, "gateway/web/mtls/443") {
		t.Fatalf("the listener without a usable CA is served: %.400s", cfg)
	}

	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "client-ca"},
		Data: map[string]string{"ca.crt": string(caPEM)}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ConfigMap appears: the listener resolves and is accepted", func() error {
		if err := listener("ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs"); err != nil {
			return err
		}
		return listener("Accepted", metav1.ConditionTrue, "Accepted")
	})
	eventually(t, "the port is served with client certificates required", func() error {
		if cfg := loader.last(); !strings.Contains(cfg, `"client_authentication"`) || !strings.Contains(cfg, `"require_and_verify"`) {
			return fmt.Errorf("last config: %.600s", cfg)
		}
		return nil
	})

	setMode := func(mode gwv1.FrontendValidationModeType) {
		t.Helper()
		if err := c.Get(ctx, key, gw); err != nil {
			t.Fatal(err)
		}
		gw.Spec.TLS.Frontend.Default.Validation.Mode = mode
		if err := c.Update(ctx, gw); err != nil {
			t.Fatal(err)
		}
	}
	setMode(gwv1.AllowInsecureFallback)
	eventually(t, "AllowInsecureFallback: the Gateway says so", func() error {
		if err := c.Get(ctx, key, gw); err != nil {
			return err
		}
		return hasCondition(gw.Status.Conditions, string(gwv1.GatewayConditionInsecureFrontendValidationMode), metav1.ConditionTrue,
			string(gwv1.GatewayReasonConfigurationChanged), gw.Generation)
	})
	eventually(t, "AllowInsecureFallback: certificates are asked for, not required", func() error {
		if cfg := loader.last(); !strings.Contains(cfg, `"mode":"request"`) {
			return fmt.Errorf("last config: %.600s", cfg)
		}
		return nil
	})
	setMode(gwv1.AllowValidOnly)
	eventually(t, "back to AllowValidOnly: the condition is removed", func() error {
		if err := c.Get(ctx, key, gw); err != nil {
			return err
		}
		if cond := meta.FindStatusCondition(gw.Status.Conditions, string(gwv1.GatewayConditionInsecureFrontendValidationMode)); cond != nil {
			return fmt.Errorf("condition still there: %+v", cond)
		}
		if err := hasCondition(gw.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", gw.Generation); err != nil {
			return err
		}
		return nil
	})
}
