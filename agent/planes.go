package agent

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/agent/status"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// The agent's planes: each adapts one collaborator (deps.go) to Plane.

// NewRoutesPlane is the routing plane (RoutesProgrammed): routes to peers' pod CIDRs and the
// VXLAN device. metrics may be nil. Its failure holds back the reported ClusterNetwork
// generation.
func NewRoutesPlane(r RouteSyncer, metrics *Metrics) Plane {
	return &routesPlane{r: r, metrics: metrics}
}

type routesPlane struct {
	r       RouteSyncer
	metrics *Metrics
}

func (p *routesPlane) Name() string      { return PlaneRoutes }
func (p *routesPlane) Condition() string { return v1.ConditionRoutesProgrammed }

func (p *routesPlane) Sync(_ context.Context, d *Desired, full bool) PlaneResult {
	if full {
		p.r.RequestFullSync()
	}
	plan, err := p.r.Sync(d.Routing)
	res := PlaneResult{Changes: plan.Changes()}
	res.Wrote = res.Changes > 0
	if err != nil {
		res.Report = status.RoutesPlane(status.Routes{Err: fmt.Errorf("program routes: %w", err)})
		return res
	}
	r := status.Routes{Count: len(routing.Desired(d.Routing).Routes), Uplink: d.Routing.Local.Uplink.Name,
		ProgrammedGeneration: d.ProgrammedGeneration}
	for _, u := range plan.Unroutable {
		r.Unroutable = append(r.Unroutable, u.String())
	}
	if p.metrics != nil {
		p.metrics.Routes.Set(float64(r.Count))
	}
	res.Report = status.RoutesPlane(r)
	return res
}

// NewMasqueradePlane is the masquerade plane (MasqueradeProgrammed): the nftables table that
// masquerades pods' traffic leaving the cluster, removed when masquerading is off.
func NewMasqueradePlane(m Masquerader) Plane { return masqueradePlane{m: m} }

type masqueradePlane struct{ m Masquerader }

func (p masqueradePlane) Name() string      { return PlaneMasquerade }
func (p masqueradePlane) Condition() string { return v1.ConditionMasqueradeProgrammed }

func (p masqueradePlane) Sync(ctx context.Context, d *Desired, _ bool) PlaneResult {
	// The masquerade table is compared with the kernel on every sync: full changes nothing.
	var res PlaneResult
	var err error
	if d.Masquerade != nil {
		if res.Wrote, err = p.m.Sync(ctx, *d.Masquerade); err != nil {
			err = fmt.Errorf("program the masquerade table: %w", err)
		}
	} else if err = p.m.Remove(ctx); err != nil {
		err = fmt.Errorf("remove the masquerade table: %w", err)
	}
	res.Report = status.MasqueradePlane(d.Masquerade != nil, err)
	return res
}

// NewCNIPlane is the CNI plane (CNIConfigured): the node state file at path that plexus-cni
// reads (pod CIDRs, MTU). It does not wait for the routes: pods get addresses on this node
// whatever the routes to peers do.
func NewCNIPlane(path string) Plane { return cniPlane{path: path} }

// NewCNIPlaneWithAdmission is NewCNIPlane for an agent that answers plexus-cni's pod admission
// on policySocket: while NetworkPolicy is enforced the node state names the socket, so ADD waits
// for a new pod's policies before the pod gets its interface.
func NewCNIPlaneWithAdmission(path, policySocket string) Plane {
	return cniPlane{path: path, policySocket: policySocket}
}

type cniPlane struct{ path, policySocket string }

func (p cniPlane) Name() string      { return PlaneCNI }
func (p cniPlane) Condition() string { return v1.ConditionCNIConfigured }

func (p cniPlane) Sync(_ context.Context, d *Desired, _ bool) PlaneResult {
	// The file is read and compared on every sync: full changes nothing.
	st := d.NodeState
	if d.Policy.Enabled {
		st.PolicySocket = p.policySocket
	}
	wrote, err := writeNodeState(p.path, st)
	if err != nil {
		err = fmt.Errorf("write the CNI node state %s: %w", p.path, err)
	}
	return PlaneResult{Wrote: wrote, Report: status.CNIPlane(err)}
}

// NewServicesPlane is the service proxy plane (ServicesProgrammed). Services are not part of
// the ClusterNetwork generation: its failure does not hold the generation back.
func NewServicesPlane(s ServiceProxy) Plane { return &servicesPlane{s: s} }

type servicesPlane struct {
	s ServiceProxy
	// memoryReleased says the first sync that wrote Services has returned its transient memory
	// (releaseTransientMemory).
	memoryReleased bool
}

func (p *servicesPlane) Name() string      { return PlaneServices }
func (p *servicesPlane) Condition() string { return v1.ConditionServicesProgrammed }

func (p *servicesPlane) Sync(ctx context.Context, d *Desired, full bool) PlaneResult {
	r := p.s.Sync(ctx, d.Services, full)
	if r.Wrote && !p.memoryReleased {
		p.memoryReleased = true
		releaseTransientMemory()
	}
	return PlaneResult{Wrote: r.Wrote, Report: status.ServicesPlane(servicesStatus(r))}
}

// servicesStatus is the status package's view of a service proxy sync.
func servicesStatus(r manager.Result) status.Services {
	s := status.Services{Mode: r.Mode, Services: r.Counts.Services, ServicePorts: r.Counts.ServicePorts,
		Endpoints: r.Counts.Endpoints, Err: r.Err, Unavailable: r.Unavailable}
	for _, f := range r.Supported {
		s.Supported = append(s.Supported, string(f))
	}
	for _, f := range r.Unsupported {
		s.Unsupported = append(s.Unsupported, string(f))
	}
	return s
}

// releaseTransientMemory collects garbage and returns free memory to the kernel at once, after
// the first sync that programmed Services. That sync loads (or rebuilds) the whole table and
// allocates and drops tens of MiB at 10k Services (the model's first build, the elements, nft's
// text); left to the runtime, the next collection's target is twice that peak, and the process
// keeps it resident long after. One forced collection (tens of ms at 10k, after the data plane
// is written) makes the footprint and the next target follow what the agent really holds. Later
// syncs write only changes, the periodic full ones included, so they need none.
func releaseTransientMemory() { debug.FreeOSMemory() }
