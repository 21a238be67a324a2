// Package status computes the NodeNetwork status the agent reports: pure functions from what a
// sync observed to conditions and counters, and the comparison that keeps the agent from
// patching the API when nothing a reader cares about changed.
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

// Condition reasons of the agent. The types are the consts in api/v1alpha1.
const (
	// ReasonProgrammed: the data plane matches the cluster.
	ReasonProgrammed = "Programmed"
	// ReasonPartiallyRouted: routes are programmed but some peers' pod CIDRs have no route.
	ReasonPartiallyRouted = "SomePeersUnroutable"
	// ReasonRoutingFailed: the kernel refused a routing change.
	ReasonRoutingFailed = "RoutingFailed"
	// ReasonMasqueradeFailed: the masquerade table could not be written.
	ReasonMasqueradeFailed = "MasqueradeFailed"
	// ReasonCNIFailed: the CNI node state file could not be written.
	ReasonCNIFailed = "CNINodeStateFailed"
	// ReasonSyncFailed: the sync failed before programming anything (e.g. no uplink found).
	ReasonSyncFailed = "SyncFailed"
	// ReasonServiceProxyFailed: the service proxy's data plane could not be written.
	ReasonServiceProxyFailed = "ServiceProxyFailed"
	// ReasonServiceProxyUnavailable: the kernel lacks what the chosen serviceProxy.mode needs
	// (IPVS without CONFIG_IP_VS).
	ReasonServiceProxyUnavailable = "ServiceProxyKernelSupportMissing"
	// ReasonServiceProxyDisabled: serviceProxy.mode none; Plexus programs no Service.
	ReasonServiceProxyDisabled = "ServiceProxyDisabled"
	// ReasonServicesPending: the sync failed before it got to the Services.
	ReasonServicesPending = "NotProgrammedYet"
)

// Services is what a sync found and did about Services.
type Services struct {
	// Mode is the serviceProxy mode programmed (nftables, ipvs, none).
	Mode string
	// Services, ServicePorts and Endpoints are the model's counts.
	Services, ServicePorts, Endpoints int
	// Supported and Unsupported are the backend's feature table.
	Supported, Unsupported []string
	// Err is the failure and Unavailable says it is missing kernel support.
	Err         error
	Unavailable bool
}

// Observation is what one sync found and did.
type Observation struct {
	// NodeNetworkGeneration is the generation of the node's NodeNetwork the sync read.
	NodeNetworkGeneration int64
	// ProgrammedGeneration is the ClusterNetwork appliedGeneration the sync programmed; 0 if the
	// sync did not get to program the routes (then the previous value is kept).
	ProgrammedGeneration int64
	// Waiting is set (a Waiting* reason of package agent) when the control plane has not given
	// the agent what it needs; WaitingMessage says what.
	Waiting, WaitingMessage string
	// Err is the sync's error and ErrReason its condition reason (a Reason* const); nil if it
	// succeeded.
	Err       error
	ErrReason string
	// Uplink is the uplink interface.
	Uplink string
	// NodeIPs are the node IPs used.
	NodeIPs []netip.Addr
	// MTU is the pod MTU.
	MTU int
	// Routes is the number of routes programmed.
	Routes int
	// Unroutable lists peer pod CIDRs without a route, each with its reason.
	Unroutable []string
	// Pods is the number of pod attachments on the node.
	Pods int
	// Services is the service proxy's part; nil when the sync did not get to it (or the agent
	// runs without a service proxy).
	Services *Services
	// Finished is when the sync ended and Duration how long it took.
	Finished time.Time
	Duration time.Duration
}

// Conditions computes RoutesProgrammed, ServicesProgrammed (when o has a service part or is
// waiting) and Ready for o. Ready needs both routes and Services. Every condition carries
// generation as its observedGeneration.
func Conditions(o Observation, generation int64) []metav1.Condition {
	conds := routeConditions(o, generation)
	svc, ok := ServicesCondition(o, generation)
	if !ok {
		return conds
	}
	for i := range conds {
		if conds[i].Type == v1.ConditionNodeReady && conds[i].Status == metav1.ConditionTrue && svc.Status != metav1.ConditionTrue {
			conds[i].Status, conds[i].Reason = metav1.ConditionFalse, svc.Reason
			conds[i].Message = "Services are not programmed: " + svc.Message
		}
	}
	return append(conds, svc)
}

// ServicesCondition computes ServicesProgrammed for o; false when o says nothing about Services
// (the condition then keeps its previous value).
func ServicesCondition(o Observation, generation int64) (metav1.Condition, bool) {
	c := metav1.Condition{Type: v1.ConditionServicesProgrammed, Status: metav1.ConditionFalse, ObservedGeneration: generation}
	s := o.Services
	switch {
	case o.Waiting != "":
		c.Reason, c.Message = o.Waiting, o.WaitingMessage+"; nothing is programmed until then"
	case s == nil:
		return c, false
	case s.Err != nil && s.Unavailable:
		c.Reason, c.Message = ReasonServiceProxyUnavailable, s.Err.Error()
	case s.Err != nil:
		c.Reason, c.Message = ReasonServiceProxyFailed, fmt.Sprintf("%v (retrying with backoff)", s.Err)
	case s.Mode == string(v1.ServiceProxyNone):
		c.Status, c.Reason = metav1.ConditionTrue, ReasonServiceProxyDisabled
		c.Message = "serviceProxy mode none: Plexus programs no Service on this node (another proxy must)"
	default:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonProgrammed
		// No counts in the message: they change with every Service and are reported (less
		// often, see agent.CountsInterval) in status.services and status.endpoints.
		c.Message = fmt.Sprintf("every Service is programmed with %s", s.Mode)
	}
	return c, true
}

