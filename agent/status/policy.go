package status

import (
	"fmt"
	"strings"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Policies is what a sync found and did about NetworkPolicies.
type Policies struct {
	// Enabled is networkPolicy.enabled; false: the table was removed.
	Enabled bool
	// Policies is the number of policies selecting local pods, IsolatedPods the local pods
	// some policy isolates; Rules and Objects count the table's rules and kernel objects.
	Policies, IsolatedPods, Rules, Objects int
	// Unreadable are the compiler's errors: policies it could not read fully, which fail
	// closed (each error names its policy).
	Unreadable []error
	// Err is the failure to write (or remove) the table, or to cut connections.
	Err error
}

// PoliciesPlane computes the PoliciesProgrammed part of a sync. NetworkPolicies are API
// objects, not part of the ClusterNetwork generation: a failing plane does not hold it back.
func PoliciesPlane(p Policies) Plane {
	t := v1.ConditionPoliciesProgrammed
	var out Plane
	switch {
	case p.Err != nil:
		out = Plane{Condition: condition(t, false, v1.ReasonPolicyFailed, retrying(p.Err)), Err: p.Err}
		out.NotReady = "NetworkPolicies are not enforced as the cluster says: " + out.Condition.Message
		return out
	case !p.Enabled:
		out.Condition = condition(t, true, v1.ReasonPolicyDisabled,
			"networkPolicy.enabled is false: no NetworkPolicy is enforced on this node, all pod traffic is allowed")
	case len(p.Unreadable) > 0:
		msgs := make([]string, len(p.Unreadable))
		for i, e := range p.Unreadable {
			msgs[i] = e.Error()
		}
		out.Condition = condition(t, true, v1.ReasonPolicyUnreadable, fmt.Sprintf(
			"every NetworkPolicy that selects pods of this node is enforced, but %d could not be read fully and fail closed (allow less than they say): %s",
			len(p.Unreadable), strings.Join(msgs, "; ")))
	default:
		// No counts in the message: they change with every pod and policy and are reported
		// (less often, see CountsInterval) in status.policies, isolatedPods, policyRules and
		// policyObjects.
		out.Condition = condition(t, true, v1.ReasonProgrammed, "every NetworkPolicy that selects pods of this node is enforced")
	}
	out.Counts = func(s *v1.NodeNetworkStatus) {
		s.Policies, s.IsolatedPods = int32(p.Policies), int32(p.IsolatedPods)
		s.PolicyRules, s.PolicyObjects = int32(p.Rules), int32(p.Objects)
	}
	return out
}
