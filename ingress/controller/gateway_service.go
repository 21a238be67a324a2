package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/ingress/translate"
)

// FieldOwnerGatewayServices is the field manager of the per-Gateway Services.
const FieldOwnerGatewayServices = "plexus-ingress/gateway-services"

// reconcileGatewayServices gives every served Gateway its Service (translate.PlanGatewayServices:
// a Service in the controller's namespace, of the controller's own Service's type and selector,
// one port per listener port onto its allocated internal port) and deletes the Services of
// Gateways that are gone. Nothing is done without the controller's own Service to copy from: the
// Gateways then stay Pending. An unchanged Service is not written.
func (r *GatewayStatusReconciler) reconcileGatewayServices(ctx context.Context, in *translate.Input, api translate.GatewayAPI) error {
	if r.PublishService.Name == "" {
		return nil
	}
	var publish *corev1.Service
	existing := map[string]*corev1.Service{}
	for i := range in.Services {
		s := &in.Services[i]
		if s.Namespace != r.PublishService.Namespace {
			continue
		}
		existing[s.Name] = s
		if s.Name == r.PublishService.Name {
			publish = s
		}
	}
	if publish == nil {
		log.FromContext(ctx).V(2).Info("the controller's Service does not exist (yet): no Gateway Services", "service", r.PublishService)
		return nil
	}
	typ := publish.Spec.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	base := translate.GatewayServiceSpec{Namespace: publish.Namespace, Type: typ, Selector: publish.Spec.Selector,
		Owner: &metav1.OwnerReference{APIVersion: "v1", Kind: "Service", Name: publish.Name, UID: publish.UID}}
	want, stale := translate.PlanGatewayServices(api, in.Services, r.Options.Defaults(), base)
	var errs []error
	for _, svc := range want {
		if e := existing[svc.Name]; e != nil && translate.GatewayServiceCurrent(e, svc) {
			continue
		}
		if err := apply.Object(ctx, r.Client, FieldOwnerGatewayServices, svc); err != nil {
			errs = append(errs, fmt.Errorf("the Service of Gateway %s/%s: %w", svc.Annotations[translate.GatewayNamespaceAnnotation], svc.Annotations[translate.GatewayNameAnnotation], err))
			continue
		}
		log.FromContext(ctx).Info("Gateway Service applied", "service", client.ObjectKeyFromObject(svc), "ports", len(svc.Spec.Ports))
	}
	for _, svc := range stale {
		if err := r.Client.Delete(ctx, svc); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete the Service %s of a Gateway that is gone: %w", client.ObjectKeyFromObject(svc), err))
			continue
		}
		log.FromContext(ctx).Info("Gateway Service deleted", "service", client.ObjectKeyFromObject(svc))
	}
	return kerrors.NewAggregate(errs)
}
