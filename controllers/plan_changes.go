package controllers

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Disruption says what a change costs running workloads.
type Disruption string

// Disruption classes, least to most disruptive.
const (
	// Hitless: applied in place; no connection or pod notices.
	Hitless Disruption = "hitless"
	// Rolling: applied node by node (an agent or CoreDNS rollout, or each agent re-programming its
	// node); traffic between nodes that disagree may stall briefly, established connections through
	// the changed path may reset.
	Rolling Disruption = "rolling"
	// PodRestart: running pods keep the old setting until they are restarted.
	PodRestart Disruption = "needs pod restart"
	// Outage: a service goes away (e.g. cluster DNS disabled).
	Outage Disruption = "outage"
)

// SpecChange is one changed field of the effective spec.
type SpecChange struct {
	// Field is the path, as in validation messages (spec.routing.mode).
	Field      string
	From, To   string
	Disruption Disruption
	// Effect says what happens on the nodes.
	Effect string
}

// changeClass classifies the fields under a path prefix.
type changeClass struct {
	prefix     string
	disruption Disruption
	effect     string
}

// changeClasses classify every field of the spec; the longest matching prefix wins. A test walks a
// fully set spec and fails on a field no class covers, so a new field must be classified here.
var changeClasses = []changeClass{
	{"spec.ipFamilies", Rolling, "agents program the new family on their next sync; running pods get no address of it until restarted"},
	{"spec.podNetwork.cidrs", Hitless, "a new pool only serves new allocations (see pod CIDRs below)"},
	{"spec.podNetwork.nodeMaskSizeIPv4", Hitless, "only for nodes without an allocation"},
	{"spec.podNetwork.nodeMaskSizeIPv6", Hitless, "only for nodes without an allocation"},
	{"spec.podNetwork.writeNodePodCIDRs", Hitless, "Node.spec.podCIDRs written where empty"},
	{"spec.serviceNetwork.cidrs", Hitless, "refused while Services hold addresses"},
	{"spec.serviceNetwork.nodePortRange", Hitless, "the service proxy serves the new range on its next sync; it must match the API server's --service-node-port-range"},
	{"spec.routing.mode", Rolling, "each agent re-routes peers' pod CIDRs on its next sync; cross-node pod traffic stalls between nodes that have not switched yet"},
	{"spec.routing.mtu", PodRestart, "new pods get the new MTU; running pods keep theirs until restarted"},
	{"spec.routing.masquerade", Hitless, "new connections leaving the cluster are (not) source-NATed; established ones keep their translation"},
	{"spec.routing.vxlan", Rolling, "each agent recreates its VXLAN device; overlay traffic between nodes with different settings fails until all agents have synced"},
	{"spec.serviceProxy.mode", Rolling, "each agent removes the old backend's rules and programs the new one; established Service connections may reset"},
	{"spec.serviceProxy.ipvs", Hitless, "new connections use the new scheduler"},
	{"spec.serviceProxy.nodePortAddresses", Hitless, "NodePorts move to the new addresses on the next sync"},
	{"spec.networkPolicy.enabled", Hitless, "enforcement turns on or off on every node's next sync; turning it on cuts established connections the policies do not allow"},
	{"spec.networkPolicy", Hitless, "applied on every node's next sync"},
	{"spec.dns.enabled", Outage, "cluster DNS is created, or removed with every lookup through it failing"},
	{"spec.dns.replicas", Hitless, "CoreDNS is scaled"},
	{"spec.dns.upstreams", Hitless, "CoreDNS reloads its Corefile; no pod restarts"},
	{"spec.dns.forwardZones", Hitless, "CoreDNS reloads its Corefile; no pod restarts"},
	{"spec.dns.cache", Hitless, "CoreDNS reloads its Corefile; no pod restarts"},
	{"spec.dns", Rolling, "the CoreDNS Deployment rolls (the last ready replica is never taken away)"},
	{"spec.ingress.enabled", Outage, "plexus-ingress, its Service and IngressClass are created, or removed with every Ingress it served going dark"},
	{"spec.ingress.replicas", Hitless, "plexus-ingress is scaled"},
	{"spec.ingress.serviceType", Rolling, "the plexus-ingress Service changes type: its node ports or load-balancer address may change, and clients of the old ones fail"},
	{"spec.ingress.ingressClassName", Outage, "the IngressClass is renamed: Ingresses naming the old class are no longer served until they name the new one"},
	{"spec.ingress.defaultTLSSecret", Rolling, "the plexus-ingress Deployment rolls (a new replica is ready before an old one goes) and serves the new default certificate"},
	{"spec.ingress.metrics", Rolling, "the plexus-ingress Deployment rolls with per-route request metrics turned on or off"},
	{"spec.ingress.accessLog", Rolling, "the plexus-ingress Deployment rolls with its access log turned on or off"},
	{"spec.ingress", Rolling, "the plexus-ingress Deployment rolls (a new replica is ready before an old one goes)"},
	{"spec.images.agent", Rolling, "the agent DaemonSet rolls node by node; each node's data plane stays programmed while its agent restarts"},
	{"spec.images.dns", Rolling, "the CoreDNS Deployment rolls (the last ready replica is never taken away)"},
	{"spec.images.ingress", Rolling, "the plexus-ingress Deployment rolls (a new replica is ready before an old one goes)"},
	{"spec.agent", Rolling, "the agent DaemonSet rolls; nodes it leaves keep their last programmed data plane but get no updates"},
}

