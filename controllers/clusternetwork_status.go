package controllers

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	meta.SetStatusCondition(&cn.Status.Conditions, connectivityCondition(cn.Generation, in))
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
