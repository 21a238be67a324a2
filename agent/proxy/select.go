package proxy

import "slices"

// usable says whether an endpoint may receive traffic at all: ready, or
// still serving while terminating (used only when nothing is ready).
func usable(e Endpoint) bool { return e.Ready || (e.Serving && e.Terminating) }

// pick applies the terminating fallback: the ready endpoints if any, else
// those still serving while terminating (so connections drain to them
// rather than fail during a rollout), else none.
func pick(eps []Endpoint) []Endpoint {
	// Common case first: everything ready, no copy.
	allReady := true
	for _, e := range eps {
		if !e.Ready {
			allReady = false
			break
		}
	}
	if allReady {
		return eps
	}
	var ready, terminating []Endpoint
	for _, e := range eps {
		switch {
		case e.Ready:
			ready = append(ready, e)
		case e.Serving && e.Terminating:
			terminating = append(terminating, e)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return terminating
}

// byZone applies topology hints: when every endpoint carries zone hints and
// at least one is hinted for zone, only those; otherwise all (hints are
// all-or-nothing, and a zone without endpoints must not black-hole).
func byZone(eps []Endpoint, zone string) ([]Endpoint, bool) {
	if zone == "" || len(eps) == 0 {
		return eps, false
	}
	var in []Endpoint
	for _, e := range eps {
		if len(e.ZoneHints) == 0 {
			return eps, false
		}
		if slices.Contains(e.ZoneHints, zone) {
			in = append(in, e)
		}
	}
	if len(in) == 0 {
		return eps, false
	}
	return in, true
}

// selectEndpoints fills the cluster and external endpoint lists and the
// local count of sp from sp.Endpoints.
//
// The local count (the health check's answer) counts only ready local
// endpoints, as kube-proxy does: a node whose local endpoints are all
// terminating still forwards to them (the fallback), but reports 503 so
// that load balancers drain it.
//
// Cluster-policy endpoints: pick(all), narrowed by topology hints.
// Local-policy endpoints: pick(local) (hints do not apply: the node is the
// narrowest scope). ClusterIP traffic uses Local-policy endpoints when
// internalTrafficPolicy is Local; NodePort, LB and external IPs use them
// when externalTrafficPolicy is Local, and then the node's own traffic to
// them gets the cluster-policy endpoints (FromNodeEndpoints).
func selectEndpoints(sp *ServicePort, zone string) {
	var local []Endpoint
	for _, e := range sp.Endpoints {
		if e.Local {
			local = append(local, e)
		}
	}
	localPicked := pick(local)
	clusterPicked, topo := byZone(pick(sp.Endpoints), zone)
	sp.LocalEndpoints = 0
	for _, e := range local {
		if e.Ready {
			sp.LocalEndpoints++
		}
	}
	sp.ClusterEndpoints = clusterPicked
	sp.UsesTopology = topo && !sp.InternalPolicyLocal
	if sp.InternalPolicyLocal {
		sp.ClusterEndpoints = localPicked
	}
	sp.ExternalEndpoints = clusterPicked
	if sp.ExternalPolicyLocal {
		sp.ExternalEndpoints = localPicked
		sp.FromNodeEndpoints = clusterPicked
	}
}
