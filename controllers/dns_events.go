package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/controllers/render"
)

// Reasons and the action of the events the DNS phase records on the ClusterNetwork. Each marks a
// change Plexus made (or refused to make) to the cluster DNS, once: a reconcile that changes
// nothing records nothing.
const (
	// EventDNSDeployed: CoreDNS' Deployment was created.
	EventDNSDeployed = "DNSDeployed"
	// EventDNSCorefileChanged: the Corefile changed; CoreDNS' reload plugin picks it up in place.
	EventDNSCorefileChanged = "DNSCorefileChanged"
	// EventDNSRolledOut: CoreDNS' pod template changed, so the Deployment replaces its pods.
	EventDNSRolledOut = "DNSRollout"
	// EventDNSScaled: the number of CoreDNS replicas changed.
	EventDNSScaled = "DNSScaled"
	// dnsEventAction is the events' action.
	dnsEventAction = "ApplyDNS"
)

// dnsLiveState is what the rollout events compare before and after an apply.
type dnsLiveState struct {
	// ConfigMap and Deployment say whether those objects exist.
	ConfigMap, Deployment bool
	// Corefile is the live ConfigMap's Corefile.
	Corefile string
	// Replicas is the live Deployment's spec.replicas; Template its pod template as JSON (both
	// read back from the API server, so defaults are filled in alike before and after).
	Replicas int32
	Template string
}

// dnsEvent is one event to record.
type dnsEvent struct {
	Type, Reason, Message string
}

// dnsRolloutEvents returns the events an apply that turned before into after deserves: the
// Deployment created, the Corefile changed (applied by reload, no restart), the pod template
// changed (a rolling replacement), the replicas changed. Equal states give none. It is pure.
func dnsRolloutEvents(before, after dnsLiveState, generation int64) []dnsEvent {
	var out []dnsEvent
	normal := func(reason, format string, args ...any) {
		out = append(out, dnsEvent{Type: corev1.EventTypeNormal, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	if !before.Deployment && after.Deployment {
		normal(EventDNSDeployed, "CoreDNS deployed with %d replicas (ClusterNetwork generation %d)", after.Replicas, generation)
	}
	if before.ConfigMap && after.ConfigMap && before.Corefile != after.Corefile {
		normal(EventDNSCorefileChanged, "Corefile of generation %d applied; CoreDNS reloads it without restarting", generation)
	}
	if before.Deployment && after.Deployment {
		if before.Template != after.Template {
			normal(EventDNSRolledOut, "CoreDNS pod template changed (generation %d): replacing pods one at a time, a new one ready before an old one goes", generation)
		}
		if before.Replicas != after.Replicas {
			normal(EventDNSScaled, "CoreDNS scaled from %d to %d replicas", before.Replicas, after.Replicas)
		}
	}
	return out
}

// foreignDNSEventDue says whether the conflict next (the DNSAvailable condition this reconcile
// computed) is news: it is recorded unless prev, the condition the ClusterNetwork carries from the
// last reconcile, already reported the same foreign objects, so a conflict that persists is told
// once, not on every reconcile. It is pure.
func foreignDNSEventDue(prev *metav1.Condition, next metav1.Condition) bool {
	return prev == nil || prev.Reason != next.Reason || prev.Message != next.Message
}

// foreignDNSNote remembers the foreign-object warning this process recorded last. The status
// condition foreignDNSEventDue compares with comes from the cache, which may not yet hold the
// status the previous reconcile wrote a moment ago: without the note, two reconciles in quick
// succession both record the same warning.
type foreignDNSNote struct {
	mu   sync.Mutex
	last string
}

// first says whether key (the ClusterNetwork's UID and the warning) differs from the warning
// recorded last, and remembers it; an empty key (nothing foreign any more) forgets, so the same
// conflict coming back is told again.
func (n *foreignDNSNote) first(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if key == n.last {
		return false
	}
	n.last = key
	return key != ""
}

// readDNSLiveState reads the live ConfigMap and Deployment of the cluster DNS.
func readDNSLiveState(ctx context.Context, r client.Reader) (dnsLiveState, error) {
	var s dnsLiveState
	var cm corev1.ConfigMap
	switch err := r.Get(ctx, client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSConfigMapName}, &cm); {
	case err == nil:
		s.ConfigMap, s.Corefile = true, cm.Data[render.DNSCorefileKey]
	case !apierrors.IsNotFound(err):
		return s, fmt.Errorf("read ConfigMap %s: %w", render.DNSConfigMapName, err)
	}
	var d appsv1.Deployment
	switch err := r.Get(ctx, client.ObjectKey{Namespace: render.DNSNamespace, Name: render.DNSDeploymentName}, &d); {
	case err == nil:
		s.Deployment = true
		if d.Spec.Replicas != nil {
			s.Replicas = *d.Spec.Replicas
		}
		t, err := json.Marshal(d.Spec.Template)
		if err != nil {
			return s, fmt.Errorf("encode the CoreDNS pod template: %w", err)
		}
		s.Template = string(t)
	case !apierrors.IsNotFound(err):
		return s, fmt.Errorf("read Deployment %s: %w", render.DNSDeploymentName, err)
	}
	return s, nil
}
