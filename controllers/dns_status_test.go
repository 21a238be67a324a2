package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func TestDNSAvailableCondition(t *testing.T) {
	ips := []string{"10.96.0.10", "fd00:10:96::a"}
	serving := dnsObservation{Enabled: true, WantReplicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, WantServiceIPs: ips, ServiceIPs: ips, CorefileGeneration: 4}
	for _, tc := range []struct {
		name      string
		mutate    func(*dnsObservation)
		status    metav1.ConditionStatus
		reason    string
		inMessage string
	}{
		{"serving", nil, metav1.ConditionTrue, v1.ReasonDNSServing, "2 of 2 CoreDNS replicas ready; Corefile of generation 4; Service kube-dns at 10.96.0.10,fd00:10:96::a"},
		{"disabled", func(o *dnsObservation) { *o = dnsObservation{} }, metav1.ConditionTrue, v1.ReasonDNSDisabled, "enabled is false"},
		{"foreign objects win over everything else", func(o *dnsObservation) {
			o.Foreign = []string{"Service kube-system/kube-dns exists"}
			o.ReadyReplicas = 0
		},
			metav1.ConditionFalse, v1.ReasonDNSForeignObject, "Service kube-system/kube-dns exists; Plexus changes none"},
		{"none ready", func(o *dnsObservation) { o.ReadyReplicas = 0 }, metav1.ConditionFalse, v1.ReasonDNSUnavailable, "0 of 2"},
		{"scaled to zero", func(o *dnsObservation) { o.WantReplicas, o.ReadyReplicas, o.UpdatedReplicas = 0, 0, 0 }, metav1.ConditionFalse, v1.ReasonDNSUnavailable, "replicas is 0"},
		{"Service at another IP", func(o *dnsObservation) { o.ServiceIPs = []string{"10.96.0.99"} }, metav1.ConditionFalse, v1.ReasonDNSServiceIPMismatch, `"10.96.0.99"`},
		{"one of two ready", func(o *dnsObservation) { o.ReadyReplicas = 1 }, metav1.ConditionFalse, v1.ReasonDNSRollingOut, "1 of 2 CoreDNS replicas ready, 2 updated"},
		{"rollout under way", func(o *dnsObservation) { o.UpdatedReplicas = 1 }, metav1.ConditionFalse, v1.ReasonDNSRollingOut, "1 updated"},
	} {
		o := serving
		if tc.mutate != nil {
			tc.mutate(&o)
		}
		c := dnsAvailableCondition(7, o)
		if c.Type != v1.ConditionDNSAvailable || c.Status != tc.status || c.Reason != tc.reason || c.ObservedGeneration != 7 || !strings.Contains(c.Message, tc.inMessage) {
			t.Errorf("%s: got %s=%s %s %q, want %s %s containing %q", tc.name, c.Type, c.Status, c.Reason, c.Message, tc.status, tc.reason, tc.inMessage)
		}
	}
}
