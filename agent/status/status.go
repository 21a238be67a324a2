// Package status computes the NodeNetwork status the agent reports: pure functions from what a
// sync observed to conditions and counters (one condition per data plane, each from its own
// function in planes.go, and Ready from all of them), and the comparison that keeps the agent
// from patching the API when nothing a reader cares about changed. Reporter holds what the
// agent remembers between patches.
package status

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Observation is what one sync found and did.
type Observation struct {
	// NodeNetworkGeneration is the generation of the node's NodeNetwork the sync read.
	NodeNetworkGeneration int64
	// ProgrammedGeneration is the ClusterNetwork appliedGeneration the sync programmed; 0 if the
	// sync did not get to translate it. It is reported only when no plane that programs it
	// (Plane.Generation) failed; otherwise the previous value is kept.
	ProgrammedGeneration int64
	// Waiting is set (a v1alpha1 ReasonWaitingFor* reason) when the control plane has not given
	// the agent what it needs; WaitingMessage says what. No plane ran.
	Waiting, WaitingMessage string
	// Err is a failure before any plane ran (e.g. no uplink); nil if the planes ran.
	Err error
	// Uplink is the uplink interface.
	Uplink string
	// NodeIPs are the node IPs used.
	NodeIPs []netip.Addr
	// MTU is the pod MTU.
	MTU int
	// Pods is the number of pod attachments on the node.
	Pods int
	// Planes are the data planes' parts, in the order the agent runs them (with Waiting or Err:
	// NotRun parts naming their condition types).
	Planes []Plane
	// Finished is when the sync ended and Duration how long it took.
	Finished time.Time
	Duration time.Duration
}

// ranPlanes reports whether the planes ran (the sync neither waited nor failed before them).
func (o Observation) ranPlanes() bool { return o.Waiting == "" && o.Err == nil }

// Conditions computes every plane's condition and Ready for o, in the order of o.Planes with
// Ready last. Ready is True when every plane's condition is; otherwise it carries the reason of
// the first plane that is not. Every condition carries generation as its observedGeneration.
func Conditions(o Observation, generation int64) []metav1.Condition {
	conds := make([]metav1.Condition, 0, len(o.Planes)+1)
	add := func(c metav1.Condition) {
		c.ObservedGeneration = generation
		conds = append(conds, c)
	}
	if !o.ranPlanes() {
		reason, msg := o.Waiting, o.WaitingMessage+"; nothing is programmed until then"
		if o.Waiting == "" {
			reason, msg = v1.ReasonSyncFailed, "nothing is programmed: "+retrying(o.Err)
		}
		for _, p := range o.Planes {
			add(condition(p.Condition.Type, false, reason, msg))
		}
		add(condition(v1.ConditionNodeReady, false, reason, msg))
		return conds
	}
	ready := condition(v1.ConditionNodeReady, true, v1.ReasonProgrammed, readyMessage(o))
	for _, p := range o.Planes {
		add(p.Condition)
		if !p.ok() && ready.Status == metav1.ConditionTrue {
			msg := p.NotReady
			if msg == "" {
				msg = p.Condition.Message
			}
			ready = condition(v1.ConditionNodeReady, false, p.Condition.Reason, msg)
		}
	}
	add(ready)
	return conds
}

// readyMessage says what a node whose every plane is programmed has.
func readyMessage(o Observation) string {
	var parts []string
	for _, p := range o.Planes {
		if p.Summary != "" {
			parts = append(parts, p.Summary)
		}
	}
	parts = append(parts, fmt.Sprintf("pod MTU %d", o.MTU), fmt.Sprintf("%d pods", o.Pods))
	return fmt.Sprintf("pod network programmed for ClusterNetwork generation %d: %s", o.ProgrammedGeneration, strings.Join(parts, ", "))
}

// lastError is the status.lastError of o: the sync's failure, or its planes' joined; empty
// when everything succeeded.
func lastError(o Observation) string {
	if o.Err != nil {
		return o.Err.Error()
	}
	var msgs []string
	for _, p := range o.Planes {
		if p.Err != nil {
			msgs = append(msgs, p.Err.Error())
		}
	}
	return strings.Join(msgs, "; ")
}

// Build returns the status to report after o, starting from prev (the status the API holds):
// conditions keep their LastTransitionTime when their status does not change, and counters of
// a plane that failed (or a sync that programmed nothing) keep their previous values.
func Build(prev v1.NodeNetworkStatus, o Observation) v1.NodeNetworkStatus {
	s := *prev.DeepCopy()
	s.ObservedGeneration = o.NodeNetworkGeneration
	for _, c := range Conditions(o, o.NodeNetworkGeneration) {
		c.LastTransitionTime = metav1.NewTime(o.Finished)
		meta.SetStatusCondition(&s.Conditions, c)
	}
	s.LastError = lastError(o)
	if !o.ranPlanes() {
		// Nothing was programmed: the counters of the last good sync still describe the node.
		return withTimes(s, o)
	}
	generationProgrammed := o.ProgrammedGeneration != 0
	for _, p := range o.Planes {
		if p.Counts != nil {
			p.Counts(&s)
		}
		if p.Generation && p.Err != nil {
			generationProgrammed = false
		}
	}
	if generationProgrammed {
		s.ProgrammedGeneration = o.ProgrammedGeneration
	}
	s.UplinkInterface = o.Uplink
	s.NodeIPs = nil
	for _, ip := range o.NodeIPs {
		s.NodeIPs = append(s.NodeIPs, ip.String())
	}
	s.MTU = int32(o.MTU)
	s.Pods = int32(o.Pods)
	return withTimes(s, o)
}

func withTimes(s v1.NodeNetworkStatus, o Observation) v1.NodeNetworkStatus {
	t := metav1.NewTime(o.Finished.Truncate(time.Second))
	s.LastSyncTime = &t
	s.LastSyncDuration = &metav1.Duration{Duration: o.Duration}
	return s
}

// Changed reports whether next differs from prev in anything but the sync time and duration
// and the conditions' LastTransitionTime: only then is a patch worth its API write.
func Changed(prev, next v1.NodeNetworkStatus) bool {
	return !equality.Semantic.DeepEqual(comparable(prev), comparable(next))
}

// OnlyCountsChanged reports whether next differs from prev in the counts alone (routes, pods,
// services, endpoints, policy counts): the agent writes such changes less often.
func OnlyCountsChanged(prev, next v1.NodeNetworkStatus) bool {
	strip := func(s v1.NodeNetworkStatus) v1.NodeNetworkStatus {
		c := comparable(s)
		c.Routes, c.Pods, c.Services, c.Endpoints = 0, 0, 0, 0
		c.PolicyRules, c.Policies, c.IsolatedPods, c.PolicyObjects = 0, 0, 0, 0
		return c
	}
	return Changed(prev, next) && equality.Semantic.DeepEqual(strip(prev), strip(next))
}

func comparable(s v1.NodeNetworkStatus) v1.NodeNetworkStatus {
	c := *s.DeepCopy()
	c.LastSyncTime, c.LastSyncDuration = nil, nil
	for i := range c.Conditions {
		c.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	if len(c.Conditions) == 0 {
		c.Conditions = nil
	}
	if len(c.NodeIPs) == 0 {
		c.NodeIPs = nil
	}
	return c
}
