package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/plexus-net/plexus/ingress/translate"
)

// eventAction is the action of the Events the controller records.
const eventAction = "Translate"

// StatusReconciler writes what users read: status.loadBalancer of each served Ingress, and a
// Warning Event per problem. Only the elected leader runs it.
type StatusReconciler struct {
	// Client reads from the cache and writes to the API server.
	Client client.Client
	// Options are the translation's settings (the same as the ConfigReconciler's).
	Options translate.Options
	// PublishService is the controller's own Service, whose addresses the Ingresses publish.
	PublishService types.NamespacedName
	// Recorder records the Events.
	Recorder events.EventRecorder

	mu       sync.Mutex
	recorded map[translate.Problem]bool
}

// Reconcile implements reconcile.Reconciler.
func (r *StatusReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	in, err := Gather(ctx, r.Client)
	if err != nil {
		return reconcile.Result{}, err
	}
	res := translate.Translate(in, r.Options)
	r.recordProblems(ctx, res.Problems)

	addrs, err := r.publishedAddresses(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	for _, name := range res.Ingresses {
		if err := r.writeStatus(ctx, name, addrs); err != nil {
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{}, nil
}

// recordProblems records an Event for each problem not recorded since it last appeared: a problem
// that persists is reported once, one that goes and comes back is reported again.
func (r *StatusReconciler) recordProblems(ctx context.Context, problems []translate.Problem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := map[translate.Problem]bool{}
	for _, p := range problems {
		now[p] = true
		if r.recorded[p] || p.Ingress.Name == "" {
			continue
		}
		ing := &networkingv1.Ingress{}
		if err := r.Client.Get(ctx, p.Ingress, ing); err != nil {
			continue // gone since the snapshot: nothing to tell
		}
		r.Recorder.Eventf(ing, nil, corev1.EventTypeWarning, p.Reason, eventAction, "%s", p.Message)
	}
	r.recorded = now
}

// publishedAddresses are the addresses an Ingress of this controller is reached at: the
// Service's load-balancer addresses when it has any, else its external IPs, else its cluster IPs
// (a ClusterIP or NodePort Service is reached inside the cluster at those).
func (r *StatusReconciler) publishedAddresses(ctx context.Context) ([]networkingv1.IngressLoadBalancerIngress, error) {
	if r.PublishService.Name == "" {
		return nil, nil
	}
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, r.PublishService, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read the controller's Service %s: %w", r.PublishService, err)
	}
	return PublishedAddresses(svc), nil
}

// PublishedAddresses is publishedAddresses for a Service already read.
func PublishedAddresses(svc *corev1.Service) []networkingv1.IngressLoadBalancerIngress {
	var out []networkingv1.IngressLoadBalancerIngress
	for _, lb := range svc.Status.LoadBalancer.Ingress {
		e := networkingv1.IngressLoadBalancerIngress{IP: lb.IP, Hostname: lb.Hostname}
		for _, p := range lb.Ports {
			e.Ports = append(e.Ports, networkingv1.IngressPortStatus{Port: p.Port, Protocol: p.Protocol, Error: p.Error})
		}
		out = append(out, e)
	}
	if len(out) > 0 {
		return out
	}
	ips := svc.Spec.ExternalIPs
	if len(ips) == 0 {
		ips = svc.Spec.ClusterIPs
	}
	for _, ip := range ips {
		if ip != "" && ip != corev1.ClusterIPNone {
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: ip})
		}
	}
	return out
}

// writeStatus sets one Ingress's status.loadBalancer when it differs.
func (r *StatusReconciler) writeStatus(ctx context.Context, name types.NamespacedName, addrs []networkingv1.IngressLoadBalancerIngress) error {
	ing := &networkingv1.Ingress{}
	if err := r.Client.Get(ctx, name, ing); err != nil {
		return client.IgnoreNotFound(err)
	}
	if slices.EqualFunc(ing.Status.LoadBalancer.Ingress, addrs, lbIngressEqual) {
		return nil
	}
	patch := client.MergeFrom(ing.DeepCopy())
	ing.Status.LoadBalancer.Ingress = addrs
	if err := r.Client.Status().Patch(ctx, ing, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("write status.loadBalancer of Ingress %s: %w", name, err)
	}
	return nil
}

func lbIngressEqual(a, b networkingv1.IngressLoadBalancerIngress) bool {
	return a.IP == b.IP && a.Hostname == b.Hostname && slices.EqualFunc(a.Ports, b.Ports, func(x, y networkingv1.IngressPortStatus) bool {
		return x.Port == y.Port && x.Protocol == y.Protocol && ptrEqual(x.Error, y.Error)
	})
}

func ptrEqual(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
