package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/agent/policy"
	"github.com/plexus-net/plexus/agent/policy/conntrack"
	policynft "github.com/plexus-net/plexus/agent/policy/nftables"
	"github.com/plexus-net/plexus/agent/status"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// PlanePolicy is the NetworkPolicy plane.
const PlanePolicy = "policies"

// PolicyEnforcer programs compiled NetworkPolicy models; *nftables.Enforcer (package
// agent/policy/nftables) is the real one, over knftables (whose fake the tests use).
type PolicyEnforcer interface {
	policy.Enforcer
	// Counters reads the per-policy packet counters of the model last programmed; none when
	// nothing is programmed.
	Counters(ctx context.Context) ([]policynft.PolicyCounter, error)
}

var _ PolicyEnforcer = &policynft.Enforcer{}

// PolicyCompiler compiles a NetworkPolicy model: policy.Compile, or any compiler with its
// contract (never fails; policies it cannot read fail closed and are listed in Model.Errors).
type PolicyCompiler func(policy.Input) *policy.Model

// PolicyPlane is the NetworkPolicy plane (PoliciesProgrammed): it compiles the cluster's
// NetworkPolicies, Pods and Namespaces into a model of this node's pods and has the enforcer
// program it; when networkPolicy.enabled is false it removes every rule. After a write that
// stops allowing connections it cuts the established ones (their conntrack entries), unless
// networkPolicy.keepEstablishedConnections says to keep them.
//
// Its methods are safe for concurrent use: the sync loop calls Sync, the metrics scrape
// Counters, the CNI plugin's hook EnforcePod.
type PolicyPlane struct {
	// Compile is the compiler; nil: policy.Compile. Set it before the first Sync.
	Compile PolicyCompiler

	enforcer  PolicyEnforcer
	conntrack conntrack.Table // nil: connections are never cut

	mu sync.Mutex
	// last is the desired state of the last Sync (valid when synced).
	last   PolicyDesired
	synced bool
	// enforced is the model the data plane enforces; nil when none is (disabled, or nothing
	// programmed yet).
	enforced *policy.Model
	// removed says the table was removed (disabled) and nothing was programmed since.
	removed bool
	// cutDue says connections are still to be cut after a failed cut: those cutFrom allowed
	// and the enforced model denies.
	cutDue  bool
	cutFrom *policy.Model
	// pending are addresses EnforcePod gave pods whose Pod the cache holds without them yet.
	pending map[podKey][]netip.Addr
}

type podKey struct{ namespace, name string }

var _ Plane = &PolicyPlane{}

// NewPolicyPlane returns the NetworkPolicy plane programming through e and cutting connections
// in ct (nil: never cut).
func NewPolicyPlane(e PolicyEnforcer, ct conntrack.Table) *PolicyPlane {
	return &PolicyPlane{enforcer: e, conntrack: ct}
}

// Name implements Plane.
func (p *PolicyPlane) Name() string { return PlanePolicy }

// Condition implements Plane.
func (p *PolicyPlane) Condition() string { return v1.ConditionPoliciesProgrammed }

// Sync implements Plane.
func (p *PolicyPlane) Sync(ctx context.Context, d *Desired, full bool) PlaneResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last, p.synced = d.Policy, true
	if !d.Policy.Enabled {
		return p.disable(ctx, full)
	}
	return p.enforce(ctx, full)
}

// disable removes the table. A table known to be gone is removed again only on a full sync
// (which repairs drift), so a no-op sync writes nothing.
func (p *PolicyPlane) disable(ctx context.Context, full bool) PlaneResult {
	var res PlaneResult
	if !p.removed || full {
		if err := p.enforcer.Remove(ctx); err != nil {
			p.removed = false
			res.Report = status.PoliciesPlane(status.Policies{Err: fmt.Errorf("remove the NetworkPolicy table: %w", err)})
			return res
		}
		res.Wrote = !p.removed
	}
	p.removed, p.enforced, p.cutDue, p.cutFrom, p.pending = true, nil, false, nil, nil
	res.Report = status.PoliciesPlane(status.Policies{})
	return res
}

// enforce compiles the last desired state and programs it, then cuts what it stopped allowing.
func (p *PolicyPlane) enforce(ctx context.Context, full bool) PlaneResult {
	m := p.compile()
	r, err := p.enforcer.Sync(ctx, m, full)
	res := PlaneResult{Wrote: r.Wrote}
	if err != nil {
		// What the kernel holds is unknown: cut against the last model known enforced once a
		// write succeeds.
		res.Report = status.PoliciesPlane(status.Policies{Enabled: true, Err: fmt.Errorf("program NetworkPolicies: %w", err)})
		return res
	}
	if r.Wrote && !p.cutDue {
		p.cutDue, p.cutFrom = true, p.enforced
	}
	p.removed, p.enforced = false, m
	st := status.Policies{Enabled: true, Policies: len(m.Policies), IsolatedPods: isolatedPods(m),
		Rules: r.Rules, Objects: r.Objects, Unreadable: m.Errors}
	if err := p.cut(ctx); err != nil {
		st.Err = err
	}
	res.Report = status.PoliciesPlane(st)
	return res
}

