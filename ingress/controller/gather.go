package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/ingress/translate"
)

// Gather lists, from r (the manager's cache), every object a translation reads. Which of them
// matter is the translation's business: it ignores what no served Ingress refers to.
func Gather(ctx context.Context, r client.Reader) (translate.Input, error) {
	var (
		in      translate.Input
		classes networkingv1.IngressClassList
		ings    networkingv1.IngressList
		svcs    corev1.ServiceList
		slices  discoveryv1.EndpointSliceList
		secrets corev1.SecretList
	)
	for _, l := range []struct {
		what string
		list client.ObjectList
	}{{"IngressClasses", &classes}, {"Ingresses", &ings}, {"Services", &svcs}, {"EndpointSlices", &slices}, {"TLS Secrets", &secrets}} {
		if err := r.List(ctx, l.list); err != nil {
			return in, fmt.Errorf("list %s: %w", l.what, err)
		}
	}
	in.IngressClasses, in.Ingresses, in.Services, in.EndpointSlices = classes.Items, ings.Items, svcs.Items, slices.Items
	for _, s := range secrets.Items {
		// The cache holds TLS Secrets only; the check keeps a reader without that selector (a
		// test's, or a direct client) from feeding other Secrets into the config.
		if s.Type == corev1.SecretTypeTLS {
			in.Secrets = append(in.Secrets, s)
		}
	}
	return in, nil
}
