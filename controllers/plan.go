package controllers

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/apply"
	"github.com/plexus-net/plexus/controllers/netconfig"
	"github.com/plexus-net/plexus/controllers/render"
)

// Plan is what applying a ClusterNetwork spec would do to a cluster, computed by the functions a
// reconcile runs (decideConfig, planIPAM, every component's render and apply-and-prune as a dry
// run), so a plan and the operator cannot disagree. Nothing is written to make it.
type Plan struct {
	// Errors explain why the operator would refuse the spec (the messages of ConfigValid);
	// empty when it would serve it. Reason is the ConfigValid reason.
	Errors field.ErrorList
	Reason string
	// Current is the configuration served now (status.effective; nil before the first);
	// Effective the defaulted proposed one.
	Current, Effective *v1.ClusterNetworkSpec
	// Changes are the differences between Current and Effective, classified.
	Changes []SpecChange
	// Nodes is every node's pod CIDRs afterwards: kept, allocated, released.
	Nodes []NodeCIDRPlan
	// Unallocated nodes would lack a pod CIDR of some family (pool exhausted or conflicting).
	Unallocated []string
	// Components lists, per managed component, what its apply-and-prune would do.
	Components []ComponentPlan
}

// Accepted reports whether the operator would serve the proposed spec.
func (p *Plan) Accepted() bool { return len(p.Errors) == 0 }

// NodeCIDRPlan is one node's pod CIDRs in a plan.
type NodeCIDRPlan struct {
	Node                    string
	Keep, Allocate, Release []string
	// Note says why a node gets less than asked (e.g. its Node.spec.podCIDRs are not adopted).
	Note string
}

// ComponentPlan is one managed component's preview.
type ComponentPlan struct {
	Name    string
	Objects []apply.ObjectChange
	// Blocked names objects Plexus did not create that stop the component from being applied
	// (the operator changes nothing of it and reports a condition).
	Blocked []string
}

// PlanChange previews proposed (a ClusterNetwork as the user would apply it; its status is ignored)
// against the live cluster c reads: the live ClusterNetwork's status (what is served, the images the
// operator filled in), Nodes and NodeNetworks. c must write with dry runs only; PlanChange never
// writes otherwise. live is nil when no ClusterNetwork exists yet.
func PlanChange(ctx context.Context, c client.Client, live, proposed *v1.ClusterNetwork, opts Options) (*Plan, error) {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	cn := proposed.DeepCopy()
	cn.Status = v1.ClusterNetworkStatus{}
	if live != nil {
		cn.ObjectMeta.UID, cn.Status = live.UID, *live.Status.DeepCopy()
		cn.Generation = live.Generation
		if !sameSpec(live.Spec, proposed.Spec) {
			cn.Generation++
		}
	}
	r := &ClusterNetworkReconciler{Client: c, APIReader: c, Images: planImages(cn, opts.Images), Namespace: opts.Namespace}
	in, err := r.gather(ctx)
	if err != nil {
		return nil, err
	}
	d := decideConfig(cn, r.Images, in)
	p := &Plan{Errors: d.errs, Reason: d.reason, Current: cn.Status.Effective}
	if d.accepted() {
		p.Effective = &d.effective
		p.Changes = SpecChanges(cn.Status.Effective, &d.effective)
	}
	if d.serve == nil {
		return p, nil
	}
	if err := p.planNodes(*d.serve, in); err != nil {
		return nil, err
	}
	applyDecision(cn, d)
	s := &phaseScope{cn: cn, served: *d.serve, in: in, res: &phaseResult{}}
	for _, mc := range ManagedComponents(opts.Namespace) {
		cp, err := previewComponent(ctx, r, mc, s)
		if err != nil {
			return nil, err
		}
		p.Components = append(p.Components, cp)
	}
	return p, nil
}

// planImages are the images a reconcile would fill in: the operator's, as the live status shows
// them (plexusctl cannot read the operator's flags), else opts.
func planImages(cn *v1.ClusterNetwork, fallback netconfig.Images) netconfig.Images {
	eff := cn.Status.Effective
	if eff == nil || eff.Images == nil {
		return fallback
	}
	return netconfig.Images{Agent: eff.Images.Agent, DNS: eff.Images.DNS, Ingress: eff.Images.Ingress}
}

// planNodes fills the per-node pod CIDRs from the IPAM plan.
func (p *Plan) planNodes(served v1.ClusterNetworkSpec, in inputs) error {
	ip, err := planIPAM(served, in.nodes, in.nodeNetworks)
	if err != nil {
		return fmt.Errorf("plan pod CIDR allocation: %w", err)
	}
	after := map[string][]string{}
	for _, nn := range in.nodeNetworks {
		after[nn.Name] = cidrStrings(nn.Spec.PodCIDRs)
	}
	for _, up := range ip.upserts {
		after[up.node] = cidrStrings(up.spec.PodCIDRs)
	}
	for _, del := range ip.deletes {
		delete(after, del.Name)
	}
	before := map[string][]string{}
	for _, nn := range in.nodeNetworks {
		before[nn.Name] = cidrStrings(nn.Spec.PodCIDRs)
	}
	names := make([]string, 0, len(before)+len(after))
	for n := range before {
		names = append(names, n)
	}
	for n := range after {
		if _, ok := before[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		np := NodeCIDRPlan{Node: n, Note: ip.warnings[n]}
		for _, c := range before[n] {
			if slices.Contains(after[n], c) {
				np.Keep = append(np.Keep, c)
			} else {
				np.Release = append(np.Release, c)
			}
		}
		for _, c := range after[n] {
			if !slices.Contains(before[n], c) {
				np.Allocate = append(np.Allocate, c)
			}
		}
		p.Nodes = append(p.Nodes, np)
	}
	p.Unallocated = ip.unallocated
	return nil
}

// previewComponent renders mc as the reconcile would and previews its apply-and-prune. For DNS it
// first runs the phase's guard: objects under its names that Plexus did not create block it.
func previewComponent(ctx context.Context, r *ClusterNetworkReconciler, mc ManagedComponent, s *phaseScope) (ComponentPlan, error) {
	cp := ComponentPlan{Name: mc.Name}
	objs := mc.Render(s.renderInput())
	render.Annotate(objs, s.cn.Status.AppliedGeneration)
	if mc.Name == dnsComponent().Name && len(objs) > 0 {
		live, err := liveDNSObjects(ctx, r.APIReader, objs)
		if err != nil {
			return cp, err
		}
		if cp.Blocked = foreignDNSObjects(objs, live); len(cp.Blocked) > 0 {
			return cp, nil
		}
	}
	changes, err := apply.Preview(ctx, r.Client, mc.Component, s.cn, objs, render.GenerationAnnotation)
	if err != nil {
		return cp, fmt.Errorf("preview component %s: %w", mc.Name, err)
	}
	cp.Objects = changes
	return cp, nil
}