// classify returns the class of a field path: the longest prefix that matches at a path boundary.
func classify(path string) (changeClass, bool) {
	var best changeClass
	found := false
	for _, c := range changeClasses {
		if (path == c.prefix || strings.HasPrefix(path, c.prefix+".") || strings.HasPrefix(path, c.prefix+"[")) &&
			len(c.prefix) > len(best.prefix) {
			best, found = c, true
		}
	}
	return best, found
}

// SpecChanges lists what differs between the served spec (nil: nothing served yet, every field is
// new) and the next one, classified. It is pure.
func SpecChanges(current, next *v1.ClusterNetworkSpec) []SpecChange {
	var a map[string]any
	if current != nil {
		a = specLeaves(*current)
	}
	b := specLeaves(*next)
	paths := map[string]bool{}
	for p := range a {
		paths[p] = true
	}
	for p := range b {
		paths[p] = true
	}
	var out []SpecChange
	for p := range paths {
		av, aok := a[p]
		bv, bok := b[p]
		if aok && bok && reflect.DeepEqual(av, bv) {
			continue
		}
		c := SpecChange{Field: p, From: leafString(av, aok), To: leafString(bv, bok)}
		if cl, ok := classify(p); ok {
			c.Disruption, c.Effect = cl.disruption, cl.effect
		} else {
			c.Disruption, c.Effect = Rolling, "not classified: assume the agents roll"
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	if current != nil {
		escalateMTU(out, current, next)
	}
	return out
}

// escalateMTU marks a routing mode switch between Direct and a VXLAN mode as needing pod restarts
// when the MTU is automatic: the automatic pod MTU is the uplink's in Direct and leaves room for the
// VXLAN header otherwise (agent/routing.EffectiveMTU), and a running pod keeps the MTU its
// interface got (into VXLAN, its full-size packets would no longer fit the underlay).
func escalateMTU(changes []SpecChange, current, next *v1.ClusterNetworkSpec) {
	if next.Routing != nil && next.Routing.MTU != nil {
		return
	}
	direct := func(s *v1.ClusterNetworkSpec) bool { return s.Routing != nil && s.Routing.Mode == v1.RoutingDirect }
	if direct(current) == direct(next) {
		return
	}
	for i := range changes {
		if changes[i].Field == "spec.routing.mode" {
			changes[i].Disruption = PodRestart
			changes[i].Effect += "; the automatic pod MTU changes with it (VXLAN header room): running pods keep theirs until restarted"
		}
	}
}

// specLeaves flattens a spec into its leaf values by JSON path ("spec.routing.mode"); lists of
// scalars are one leaf, lists of objects are indexed.
func specLeaves(spec v1.ClusterNetworkSpec) map[string]any {
	raw, err := json.Marshal(spec)
	if err != nil {
		// A spec is plain data; a failure here is a programming error.
		panic(fmt.Sprintf("marshal ClusterNetworkSpec: %v", err))
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(fmt.Sprintf("unmarshal ClusterNetworkSpec: %v", err))
	}
	out := map[string]any{}
	flatten("spec", m, out)
	return out
}

func flatten(path string, v any, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			flatten(path+"."+k, val, out)
		}
	case []any:
		scalars := true
		for _, e := range x {
			if _, ok := e.(map[string]any); ok {
				scalars = false
			}
		}
		if scalars {
			out[path] = x
			return
		}
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", path, i), e, out)
		}
	default:
		out[path] = v
	}
}

func leafString(v any, ok bool) string {
	if !ok {
		return "(unset)"
	}
	if l, isList := v.([]any); isList {
		parts := make([]string, len(l))
		for i, e := range l {
			parts[i] = fmt.Sprint(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v)
}

// sameSpec reports whether two specs are equal as the API server would store them.
func sameSpec(a, b v1.ClusterNetworkSpec) bool {
	return reflect.DeepEqual(specLeaves(a), specLeaves(b))
}