// cut deletes the conntrack entries of the connections that cutFrom allowed and the enforced
// model denies (all of them when cutFrom is nil: nothing was enforced before), unless
// keepEstablishedConnections keeps them. It runs after the write: a packet of a cut connection
// then meets the new rules (cut earlier, it would recreate its entry under the old ones).
func (p *PolicyPlane) cut(ctx context.Context) error {
	if !p.cutDue {
		return nil
	}
	// Only a pod some policy isolates can have a flow denied: without one there is nothing to
	// cut, and no reason to read the conntrack table.
	if p.last.KeepEstablished || p.conntrack == nil || isolatedPods(p.enforced) == 0 {
		p.cutDue, p.cutFrom = false, nil
		return nil
	}
	n, err := conntrack.NewCutter(p.conntrack, false).Cut(p.cutFrom, p.enforced)
	if err != nil {
		return fmt.Errorf("cut established connections NetworkPolicies no longer allow (%d cut): %w", n, err)
	}
	if n > 0 {
		log.FromContext(ctx).Info("Cut established connections that NetworkPolicies no longer allow", "connections", n)
	}
	p.cutDue, p.cutFrom = false, nil
	return nil
}

// compile compiles the last desired state with the addresses EnforcePod gave pods the cache
// does not show yet; a pending address is forgotten once the Pod has addresses of its own or
// is gone.
func (p *PolicyPlane) compile() *policy.Model {
	in := p.last.Input
	if len(p.pending) > 0 {
		in.Pods = slices.Clone(in.Pods)
		seen := map[podKey]bool{}
		for i, pod := range in.Pods {
			k := podKey{pod.Namespace, pod.Name}
			ips, ok := p.pending[k]
			if !ok {
				continue
			}
			seen[k] = true
			if len(pod.Status.PodIPs) > 0 || pod.Status.PodIP != "" {
				delete(p.pending, k)
				continue
			}
			in.Pods[i] = withIPs(pod, ips)
		}
		for k := range p.pending {
			if !seen[k] {
				delete(p.pending, k)
			}
		}
	}
	compile := p.Compile
	if compile == nil {
		compile = policy.Compile
	}
	return compile(in)
}

// withIPs returns a shallow copy of pod with ips as its addresses (the cached Pod is shared).
func withIPs(pod *corev1.Pod, ips []netip.Addr) *corev1.Pod {
	c := *pod
	c.Status.PodIPs = make([]corev1.PodIP, len(ips))
	for i, a := range ips {
		c.Status.PodIPs[i] = corev1.PodIP{IP: a.String()}
	}
	c.Status.PodIP = c.Status.PodIPs[0].IP
	return &c
}

// EnforcePod programs the policies that select the pod namespace/name, which has just been
// given ips (the CNI plugin's ADD, before the kubelet reports them in the Pod's status), and
// returns once they are enforced: a pod is never reachable before the policies that isolate it
// are in force. The plane keeps using ips for the pod until its Pod shows addresses. It is an
// error when the plane has not synced yet or the cache does not hold the Pod; with
// networkPolicy.enabled false there is nothing to enforce.
func (p *PolicyPlane) EnforcePod(ctx context.Context, namespace, name string, ips []netip.Addr) error {
	if len(ips) == 0 {
		return fmt.Errorf("enforce NetworkPolicies on pod %s/%s: no address given", namespace, name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !p.synced:
		return fmt.Errorf("enforce NetworkPolicies on pod %s/%s: the agent has not synced yet", namespace, name)
	case !p.last.Enabled:
		return nil
	}
	if !slices.ContainsFunc(p.last.Input.Pods, func(pod *corev1.Pod) bool { return pod.Namespace == namespace && pod.Name == name }) {
		return fmt.Errorf("enforce NetworkPolicies on pod %s/%s: the agent's cache has no such Pod yet", namespace, name)
	}
	if p.pending == nil {
		p.pending = map[podKey][]netip.Addr{}
	}
	p.pending[podKey{namespace, name}] = slices.Clone(ips)
	res := p.enforce(ctx, false)
	if err := res.Err(); err != nil {
		return fmt.Errorf("enforce NetworkPolicies on pod %s/%s: %w", namespace, name, err)
	}
	return nil
}

// Counters reads the per-policy packet counters of what the plane enforces (none when
// disabled). It waits for a sync in progress.
func (p *PolicyPlane) Counters(ctx context.Context) ([]policynft.PolicyCounter, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.enforced == nil {
		return nil, nil
	}
	return p.enforcer.Counters(ctx)
}

// isolatedPods counts the local pods some policy isolates.
func isolatedPods(m *policy.Model) int {
	n := 0
	for i := range m.Pods {
		if len(m.Pods[i].Ingress) > 0 || len(m.Pods[i].Egress) > 0 {
			n++
		}
	}
	return n
}
