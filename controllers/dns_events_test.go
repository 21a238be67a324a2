package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func TestDNSRolloutEvents(t *testing.T) {
	running := dnsLiveState{ConfigMap: true, Deployment: true, Corefile: "cluster.local:53 {}", Replicas: 2, Template: `{"image":"a"}`}
	for _, tc := range []struct {
		name   string
		before func(*dnsLiveState)
		after  func(*dnsLiveState)
		want   []string // reason: message prefix
	}{
		{"nothing changed", nil, nil, nil},
		{"first apply", func(s *dnsLiveState) { *s = dnsLiveState{} }, nil, []string{"DNSDeployed: CoreDNS deployed with 2 replicas (ClusterNetwork generation 7)"}},
		{"Corefile edited", nil, func(s *dnsLiveState) { s.Corefile += "\nlab.test:53 {}" },
			[]string{"DNSCorefileChanged: Corefile of generation 7 applied; CoreDNS reloads it without restarting"}},
		{"image changed", nil, func(s *dnsLiveState) { s.Template = `{"image":"b"}` }, []string{"DNSRollout: CoreDNS pod template changed (generation 7)"}},
		{"grew with the cluster", nil, func(s *dnsLiveState) { s.Replicas = 3 }, []string{"DNSScaled: CoreDNS scaled from 2 to 3 replicas"}},
		{"rolled and scaled at once", nil, func(s *dnsLiveState) { s.Replicas, s.Template = 1, "{}" },
			[]string{"DNSRollout: ", "DNSScaled: CoreDNS scaled from 2 to 1 replicas"}},
		{"disabled: removal tells nothing here", nil, func(s *dnsLiveState) { *s = dnsLiveState{} }, nil},
	} {
		before, after := running, running
		if tc.before != nil {
			tc.before(&before)
		}
		if tc.after != nil {
			tc.after(&after)
		}
		got := dnsRolloutEvents(before, after, 7)
		if len(got) != len(tc.want) {
			t.Errorf("%s: events %+v, want %q", tc.name, got, tc.want)
			continue
		}
		for i, e := range got {
			if e.Type != "Normal" || !strings.HasPrefix(e.Reason+": "+e.Message, tc.want[i]) {
				t.Errorf("%s: [%d] = %s %s: %s, want prefix %q", tc.name, i, e.Type, e.Reason, e.Message, tc.want[i])
			}
		}
	}
}

func TestForeignDNSEventIsToldOnce(t *testing.T) {
	foreign := dnsObservation{Enabled: true, Foreign: []string{"Service kube-system/kube-dns exists and was not created by Plexus"}}
	next := dnsAvailableCondition(3, foreign)
	if !foreignDNSEventDue(nil, next) {
		t.Error("a first conflict is news")
	}
	serving := dnsAvailableCondition(2, dnsObservation{Enabled: true, WantReplicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1})
	if !foreignDNSEventDue(&serving, next) {
		t.Error("a conflict after serving is news")
	}
	same := dnsAvailableCondition(2, foreign) // an older generation: the same objects are still news to no one
	if foreignDNSEventDue(&same, next) {
		t.Error("the same conflict on the next reconcile must not be told again")
	}
	more := foreign
	more.Foreign = append(more.Foreign, "Deployment kube-system/coredns exists")
	if !foreignDNSEventDue(&same, dnsAvailableCondition(3, more)) {
		t.Error("another foreign object is news")
	}
	if next.Reason != v1.ReasonDNSForeignObject || next.Status != metav1.ConditionFalse {
		t.Fatalf("condition %+v", next)
	}
}
