package controllers

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/ipam"
)

// maxNamed bounds how many node names a condition message lists.
const maxNamed = 10

// setStatus fills the roll-up, usage and conditions from what the reconcile decided and found.
func setStatus(cn *v1.ClusterNetwork, d configDecision, res phaseResult, in inputs) {
	cn.Status.Nodes = rollup(in, res.ipam, cn.Status.AppliedGeneration)
	cn.Status.PodCIDRUsage = usageStatus(res.ipam.usage)
	for _, c := range conditions(cn.Generation, d, res, cn.Status.Nodes, cn.Status.AppliedGeneration) {
		meta.SetStatusCondition(&cn.Status.Conditions, c)
	}
}

// rollup counts nodes from the Nodes and their NodeNetworks' status.
func rollup(in inputs, plan ipamPlan, appliedGeneration int64) v1.NodeRollup {
	r := v1.NodeRollup{Total: int32(len(in.nodes)), Allocated: int32(plan.allocated)}
	nodes := map[string]bool{}
	for _, n := range in.nodes {
		nodes[n.Name] = true
	}
	for _, nn := range in.nodeNetworks {
		if !nodes[nn.Name] {
			continue
		}
		if meta.IsStatusConditionTrue(nn.Status.Conditions, v1.ConditionNodeReady) {
			r.Ready++
		}
		if appliedGeneration > 0 && nn.Status.ProgrammedGeneration == appliedGeneration {
			r.AtGeneration++
		}
	}
	r.Summary = fmt.Sprintf("%d/%d", r.Ready, r.Total)
	return r
}

func usageStatus(usage []ipam.Usage) []v1.CIDRUsage {
	out := make([]v1.CIDRUsage, 0, len(usage))
	for _, u := range usage {
		out = append(out, v1.CIDRUsage{CIDR: u.CIDR.String(), NodeMaskSize: int32(u.MaskSize), Capacity: int64(u.Capacity), Allocated: int64(u.Allocated)})
	}
	return out
}

// conditions computes every ClusterNetwork condition. It is pure.
func conditions(gen int64, d configDecision, res phaseResult, nodes v1.NodeRollup, applied int64) []metav1.Condition {
	cond := func(t string, ok bool, reason, msg string) metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
	}
	var out []metav1.Condition

	if d.accepted() {
		out = append(out, cond(v1.ConditionConfigValid, true, v1.ReasonAsExpected, fmt.Sprintf("generation %d is valid and served", gen)))
	} else {
		serving := "no configuration is served yet"
		if d.serve != nil {
			serving = fmt.Sprintf("still serving generation %d", applied)
		}
		out = append(out, cond(v1.ConditionConfigValid, false, d.reason, fmt.Sprintf("%s; %s", errorsText(d), serving)))
	}

	plan := res.ipam
	allocOK := len(plan.unallocated) == 0 && d.serve != nil
	switch {
	case d.serve == nil:
		out = append(out, cond(v1.ConditionPodCIDRsAllocated, false, v1.ReasonConfigNotValid, "no valid configuration to allocate from"))
	case allocOK:
		out = append(out, cond(v1.ConditionPodCIDRsAllocated, true, v1.ReasonAllAllocated, fmt.Sprintf("%d of %d nodes hold pod CIDRs", plan.allocated, nodes.Total)))
	default:
		out = append(out, cond(v1.ConditionPodCIDRsAllocated, false, v1.ReasonPoolExhausted, exhaustionText(plan)))
	}

	var problems []string
	degradedReason := v1.ReasonAsExpected
	if len(plan.exhausted) > 0 {
		problems, degradedReason = append(problems, exhaustionText(plan)), v1.ReasonPoolExhausted
	}
	if len(plan.conflicts) > 0 {
		problems, degradedReason = append(problems, strings.Join(plan.conflicts, "; ")), v1.ReasonReconcileError
	}
	if len(res.errs) > 0 {
		problems, degradedReason = append(problems, kerrors.NewAggregate(res.errs).Error()), v1.ReasonReconcileError
	}
	if len(problems) > 0 {
		out = append(out, cond(v1.ConditionDegraded, true, degradedReason, strings.Join(problems, "; ")))
	} else {
		out = append(out, cond(v1.ConditionDegraded, false, v1.ReasonAsExpected, "no problems found"))
	}

	programming := nodes.AtGeneration < nodes.Total
	if programming {
		out = append(out, cond(v1.ConditionProgressing, true, v1.ReasonNodesProgramming,
			fmt.Sprintf("%d of %d nodes have programmed generation %d", nodes.AtGeneration, nodes.Total, applied)))
	} else {
		out = append(out, cond(v1.ConditionProgressing, false, v1.ReasonAllNodesProgrammed, fmt.Sprintf("all %d nodes have programmed generation %d", nodes.Total, applied)))
	}

	switch {
	case !d.accepted():
		out = append(out, cond(v1.ConditionReady, false, v1.ReasonConfigNotValid, "the latest spec is not served: see ConfigValid"))
	case len(problems) > 0:
		out = append(out, cond(v1.ConditionReady, false, degradedReason, "see Degraded"))
	case nodes.Total == 0:
		out = append(out, cond(v1.ConditionReady, false, v1.ReasonNoNodes, "the cluster has no nodes yet"))
	case nodes.Ready < nodes.Total || programming:
		out = append(out, cond(v1.ConditionReady, false, v1.ReasonNodesNotReady,
			fmt.Sprintf("%d of %d nodes report Ready, %d at generation %d", nodes.Ready, nodes.Total, nodes.AtGeneration, applied)))
	default:
		out = append(out, cond(v1.ConditionReady, true, v1.ReasonAsExpected, fmt.Sprintf("all %d nodes are networked at generation %d", nodes.Total, applied)))
	}
	return out
}

func errorsText(d configDecision) string {
	msgs := make([]string, 0, len(d.errs))
	for _, e := range d.errs {
		msgs = append(msgs, e.Error())
	}
	return strings.Join(msgs, "; ")
}

func exhaustionText(plan ipamPlan) string {
	names := plan.unallocated
	more := ""
	if len(names) > maxNamed {
		more = fmt.Sprintf(" and %d more", len(names)-maxNamed)
		names = names[:maxNamed]
	}
	fams := make([]string, 0, len(plan.exhausted))
	for _, f := range plan.exhausted {
		fams = append(fams, f.String())
	}
	return fmt.Sprintf("no free %s pod CIDR for %d nodes: %s%s; add a CIDR to spec.podNetwork.cidrs",
		strings.Join(fams, "/"), len(plan.unallocated), strings.Join(names, ", "), more)
}

// setNotDefaultConditions marks a ClusterNetwork other than "default" as ignored.
func setNotDefaultConditions(cn *v1.ClusterNetwork) {
	meta.SetStatusCondition(&cn.Status.Conditions, metav1.Condition{
		Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1.ReasonNotDefault, ObservedGeneration: cn.Generation,
		Message: fmt.Sprintf("only the ClusterNetwork named %q is reconciled; put this configuration there and delete %q", v1.DefaultClusterNetworkName, cn.Name),
	})
	cn.Status.ObservedGeneration = cn.Generation
}
