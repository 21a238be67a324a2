package controllers

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
)

// ingressObservation is what the ingress phase saw, the input of ingressAvailableCondition.
type ingressObservation struct {
	// Enabled is the served spec.ingress.enabled.
	Enabled bool
	// WantReplicas is the rendered replica count; Ready and Updated come from the Deployment's
	// status (Updated: replicas running the latest template).
	WantReplicas, ReadyReplicas, UpdatedReplicas int32
	// Service is the live controller Service; nil when it does not exist.
	Service *ingressServiceView
}

// ingressServiceView is what a person needs to reach the controller's Service.
type ingressServiceView struct {
	Type corev1.ServiceType
	// ClusterIPs, the load-balancer addresses (IPs or host names) and the NodePorts of http/https.
	ClusterIPs, LoadBalancer []string
	NodePorts                []int32
}

// String says where the Service answers, e.g. "10.96.0.20 (ClusterIP), 10.99.2.240 (LoadBalancer)".
func (s ingressServiceView) String() string {
	parts := []string{fmt.Sprintf("%s (ClusterIP)", strings.Join(s.ClusterIPs, ","))}
	if len(s.NodePorts) > 0 {
		ports := make([]string, 0, len(s.NodePorts))
		for _, p := range s.NodePorts {
			ports = append(ports, fmt.Sprint(p))
		}
		parts = append(parts, "node ports "+strings.Join(ports, ","))
	}
	if s.Type == corev1.ServiceTypeLoadBalancer {
		if len(s.LoadBalancer) == 0 {
			parts = append(parts, "load-balancer address pending")
		} else {
			parts = append(parts, strings.Join(s.LoadBalancer, ",")+" (LoadBalancer)")
		}
	}
	return strings.Join(parts, ", ")
}

// ingressAvailableCondition computes the IngressAvailable condition. It is pure. A LoadBalancer
// Service still waiting for an address does not make ingress unavailable (it serves on its
// ClusterIP and node ports; not every cluster has a load-balancer implementation): the message
// says it is pending.
func ingressAvailableCondition(gen int64, o ingressObservation) metav1.Condition {
	c := metav1.Condition{Type: v1.ConditionIngressAvailable, Status: metav1.ConditionFalse, ObservedGeneration: gen}
	svc := "Service " + render.IngressName + " not found"
	if o.Service != nil {
		svc = "Service " + render.IngressName + " at " + o.Service.String()
	}
	switch {
	case !o.Enabled:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1.ReasonIngressDisabled, "spec.ingress.enabled is false: Plexus runs no ingress controller"
	case o.WantReplicas == 0:
		c.Reason, c.Message = v1.ReasonIngressUnavailable, "spec.ingress.replicas is 0: no plexus-ingress runs"
	case o.ReadyReplicas == 0:
		c.Reason = v1.ReasonIngressUnavailable
		c.Message = fmt.Sprintf("0 of %d plexus-ingress replicas ready (a replica is ready once it has loaded its first config)", o.WantReplicas)
	case o.Service == nil:
		c.Reason, c.Message = v1.ReasonIngressNoService, fmt.Sprintf("%d of %d plexus-ingress replicas ready; %s", o.ReadyReplicas, o.WantReplicas, svc)
	case o.ReadyReplicas < o.WantReplicas || o.UpdatedReplicas < o.WantReplicas:
		c.Reason = v1.ReasonIngressRollingOut
		c.Message = fmt.Sprintf("%d of %d plexus-ingress replicas ready, %d updated; %s", o.ReadyReplicas, o.WantReplicas, o.UpdatedReplicas, svc)
	default:
		c.Status, c.Reason = metav1.ConditionTrue, v1.ReasonIngressServing
		c.Message = fmt.Sprintf("%d of %d plexus-ingress replicas ready; %s", o.ReadyReplicas, o.WantReplicas, svc)
	}
	return c
}

// observeIngress reads what ingressAvailableCondition needs from the live Deployment and Service
// of an applied render. A missing object counts as nothing ready.
func observeIngress(ctx context.Context, r client.Reader, rendered []client.Object) (ingressObservation, error) {
	obs := ingressObservation{Enabled: len(rendered) > 0}
	for _, o := range rendered {
		key := client.ObjectKeyFromObject(o)
		switch want := o.(type) {
		case *appsv1.Deployment:
			d, err := observeDeployment(ctx, r, want)
			if err != nil {
				return obs, err
			}
			obs.WantReplicas, obs.ReadyReplicas, obs.UpdatedReplicas = d.want, d.ready, d.updated
		case *corev1.Service:
			var live corev1.Service
			if err := r.Get(ctx, key, &live); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return obs, fmt.Errorf("read Service %s: %w", key, err)
			}
			obs.Service = serviceView(&live)
		}
	}
	return obs, nil
}

func serviceView(s *corev1.Service) *ingressServiceView {
	v := &ingressServiceView{Type: s.Spec.Type, ClusterIPs: s.Spec.ClusterIPs}
	for _, p := range s.Spec.Ports {
		if p.NodePort > 0 {
			v.NodePorts = append(v.NodePorts, p.NodePort)
		}
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			v.LoadBalancer = append(v.LoadBalancer, in.IP)
		} else if in.Hostname != "" {
			v.LoadBalancer = append(v.LoadBalancer, in.Hostname)
		}
	}
	return v
}
