package controllers

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func TestIngressAvailableCondition(t *testing.T) {
	lb := &ingressServiceView{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.20"}, LoadBalancer: []string{"10.99.2.240"}, NodePorts: []int32{30080, 30443}}
	serving := ingressObservation{Enabled: true, WantReplicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, Service: lb}
	for _, tc := range []struct {
		name      string
		mutate    func(*ingressObservation)
		status    metav1.ConditionStatus
		reason    string
		inMessage string
	}{
		{"serving", nil, metav1.ConditionTrue, v1.ReasonIngressServing,
			"2 of 2 plexus-ingress replicas ready; Service plexus-ingress at 10.96.0.20 (ClusterIP), node ports 30080,30443, 10.99.2.240 (LoadBalancer)"},
		{"disabled", func(o *ingressObservation) { *o = ingressObservation{} }, metav1.ConditionTrue, v1.ReasonIngressDisabled, "enabled is false"},
		{"address pending still serves", func(o *ingressObservation) {
			o.Service = &ingressServiceView{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.20"}}
		}, metav1.ConditionTrue, v1.ReasonIngressServing, "load-balancer address pending"},
		{"ClusterIP only", func(o *ingressObservation) {
			o.Service = &ingressServiceView{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.0.20"}}
		}, metav1.ConditionTrue, v1.ReasonIngressServing, "Service plexus-ingress at 10.96.0.20 (ClusterIP)"},
		{"none ready", func(o *ingressObservation) { o.ReadyReplicas = 0 }, metav1.ConditionFalse, v1.ReasonIngressUnavailable, "0 of 2 plexus-ingress replicas ready"},
		{"scaled to zero", func(o *ingressObservation) { o.WantReplicas, o.ReadyReplicas, o.UpdatedReplicas = 0, 0, 0 }, metav1.ConditionFalse, v1.ReasonIngressUnavailable, "replicas is 0"},
		{"no Service", func(o *ingressObservation) { o.Service = nil }, metav1.ConditionFalse, v1.ReasonIngressNoService, "Service plexus-ingress not found"},
		{"one of two ready", func(o *ingressObservation) { o.ReadyReplicas = 1 }, metav1.ConditionFalse, v1.ReasonIngressRollingOut, "1 of 2 plexus-ingress replicas ready, 2 updated"},
	} {
		o := serving
		if tc.mutate != nil {
			tc.mutate(&o)
		}
		c := ingressAvailableCondition(7, o)
		if c.Type != v1.ConditionIngressAvailable || c.Status != tc.status || c.Reason != tc.reason || c.ObservedGeneration != 7 || !strings.Contains(c.Message, tc.inMessage) {
			t.Errorf("%s: got %s=%s %s %q, want %s %s containing %q", tc.name, c.Type, c.Status, c.Reason, c.Message, tc.status, tc.reason, tc.inMessage)
		}
	}
}
