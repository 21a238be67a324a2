package controllers

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/ipam"
)

func TestConditions(t *testing.T) {
	ips := []string{"10.96.0.10"}
	dnsServing := dnsObservation{Enabled: true, WantReplicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, WantServiceIPs: ips, ServiceIPs: ips}
	dnsStarting := dnsObservation{Enabled: true, WantReplicas: 2, WantServiceIPs: ips, ServiceIPs: ips}
	served := servedSpec("10.244.0.0/16")
	ok := configDecision{effective: served, serve: &served}
	refused := configDecision{effective: served, serve: &served, reason: v1.ReasonUnsafeChange,
		errs: field.ErrorList{field.Forbidden(field.NewPath("spec", "serviceNetwork", "cidrs"), "no")}}
	never := configDecision{effective: served, reason: v1.ReasonInvalidSpec,
		errs: field.ErrorList{field.Invalid(field.NewPath("spec", "podNetwork", "cidrs").Index(0), "x", "bad")}}
	all := v1.NodeRollup{Total: 3, Allocated: 3, Ready: 3, AtGeneration: 3}
	type want map[string]struct {
		status metav1.ConditionStatus
		reason string
	}
	cases := []struct {
		name  string
		d     configDecision
		res   phaseResult
		nodes v1.NodeRollup
		want  want
	}{
		{"all good", ok, phaseResult{ipam: ipamPlan{allocated: 3}}, all, want{
			v1.ConditionReady: {metav1.ConditionTrue, v1.ReasonAsExpected}, v1.ConditionConfigValid: {metav1.ConditionTrue, v1.ReasonAsExpected},
			v1.ConditionProgressing: {metav1.ConditionFalse, v1.ReasonAllNodesProgrammed}, v1.ConditionDegraded: {metav1.ConditionFalse, v1.ReasonAsExpected},
			v1.ConditionPodCIDRsAllocated: {metav1.ConditionTrue, v1.ReasonAllAllocated}}},
		{"agents behind", ok, phaseResult{ipam: ipamPlan{allocated: 3}}, v1.NodeRollup{Total: 3, Allocated: 3, Ready: 3, AtGeneration: 1}, want{
			v1.ConditionReady: {metav1.ConditionFalse, v1.ReasonNodesNotReady}, v1.ConditionProgressing: {metav1.ConditionTrue, v1.ReasonNodesProgramming}}},
		{"no nodes", ok, phaseResult{}, v1.NodeRollup{}, want{v1.ConditionReady: {metav1.ConditionFalse, v1.ReasonNoNodes}}},
		{"refused change", refused, phaseResult{ipam: ipamPlan{allocated: 3}}, all, want{
			v1.ConditionReady: {metav1.ConditionFalse, v1.ReasonConfigNotValid}, v1.ConditionConfigValid: {metav1.ConditionFalse, v1.ReasonUnsafeChange},
			v1.ConditionPodCIDRsAllocated: {metav1.ConditionTrue, v1.ReasonAllAllocated}}},
		{"never valid", never, phaseResult{}, v1.NodeRollup{Total: 1}, want{
			v1.ConditionConfigValid: {metav1.ConditionFalse, v1.ReasonInvalidSpec}, v1.ConditionPodCIDRsAllocated: {metav1.ConditionFalse, v1.ReasonConfigNotValid}}},
		{"exhausted", ok, phaseResult{ipam: ipamPlan{allocated: 2, unallocated: []string{"n3"}, exhausted: []ipam.Family{ipam.IPv4}}}, v1.NodeRollup{Total: 3, Allocated: 2}, want{
			v1.ConditionPodCIDRsAllocated: {metav1.ConditionFalse, v1.ReasonPoolExhausted}, v1.ConditionDegraded: {metav1.ConditionTrue, v1.ReasonPoolExhausted},
			v1.ConditionReady: {metav1.ConditionFalse, v1.ReasonPoolExhausted}}},
		{"phase error", ok, phaseResult{ipam: ipamPlan{allocated: 3}, errs: []error{errors.New("apply failed")}}, all, want{
			v1.ConditionDegraded: {metav1.ConditionTrue, v1.ReasonReconcileError}, v1.ConditionReady: {metav1.ConditionFalse, v1.ReasonReconcileError}}},
		{"DNS serving", ok, phaseResult{ipam: ipamPlan{allocated: 3}, dns: &dnsServing}, all, want{
			v1.ConditionDNSAvailable: {metav1.ConditionTrue, v1.ReasonDNSServing}, v1.ConditionReady: {metav1.ConditionTrue, v1.ReasonAsExpected}}},
		{"DNS disabled", ok, phaseResult{ipam: ipamPlan{allocated: 3}, dns: &dnsObservation{}}, all, want{
			v1.ConditionDNSAvailable: {metav1.ConditionTrue, v1.ReasonDNSDisabled}, v1.ConditionReady: {metav1.ConditionTrue, v1.ReasonAsExpected}}},
		{"DNS not ready rolls into Ready", ok, phaseResult{ipam: ipamPlan{allocated: 3}, dns: &dnsStarting}, all, want{
			v1.ConditionDNSAvailable: {metav1.ConditionFalse, v1.ReasonDNSUnavailable}, v1.ConditionReady: {metav1.ConditionFalse, v1.ReasonDNSNotAvailable},
			v1.ConditionDegraded: {metav1.ConditionFalse, v1.ReasonAsExpected}}},
		{"foreign kube-dns rolls into Ready", ok, phaseResult{ipam: ipamPlan{allocated: 3}, dns: &dnsObservation{Enabled: true, Foreign: []string{"Service kube-system/kube-dns exists"}}}, all, want{
			v1.ConditionDNSAvailable: {metav1.ConditionFalse, v1.ReasonDNSForeignObject}, v1.ConditionReady: {metav1.ConditionFalse, v1.ReasonDNSNotAvailable}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := map[string]metav1.Condition{}
			for _, cond := range conditions(7, c.d, c.res, c.nodes, 6) {
				if cond.ObservedGeneration != 7 {
					t.Errorf("%s has observedGeneration %d, want 7", cond.Type, cond.ObservedGeneration)
				}
				if cond.Message == "" {
					t.Errorf("%s has no message", cond.Type)
				}
				got[cond.Type] = cond
			}
			wantCount := 5
			if c.res.dns != nil {
				wantCount++ // DNSAvailable, once the DNS phase ran
			}
			if len(got) != wantCount {
				t.Fatalf("got %d conditions, want all %d", len(got), wantCount)
			}
			for typ, w := range c.want {
				if got[typ].Status != w.status || got[typ].Reason != w.reason {
					t.Errorf("%s = %s/%s (%s), want %s/%s", typ, got[typ].Status, got[typ].Reason, got[typ].Message, w.status, w.reason)
				}
			}
		})
	}
}

func TestExhaustionMessageNamesNodes(t *testing.T) {
	plan := ipamPlan{unallocated: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}, exhausted: []ipam.Family{ipam.IPv4, ipam.IPv6}}
	got := exhaustionText(plan)
	want := "no free IPv4/IPv6 pod CIDR for 12 nodes: a, b, c, d, e, f, g, h, i, j and 2 more; add a CIDR to spec.podNetwork.cidrs"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatal(diff)
	}
}

func TestNotDefaultCondition(t *testing.T) {
	cn := &v1.ClusterNetwork{ObjectMeta: metav1.ObjectMeta{Name: "staging", Generation: 2}}
	setNotDefaultConditions(cn)
	want := []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1.ReasonNotDefault, ObservedGeneration: 2,
		Message: `only the ClusterNetwork named "default" is reconciled; put this configuration there and delete "staging"`}}
	if diff := cmp.Diff(want, cn.Status.Conditions, cmpopts.IgnoreFields(metav1.Condition{}, "LastTransitionTime")); diff != "" {
		t.Fatal(diff)
	}
}
