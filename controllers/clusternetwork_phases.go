package controllers

import (
	"context"
	"time"

	kerrors "k8s.io/apimachinery/pkg/util/errors"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/render"
)

// phaseResult collects what the phases of one reconcile found.
type phaseResult struct {
	ipam ipamPlan
	// dns is what the DNS phase saw; nil when it did not run.
	dns *dnsObservation
	// ingress is what the ingress phase saw; nil when it did not run.
	ingress *ingressObservation
	// requeueAfter asks for another reconcile this long after a phase that waits on the API
	// server (0: none).
	requeueAfter time.Duration
	errs         []error
}

// phaseScope is what every phase of one reconcile reads and fills.
type phaseScope struct {
	cn     *v1.ClusterNetwork
	served v1.ClusterNetworkSpec
	in     inputs
	res    *phaseResult
}

// phase is one named step of a reconcile. A failing phase does not stop the next: their errors are
// aggregated and reported together.
type phase struct {
	name string
	run  func(ctx context.Context, s *phaseScope) error
}

// phases lists the reconcile's steps in order: pod CIDRs first, then every managed component.
func (r *ClusterNetworkReconciler) phases() []phase {
	out := []phase{{name: "ipam", run: r.reconcileIPAM}}
	for _, c := range ManagedComponents(r.Namespace) {
		if c.Phase != nil {
			out = append(out, c.Phase(r, c))
			continue
		}
		out = append(out, componentPhase(r, c))
	}
	return out
}

// componentPhase renders a component from the served spec, stamps the generation and applies it,
// pruning what it no longer renders.
func componentPhase(r *ClusterNetworkReconciler, c ManagedComponent) phase {
	return phase{name: c.Name, run: func(ctx context.Context, s *phaseScope) error {
		objs := c.Render(s.renderInput())
		render.Annotate(objs, s.cn.Status.AppliedGeneration)
		return apply.Reconcile(ctx, r.Client, c.Component, s.cn, objs)
	}}
}

// renderInput is what the components render from in this reconcile.
func (s *phaseScope) renderInput() RenderInput {
	return RenderInput{Served: s.served, Nodes: int32(len(s.in.nodes))}
}

// runPhases runs every phase and returns what they found, errors aggregated.
func runPhases(ctx context.Context, phases []phase, s *phaseScope) error {
	for _, p := range phases {
		if err := p.run(ctx, s); err != nil {
			s.res.errs = append(s.res.errs, err)
			reconcileErrors.WithLabelValues(p.name).Inc()
		}
	}
	return kerrors.NewAggregate(s.res.errs)
}
