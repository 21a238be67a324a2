package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/component"
)

// reconcileIPAM plans the node allocations and carries the plan out: stale NodeNetworks deleted,
// new and changed ones applied, Node.spec.podCIDRs written when asked for.
// The plan is left in s.res for the status.
func (r *ClusterNetworkReconciler) reconcileIPAM(ctx context.Context, s *phaseScope) error {
	log := ctrl.LoggerFrom(ctx)
	cn, in := s.cn, s.in
	plan, err := planIPAM(s.served, in.nodes, in.nodeNetworks)
	s.res.ipam = plan
	if err != nil {
		return fmt.Errorf("plan pod CIDR allocation: %w", err)
	}
	var errs []error
	for i := range plan.deletes {
		nn := &plan.deletes[i]
		if err := r.Client.Delete(ctx, nn); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("release pod CIDRs of deleted node %s: %w", nn.Name, err))
			continue
		}
		releases.Add(float64(len(nn.Spec.PodCIDRs)))
		log.V(2).Info("released pod CIDRs", "node", nn.Name, "podCIDRs", nn.Spec.PodCIDRs)
		r.Recorder.Eventf(cn, nil, corev1.EventTypeNormal, "PodCIDRReleased", "Release",
			"released %s of deleted node %s", joinCIDRs(nn.Spec.PodCIDRs), nn.Name)
	}
	nodes := map[string]*corev1.Node{}
	for i := range in.nodes {
		nodes[in.nodes[i].Name] = &in.nodes[i]
	}
	for _, up := range plan.upserts {
		if err := apply.Object(ctx, r.Client, apply.FieldOwnerIPAM, nodeNetworkFor(up)); err != nil {
			errs = append(errs, err)
			continue
		}
		if msg, ok := plan.warnings[up.node]; ok {
			r.Recorder.Eventf(nodes[up.node], nil, corev1.EventTypeWarning, "PodCIDRNotAdopted", "Allocate", "%s", msg)
		}
		if len(up.allocated) == 0 {
			continue
		}
		allocations.Add(float64(len(up.allocated)))
		verb := "allocated"
		if up.adopted {
			verb = "adopted"
		}
		log.V(2).Info("pod CIDRs "+verb, "node", up.node, "podCIDRs", up.spec.PodCIDRs)
		r.Recorder.Eventf(nodes[up.node], nil, corev1.EventTypeNormal, "PodCIDRAllocated", "Allocate",
			"%s pod CIDRs %s", verb, joinCIDRs(up.spec.PodCIDRs))
	}
	for node, cidrs := range plan.nodePatches {
		patch := &corev1.Node{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
			ObjectMeta: metav1.ObjectMeta{Name: node},
			Spec:       corev1.NodeSpec{PodCIDR: cidrs[0], PodCIDRs: cidrs},
		}
		if err := apply.Object(ctx, r.Client, apply.FieldOwnerNodes, patch); err != nil {
			errs = append(errs, fmt.Errorf("write spec.podCIDRs of node %s: %w", node, err))
		}
	}
	recordUsage(plan.usage)
	return kerrors.NewAggregate(errs)
}

func nodeNetworkFor(up nodeNetworkUpsert) *v1.NodeNetwork {
	return &v1.NodeNetwork{
		TypeMeta: metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "NodeNetwork"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   up.node,
			Labels: map[string]string{component.LabelManagedBy: component.ManagedBy},
		},
		Spec: up.spec,
	}
}

func joinCIDRs(cs []v1.CIDR) string {
	return strings.Join(cidrStrings(cs), ", ")
}
