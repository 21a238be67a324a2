package controllers

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// conditions computes every ClusterNetwork condition, each by its own pure function, for generation
// gen while generation applied is served.
func conditions(gen int64, d configDecision, res phaseResult, nodes v1.NodeRollup, applied int64) []metav1.Condition {
	p := findProblems(res)
	var dns *metav1.Condition
	if res.dns != nil {
		c := dnsAvailableCondition(gen, *res.dns)
		dns = &c
	}
	var ingress *metav1.Condition
	if res.ingress != nil {
		c := ingressAvailableCondition(gen, *res.ingress)
		ingress = &c
	}
	out := []metav1.Condition{
		configValidCondition(gen, d, applied),
		podCIDRsAllocatedCondition(gen, d, res.ipam, nodes),
		degradedCondition(gen, p),
		progressingCondition(gen, nodes, applied),
		readyCondition(gen, d, p, nodes, applied, dns, ingress),
	}
	for _, c := range []*metav1.Condition{dns, ingress} {
		if c != nil {
			out = append(out, *c)
		}
	}
	return out
}

// newCondition builds a condition of generation gen.
func newCondition(gen int64, t string, ok bool, reason, msg string) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
}

// problems are what needs a person, with the reason of the most serious one.
type problems struct {
	texts  []string
	reason string
}

// findProblems collects exhausted pools, allocation conflicts and phase errors; a later kind of
// problem gives the reason.
func findProblems(res phaseResult) problems {
	p := problems{reason: v1.ReasonAsExpected}
	if len(res.ipam.exhausted) > 0 {
		p.texts, p.reason = append(p.texts, exhaustionText(res.ipam)), v1.ReasonPoolExhausted
	}
	if len(res.ipam.conflicts) > 0 {
		p.texts, p.reason = append(p.texts, strings.Join(res.ipam.conflicts, "; ")), v1.ReasonReconcileError
	}
	if len(res.errs) > 0 {
		p.texts, p.reason = append(p.texts, kerrors.NewAggregate(res.errs).Error()), v1.ReasonReconcileError
	}
	return p
}

// configValidCondition says whether the latest spec is served, and which generation is if not.
func configValidCondition(gen int64, d configDecision, applied int64) metav1.Condition {
	if d.accepted() {
		return newCondition(gen, v1.ConditionConfigValid, true, v1.ReasonAsExpected, fmt.Sprintf("generation %d is valid and served", gen))
	}
	serving := "no configuration is served yet"
	if d.serve != nil {
		serving = fmt.Sprintf("still serving generation %d", applied)
	}
	return newCondition(gen, v1.ConditionConfigValid, false, d.reason, fmt.Sprintf("%s; %s", errorsText(d), serving))
}

// podCIDRsAllocatedCondition says whether every node holds its pod CIDRs.
func podCIDRsAllocatedCondition(gen int64, d configDecision, plan ipamPlan, nodes v1.NodeRollup) metav1.Condition {
	switch {
	case d.serve == nil:
		return newCondition(gen, v1.ConditionPodCIDRsAllocated, false, v1.ReasonConfigNotValid, "no valid configuration to allocate from")
	case len(plan.unallocated) == 0:
		return newCondition(gen, v1.ConditionPodCIDRsAllocated, true, v1.ReasonAllAllocated, fmt.Sprintf("%d of %d nodes hold pod CIDRs", plan.allocated, nodes.Total))
	default:
		return newCondition(gen, v1.ConditionPodCIDRsAllocated, false, v1.ReasonPoolExhausted, exhaustionText(plan))
	}
}

// degradedCondition is True while there are problems.
func degradedCondition(gen int64, p problems) metav1.Condition {
	if len(p.texts) > 0 {
		return newCondition(gen, v1.ConditionDegraded, true, p.reason, strings.Join(p.texts, "; "))
	}
	return newCondition(gen, v1.ConditionDegraded, false, v1.ReasonAsExpected, "no problems found")
}

// progressingCondition is True while some nodes have not programmed the applied generation.
func progressingCondition(gen int64, nodes v1.NodeRollup, applied int64) metav1.Condition {
	if nodes.AtGeneration < nodes.Total {
		return newCondition(gen, v1.ConditionProgressing, true, v1.ReasonNodesProgramming,
			fmt.Sprintf("%d of %d nodes have programmed generation %d", nodes.AtGeneration, nodes.Total, applied))
	}
	return newCondition(gen, v1.ConditionProgressing, false, v1.ReasonAllNodesProgrammed, fmt.Sprintf("all %d nodes have programmed generation %d", nodes.Total, applied))
}

// readyCondition is True when the latest spec is served without problems and every node is Ready
// at the applied generation, and the cluster DNS and the ingress controller (when they ran) are
// available.
func readyCondition(gen int64, d configDecision, p problems, nodes v1.NodeRollup, applied int64, dns, ingress *metav1.Condition) metav1.Condition {
	switch {
	case !d.accepted():
		return newCondition(gen, v1.ConditionReady, false, v1.ReasonConfigNotValid, "the latest spec is not served: see ConfigValid")
	case len(p.texts) > 0:
		return newCondition(gen, v1.ConditionReady, false, p.reason, "see Degraded")
	case nodes.Total == 0:
		return newCondition(gen, v1.ConditionReady, false, v1.ReasonNoNodes, "the cluster has no nodes yet")
	case nodes.Ready < nodes.Total || nodes.AtGeneration < nodes.Total:
		return newCondition(gen, v1.ConditionReady, false, v1.ReasonNodesNotReady,
			fmt.Sprintf("%d of %d nodes report Ready, %d at generation %d", nodes.Ready, nodes.Total, nodes.AtGeneration, applied))
	case dns != nil && dns.Status != metav1.ConditionTrue:
		return newCondition(gen, v1.ConditionReady, false, v1.ReasonDNSNotAvailable, "cluster DNS is not available: "+dns.Message)
	case ingress != nil && ingress.Status != metav1.ConditionTrue:
		return newCondition(gen, v1.ConditionReady, false, v1.ReasonIngressNotAvailable, "the ingress controller is not available: "+ingress.Message)
	default:
		return newCondition(gen, v1.ConditionReady, true, v1.ReasonAsExpected, fmt.Sprintf("all %d nodes are networked at generation %d", nodes.Total, applied))
	}
}
