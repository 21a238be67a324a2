package controllers

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// dnsObservation is what the DNS phase saw, the input of dnsAvailableCondition.
type dnsObservation struct {
	// Enabled is the served spec.dns.enabled.
	Enabled bool
	// Foreign lists objects Plexus did not create and may not overwrite (foreignDNSObjects).
	Foreign []string
	// WantReplicas is the rendered replica count; Ready and Updated come from the Deployment's
	// status (Updated: replicas running the latest template).
	WantReplicas, ReadyReplicas, UpdatedReplicas int32
	// WantServiceIPs are the rendered ClusterIPs; ServiceIPs the live Service's.
	WantServiceIPs, ServiceIPs []string
	// CorefileGeneration is the ClusterNetwork generation the live Corefile was rendered from.
	CorefileGeneration int64
}

// dnsAvailableCondition computes the DNSAvailable condition. It is pure.
func dnsAvailableCondition(gen int64, o dnsObservation) metav1.Condition {
	c := metav1.Condition{Type: v1.ConditionDNSAvailable, Status: metav1.ConditionFalse, ObservedGeneration: gen}
	want, got := strings.Join(o.WantServiceIPs, ","), strings.Join(o.ServiceIPs, ",")
	switch {
	case !o.Enabled:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1.ReasonDNSDisabled, "spec.dns.enabled is false: Plexus runs no cluster DNS"
	case len(o.Foreign) > 0:
		c.Reason = v1.ReasonDNSForeignObject
		c.Message = strings.Join(o.Foreign, "; ") + "; Plexus changes none of the DNS objects until then"
	case o.WantReplicas == 0:
		c.Reason = v1.ReasonDNSUnavailable
		c.Message = "spec.dns.replicas is 0: no CoreDNS runs"
	case o.ReadyReplicas == 0:
		c.Reason = v1.ReasonDNSUnavailable
		c.Message = fmt.Sprintf("0 of %d CoreDNS replicas ready", o.WantReplicas)
	case want != got:
		c.Reason = v1.ReasonDNSServiceIPMismatch
		c.Message = fmt.Sprintf("Service kube-dns has ClusterIPs %q, want %q", got, want)
	case o.ReadyReplicas < o.WantReplicas || o.UpdatedReplicas < o.WantReplicas:
		c.Reason = v1.ReasonDNSRollingOut
		c.Message = fmt.Sprintf("%d of %d CoreDNS replicas ready, %d updated; Corefile of generation %d; Service at %s",
			o.ReadyReplicas, o.WantReplicas, o.UpdatedReplicas, o.CorefileGeneration, got)
	default:
		c.Status, c.Reason = metav1.ConditionTrue, v1.ReasonDNSServing
		c.Message = fmt.Sprintf("%d of %d CoreDNS replicas ready; Corefile of generation %d; Service kube-dns at %s",
			o.ReadyReplicas, o.WantReplicas, o.CorefileGeneration, got)
	}
	return c
}
