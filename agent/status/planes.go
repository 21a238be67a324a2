package status

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Plane is one data plane's part of a sync as the status reports it: its condition, what it
// says about Ready, and its counters. The per-plane functions below (RoutesPlane,
// MasqueradePlane, CNIPlane, ServicesPlane) compute it from what the plane did.
type Plane struct {
	// Condition is the plane's condition: Type, Status, Reason and Message (Build sets the
	// generation and transition time).
	Condition metav1.Condition
	// NotReady is the Ready message while this plane keeps the node from being Ready; empty:
	// the condition's message.
	NotReady string
	// Summary is the plane's part of the Ready message when every plane is programmed (e.g. "4
	// routes"); empty: none.
	Summary string
	// Err is the plane's failure; nil when it succeeded.
	Err error
	// Generation says the plane programs the ClusterNetwork generation: while it fails, the
	// status keeps the programmedGeneration of the last good sync.
	Generation bool
	// Counts writes the plane's counters into the status; nil: the previous values stay (the
	// plane failed, or has none).
	Counts func(*v1.NodeNetworkStatus)
}

// ok reports whether the plane's condition is True.
func (p Plane) ok() bool { return p.Condition.Status == metav1.ConditionTrue }

// condition returns a condition of type t with status ok, reason and message.
func condition(t string, ok bool, reason, msg string) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg}
}

// retrying is the message of a failure the agent retries with backoff.
func retrying(err error) string { return fmt.Sprintf("%v (retrying with backoff)", err) }

// Routes is what a sync found and did about routes.
type Routes struct {
	// Count is the number of routes programmed; Uplink the uplink interface.
	Count  int
	Uplink string
	// Unroutable lists peer pod CIDRs without a route, each with its reason.
	Unroutable []string
	// ProgrammedGeneration is the ClusterNetwork generation programmed (for messages).
	ProgrammedGeneration int64
	// Err is the failure; nil when the kernel took every change.
	Err error
}

// RoutesPlane computes the RoutesProgrammed part of a sync.
func RoutesPlane(r Routes) Plane {
	t := v1.ConditionRoutesProgrammed
	switch {
	case r.Err != nil:
		msg := retrying(r.Err)
		return Plane{Condition: condition(t, false, v1.ReasonRoutingFailed, msg), NotReady: "routes are not programmed: " + msg,
			Err: r.Err, Generation: true}
	case len(r.Unroutable) > 0:
		// Everything routable is programmed, but pods behind the unroutable CIDRs cannot be
		// reached from this node: not Ready, so the ClusterNetwork roll-up tells a person, and
		// the message names each peer and what to fix (no address, overlap, Direct across
		// subnets).
		msg := fmt.Sprintf("%d pod CIDRs of peers have no route: %s", len(r.Unroutable), strings.Join(r.Unroutable, "; "))
		return Plane{Condition: condition(t, false, v1.ReasonPartiallyRouted, msg),
			NotReady: fmt.Sprintf("pods on some peers are unreachable from this node (%d routes programmed for ClusterNetwork generation %d); see RoutesProgrammed",
				r.Count, r.ProgrammedGeneration),
			Generation: true, Counts: func(s *v1.NodeNetworkStatus) { s.Routes = int32(r.Count) }}
	default:
		return Plane{Condition: condition(t, true, v1.ReasonProgrammed,
			fmt.Sprintf("%d routes to peers' pods programmed via uplink %s", r.Count, r.Uplink)),
			Summary: fmt.Sprintf("%d routes", r.Count), Generation: true,
			Counts: func(s *v1.NodeNetworkStatus) { s.Routes = int32(r.Count) }}
	}
}

// MasqueradePlane computes the MasqueradeProgrammed part of a sync: on says masquerading is
// on, err is the failure to write (or remove) the table.
func MasqueradePlane(on bool, err error) Plane {
	t := v1.ConditionMasqueradeProgrammed
	switch {
	case err != nil:
		// Ready's message has no prefix: the reason already names the masquerade.
		return Plane{Condition: condition(t, false, v1.ReasonMasqueradeFailed, retrying(err)), Err: err, Generation: true}
	case !on:
		return Plane{Condition: condition(t, true, v1.ReasonMasqueradeDisabled,
			"routing.masquerade is off: pods leave the cluster with their own addresses"), Generation: true}
	default:
		return Plane{Condition: condition(t, true, v1.ReasonProgrammed,
			"traffic from pods to outside the cluster is masqueraded to the node IP"), Generation: true}
	}
}

// CNIPlane computes the CNIConfigured part of a sync: err is the failure to write the CNI node
// state file.
func CNIPlane(err error) Plane {
	t := v1.ConditionCNIConfigured
	if err != nil {
		return Plane{Condition: condition(t, false, v1.ReasonCNIFailed, retrying(err)), Err: err, Generation: true}
	}
	return Plane{Condition: condition(t, true, v1.ReasonProgrammed,
		"plexus-cni has the node's pod CIDRs and MTU"), Generation: true}
}

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

// ServicesPlane computes the ServicesProgrammed part of a sync. Services are not part of the
// ClusterNetwork generation: a failing service proxy does not hold it back.
func ServicesPlane(s Services) Plane {
	t := v1.ConditionServicesProgrammed
	p := Plane{Err: s.Err, Counts: func(st *v1.NodeNetworkStatus) {
		if s.Err == nil {
			st.Services, st.Endpoints = int32(s.Services), int32(s.Endpoints)
		}
		st.ServiceProxy = &v1.ServiceProxyStatus{Mode: s.Mode, SupportedFeatures: s.Supported, UnsupportedFeatures: s.Unsupported}
	}}
	switch {
	case s.Err != nil && s.Unavailable:
		p.Condition = condition(t, false, v1.ReasonServiceProxyUnavailable, s.Err.Error())
	case s.Err != nil:
		p.Condition = condition(t, false, v1.ReasonServiceProxyFailed, retrying(s.Err))
	case s.Mode == string(v1.ServiceProxyNone):
		p.Condition = condition(t, true, v1.ReasonServiceProxyDisabled,
			"serviceProxy mode none: Plexus programs no Service on this node (another proxy must)")
	default:
		// No counts in the message: they change with every Service and are reported (less
		// often, see CountsInterval) in status.services and status.endpoints.
		p.Condition = condition(t, true, v1.ReasonProgrammed, fmt.Sprintf("every Service is programmed with %s", s.Mode))
	}
	if !p.ok() {
		p.NotReady = "Services are not programmed: " + p.Condition.Message
	}
	return p
}

// NotRun is the part of a plane of condition type t in a sync that programmed nothing
// (waiting for the control plane, or failed before any plane ran): Conditions gives it the
// sync's reason.
func NotRun(t string) Plane { return Plane{Condition: metav1.Condition{Type: t}} }
