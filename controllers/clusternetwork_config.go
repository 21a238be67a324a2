package controllers

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
)

// inputs is everything a reconcile reads from the cluster.
type inputs struct {
	nodes        []corev1.Node
	nodeNetworks []v1.NodeNetwork
}

func (r *ClusterNetworkReconciler) gather(ctx context.Context) (inputs, error) {
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes); err != nil {
		return inputs{}, fmt.Errorf("list nodes: %w", err)
	}
	var nns v1.NodeNetworkList
	if err := r.APIReader.List(ctx, &nns); err != nil {
		return inputs{}, fmt.Errorf("list nodenetworks: %w", err)
	}
	return inputs{nodes: nodes.Items, nodeNetworks: nns.Items}, nil
}

// configDecision is what a reconcile makes of the spec.
type configDecision struct {
	// effective is the defaulted spec.
	effective v1.ClusterNetworkSpec
	// errs explain why the spec is refused; empty when accepted.
	errs   field.ErrorList
	reason string
	// serve is the configuration to serve: effective when accepted, otherwise the last good one
	// (nil when there never was one).
	serve *v1.ClusterNetworkSpec
}

func (d configDecision) accepted() bool { return len(d.errs) == 0 }

// decideConfig validates the spec on its own, against the running configuration and allocations,
// and against the nodes' addresses. It is pure.
func decideConfig(cn *v1.ClusterNetwork, images netconfig.Images, in inputs) configDecision {
	d := configDecision{effective: netconfig.Default(cn.Spec, images)}
	switch {
	case appendErrs(&d, netconfig.Validate(d.effective), v1.ReasonInvalidSpec):
	case appendErrs(&d, netconfig.IsChangeSafe(cn.Status.Effective, d.effective, allocatedCIDRs(in.nodeNetworks)), v1.ReasonUnsafeChange):
	case appendErrs(&d, netconfig.CheckNodeOverlap(d.effective, nodeAddresses(in.nodes)), v1.ReasonOverlap):
	}
	if d.accepted() {
		d.serve = &d.effective
	} else if cn.Status.Effective != nil {
		d.serve = cn.Status.Effective.DeepCopy()
	}
	return d
}

func appendErrs(d *configDecision, errs field.ErrorList, reason string) bool {
	if len(errs) == 0 {
		return false
	}
	d.errs, d.reason = errs, reason
	return true
}

// applyDecision records an accepted configuration in status.
func applyDecision(cn *v1.ClusterNetwork, d configDecision) {
	if !d.accepted() {
		return
	}
	cn.Status.Effective = d.effective.DeepCopy()
	cn.Status.AppliedGeneration = cn.Generation
	if d.effective.DNS != nil {
		cn.Status.DNSServiceIP = d.effective.DNS.ServiceIP
	}
}

// reportRefusal emits a warning event the first time a generation is refused.
func (r *ClusterNetworkReconciler) reportRefusal(cn *v1.ClusterNetwork, d configDecision) {
	if d.accepted() {
		return
	}
	if c := meta.FindStatusCondition(cn.Status.Conditions, v1.ConditionConfigValid); c != nil &&
		c.Status == "False" && c.ObservedGeneration == cn.Generation {
		return
	}
	r.Recorder.Eventf(cn, nil, corev1.EventTypeWarning, "ChangeRefused", "Validate",
		"generation %d refused, still serving generation %d: %s", cn.Generation, cn.Status.AppliedGeneration, d.errs.ToAggregate().Error())
}

func allocatedCIDRs(nns []v1.NodeNetwork) []netip.Prefix {
	var out []netip.Prefix
	for _, nn := range nns {
		for _, c := range nn.Spec.PodCIDRs {
			if p, err := netip.ParsePrefix(string(c)); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

func nodeAddresses(nodes []corev1.Node) []netconfig.NodeAddresses {
	out := make([]netconfig.NodeAddresses, 0, len(nodes))
	for _, n := range nodes {
		na := netconfig.NodeAddresses{Name: n.Name}
		for _, a := range usedAddresses(n) {
			if ip, err := netip.ParseAddr(a); err == nil {
				na.Addresses = append(na.Addresses, ip)
			}
		}
		out = append(out, na)
	}
	return out
}

// usedAddresses are the Node's InternalIP and ExternalIP addresses, in the Node's order.
func usedAddresses(n corev1.Node) []string {
	var out []string
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
			out = append(out, a.Address)
		}
	}
	return out
}