// routeConditions computes RoutesProgrammed and Ready from the routing part of o.
func routeConditions(o Observation, generation int64) []metav1.Condition {
	cond := func(t string, ok bool, reason, msg string) metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: generation}
	}
	switch {
	case o.Waiting != "":
		msg := o.WaitingMessage + "; nothing is programmed until then"
		return []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, false, o.Waiting, msg),
			cond(v1.ConditionNodeReady, false, o.Waiting, msg),
		}
	case o.Err != nil && o.ErrReason == ReasonMasqueradeFailed || o.Err != nil && o.ErrReason == ReasonCNIFailed:
		// Routes went in; what failed afterwards keeps the node from being Ready.
		return []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, true, ReasonProgrammed, routesMessage(o)),
			cond(v1.ConditionNodeReady, false, o.ErrReason, fmt.Sprintf("%v (retrying with backoff)", o.Err)),
		}
	case o.Err != nil:
		reason := o.ErrReason
		if reason == "" {
			reason = ReasonSyncFailed
		}
		msg := fmt.Sprintf("%v (retrying with backoff)", o.Err)
		return []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, false, reason, msg),
			cond(v1.ConditionNodeReady, false, reason, "routes are not programmed: "+msg),
		}
	case len(o.Unroutable) > 0:
		// Everything routable is programmed, but pods behind the unroutable CIDRs cannot be
		// reached from this node: not Ready, so the ClusterNetwork roll-up tells a person, and the
		// message names each peer and what to fix (no address, overlap, Direct across subnets).
		msg := fmt.Sprintf("%d pod CIDRs of peers have no route: %s", len(o.Unroutable), strings.Join(o.Unroutable, "; "))
		return []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, false, ReasonPartiallyRouted, msg),
			cond(v1.ConditionNodeReady, false, ReasonPartiallyRouted,
				fmt.Sprintf("pods on some peers are unreachable from this node (%d routes programmed for ClusterNetwork generation %d); see RoutesProgrammed",
					o.Routes, o.ProgrammedGeneration)),
		}
	default:
		return []metav1.Condition{
			cond(v1.ConditionRoutesProgrammed, true, ReasonProgrammed, routesMessage(o)),
			cond(v1.ConditionNodeReady, true, ReasonProgrammed, readyMessage(o)),
		}
	}
}

func routesMessage(o Observation) string {
	return fmt.Sprintf("%d routes to peers' pods programmed via uplink %s", o.Routes, o.Uplink)
}

func readyMessage(o Observation) string {
	return fmt.Sprintf("pod network programmed for ClusterNetwork generation %d: %d routes, pod MTU %d, %d pods",
		o.ProgrammedGeneration, o.Routes, o.MTU, o.Pods)
}

// Build returns the status to report after o, starting from prev (the status the API holds):
// conditions keep their LastTransitionTime when their status does not change, and counters of
// a step the sync did not reach keep their previous values.
func Build(prev v1.NodeNetworkStatus, o Observation) v1.NodeNetworkStatus {
	s := *prev.DeepCopy()
	s.ObservedGeneration = o.NodeNetworkGeneration
	for _, c := range Conditions(o, o.NodeNetworkGeneration) {
		c.LastTransitionTime = metav1.NewTime(o.Finished)
		meta.SetStatusCondition(&s.Conditions, c)
	}
	s.LastError = ""
	if o.Err != nil {
		s.LastError = o.Err.Error()
	} else if o.Services != nil && o.Services.Err != nil {
		s.LastError = o.Services.Err.Error()
	}
	if o.Waiting != "" || o.Err != nil && o.ErrReason != ReasonMasqueradeFailed && o.ErrReason != ReasonCNIFailed {
		// Nothing was programmed: the counters of the last good sync still describe the node.
		return withTimes(s, o)
	}
	if o.ProgrammedGeneration != 0 {
		s.ProgrammedGeneration = o.ProgrammedGeneration
	}
	s.UplinkInterface = o.Uplink
	s.NodeIPs = nil
	for _, ip := range o.NodeIPs {
		s.NodeIPs = append(s.NodeIPs, ip.String())
	}
	s.MTU = int32(o.MTU)
	s.Routes = int32(o.Routes)
	s.Pods = int32(o.Pods)
	if sv := o.Services; sv != nil {
		if sv.Err == nil {
			s.Services, s.Endpoints = int32(sv.Services), int32(sv.Endpoints)
		}
		s.ServiceProxy = &v1.ServiceProxyStatus{Mode: sv.Mode, SupportedFeatures: sv.Supported, UnsupportedFeatures: sv.Unsupported}
	}
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
// services, endpoints, policy rules): the agent writes such changes less often.
func OnlyCountsChanged(prev, next v1.NodeNetworkStatus) bool {
	strip := func(s v1.NodeNetworkStatus) v1.NodeNetworkStatus {
		c := comparable(s)
		c.Routes, c.Pods, c.Services, c.Endpoints, c.PolicyRules = 0, 0, 0, 0, 0
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
